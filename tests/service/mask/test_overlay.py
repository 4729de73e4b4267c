"""service/mask/overlay.py: the overlay picture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.mask.classes import ModelMask
from service.mask.encode import encode_rgb_png
from service.mask.overlay import overlay_picture, overlay_png
from tests import images


def test_overlay_is_capped_at_1280_px_on_its_longest_side_and_keeps_a_small_picture_meanwhile() -> None:
    bgr = images.bgr("coffee.png")
    small = np.zeros((171, 257), np.uint8)
    small[50:100, 60:200] = 11
    answer = ModelMask(small)
    large = cv2.resize(bgr, (3000, 2000))
    picture = overlay_picture(large, 3000, 2000)
    assert picture.shape == (426, 640, 3)  # what the call holds while the model runs
    big = cv2.imdecode(np.frombuffer(overlay_png(picture, answer, 3000, 2000), np.uint8), cv2.IMREAD_COLOR)
    assert big.shape == (853, 1280, 3)
    assert overlay_picture(bgr, 600, 400) is bgr
    exact = cv2.imdecode(np.frombuffer(overlay_png(bgr, answer, 600, 400), np.uint8), cv2.IMREAD_COLOR)
    assert exact.shape == (400, 600, 3)
    # Background pixels are the photo itself; the table (11) is tinted with its colour.
    assert np.array_equal(exact[10, 10], bgr[10, 10])
    assert not np.array_equal(exact[130, 250], bgr[130, 250])


@pytest.mark.parametrize("shape", [(400, 600, 3), (1, 1, 3), (7, 2, 3)])
def test_the_overlay_png_holds_the_very_pixels(shape: tuple[int, int, int]) -> None:
    bgr = images.bgr("coffee.png")[: shape[0], : shape[1]] if shape[0] > 1 else np.full(shape, 250, np.uint8)
    if shape == (7, 2, 3):
        bgr = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    png = encode_rgb_png(bgr)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), bgr)
