"""service/image/resize.py: the model's input size."""

from __future__ import annotations

import numpy as np

from service.image.resize import longest_side_size, model_size, resize_to
from service.profiles import DEEPLAB_ZOO
from tests import images


def test_resize_keeps_the_aspect_ratio_and_never_upscales() -> None:
    assert model_size(1920, 1080, DEEPLAB_ZOO) == (513, 289)
    assert model_size(1080, 1920, DEEPLAB_ZOO) == (289, 513)
    assert model_size(300, 200, DEEPLAB_ZOO) == (300, 200)
    bgr = images.bgr("coffee.png")
    out = resize_to(bgr, longest_side_size(600, 400, 257))
    assert out.shape == (171, 257, 3) and out.flags.c_contiguous and out.dtype == np.float32
    same = resize_to(bgr, longest_side_size(600, 400, 1000))
    assert np.array_equal(same, bgr[:, :, ::-1].astype(np.float32))
