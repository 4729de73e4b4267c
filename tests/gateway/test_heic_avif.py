"""HEIC and AVIF end to end: segmented like the same pixels as PNG."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.v1 import segmentation_service_pb2 as pb
from tests import images
from tests.paths import CAT

MAKERS = images.PHONE_FORMATS


@pytest.mark.parametrize("image_format", MAKERS)
def test_heic_and_avif_are_segmented_like_the_same_pixels_as_png(stub, image_format: str) -> None:  # type: ignore[no-untyped-def]
    def mask(data: bytes) -> tuple[np.ndarray, pb.SegmentImageResponse]:
        response = stub.SegmentImage(pb.SegmentImageRequest(image=data, mask_format=pb.MASK_FORMAT_RAW), timeout=30)
        pixels = np.frombuffer(response.mask.data, np.uint8).reshape(response.mask.height, response.mask.width)
        return pixels, response

    rotated, response = mask(MAKERS[image_format]("chelsea.png", orientation=6))
    assert (response.mask.width, response.mask.height) == (300, 451)
    assert next(c.class_id for c in response.classes if c.class_id != 0) == CAT
    # The picture a viewer shows, sent as PNG: the codec changes a few pixels near class boundaries, no more.
    shown, _ = mask(images.encode(images.ORIENTED[6](images.bgr("chelsea.png")), ".png"))
    assert (rotated == shown).mean() > 0.98
