"""service/image/decode.py: every pixel, oriented, as 8-bit RGB; and no decoder makes more of a file than the
configured limit, whatever its header says (with service/image/probe.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench import hostile
from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image.decode import decode, reduction_for
from service.image.probe import ImageInfo, probe
from service.image.resize import longest_side_size, model_size, resize_to
from service.profiles import DEEPLAB_ZOO
from tests import images
from tests.fuzz.targets import sizes_target

LIMITS = Limits()


def _decode(data: bytes, reduced_for: int | None = None):  # type: ignore[no-untyped-def]
    """Every pixel, or reduced for a model whose longest side is `reduced_for`."""
    info = probe(data, LIMITS)
    target = longest_side_size(*info.oriented_size, reduced_for) if reduced_for else None
    return decode(data, info, target)


def test_decode_gives_every_pixel_as_opencv_reads_it() -> None:
    decoded = _decode(images.png("chelsea.png"))
    assert decoded.bgr.shape == (300, 451, 3) and decoded.scale == 1
    assert np.array_equal(decoded.bgr, images.bgr("chelsea.png"))
    big = _decode(images.large_jpeg("coffee.png", 4000, 3000))
    assert big.bgr.shape == (3000, 4000, 3) and big.scale == 1


@pytest.mark.parametrize(
    ("orientation", "transform"),
    [
        (1, lambda a: a),
        (3, lambda a: cv2.rotate(a, cv2.ROTATE_180)),
        (6, lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)),
        (8, lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)),
    ],
)
def test_decode_applies_the_orientation(orientation: int, transform) -> None:
    plain = images.jpeg("chelsea.png")
    decoded = _decode(images.with_orientation(plain, orientation))
    expected = transform(_decode(plain).bgr)
    assert decoded.bgr.shape == expected.shape
    assert (decoded.width, decoded.height) == (expected.shape[1], expected.shape[0])
    assert np.abs(decoded.bgr.astype(int) - expected.astype(int)).mean() < 2


def test_reduced_decode_of_a_large_jpeg_keeps_its_full_size() -> None:
    data = images.large_jpeg("coffee.png", 4000, 3000)
    assert reduction_for(probe(data, LIMITS), (513, 385)) == 8
    decoded = _decode(data, reduced_for=513)
    assert decoded.bgr.shape == (375, 500, 3)
    assert (decoded.width, decoded.height, decoded.scale) == (4000, 3000, 8)
    rotated = _decode(images.with_orientation(data, 6), reduced_for=513)
    assert rotated.bgr.shape == (500, 375, 3)
    assert (rotated.width, rotated.height) == (3000, 4000)
    # 1080p decodes at 1/4 (480 px, within 10% of 513) and is then scaled to exactly the model's size.
    hd = images.large_jpeg("coffee.png", 1920, 1080)
    assert reduction_for(probe(hd, LIMITS), (513, 289)) == 4
    small = _decode(hd, reduced_for=513)
    assert small.bgr.shape == (270, 480, 3)
    assert resize_to(small.bgr, model_size(small.width, small.height, DEEPLAB_ZOO)).shape == (289, 513, 3)
    # Small images are never upscaled.
    assert reduction_for(probe(images.jpeg("chelsea.png"), LIMITS), (451, 300)) == 1


@pytest.mark.parametrize(
    "make",
    [images.grayscale_png, images.rgba_png, images.png16, images.cmyk_jpeg, images.palette_png],
    ids=["gray", "rgba", "16-bit", "cmyk", "palette"],
)
def test_every_layout_becomes_8_bit_rgb_close_to_the_original(make) -> None:
    decoded = _decode(make("chelsea.png"))
    assert decoded.bgr.dtype == np.uint8 and decoded.bgr.shape == (300, 451, 3)
    reference = images.bgr("chelsea.png").astype(int)
    gray = cv2.cvtColor(images.bgr("chelsea.png"), cv2.COLOR_BGR2GRAY).astype(int)
    error = min(np.abs(decoded.bgr - reference).mean(), np.abs(decoded.bgr - gray[:, :, None]).mean())
    assert error < 12


def test_truncated_data_is_invalid() -> None:
    data = images.jpeg("astronaut.png")
    with pytest.raises(InvalidImage, match="could not be decoded"):
        _decode(data[: len(data) // 2])


SMALL_LIMITS = Limits(max_image_pixels=9_000_000)


@pytest.fixture(scope="module")
def lying() -> list[hostile.Sample]:
    return hostile.lying(cv2.resize(images.bgr("chelsea.png"), (1200, 800)))


def test_files_that_lie_about_their_size_are_refused_or_fail_before_they_cost(lying: list[hostile.Sample]) -> None:
    refused_by_probe = set()
    for sample in lying:
        try:
            info = probe(sample.data, SMALL_LIMITS)
        except (InvalidImage, LimitExceeded):
            refused_by_probe.add(sample.name)
            continue
        # Those the probe lets through are refused by their decoder before it allocates (libheif's own limits,
        # libwebp's and libpng's checks of the canvas and header).
        with pytest.raises(InvalidImage):
            decode(sample.data, info)
        sizes_target(sample.data)  # the fuzz target that compares the two sizes finds nothing to report
    assert refused_by_probe == {
        "tiff-16x16-in-8192x6144-tiles",
        "tiff-6000x6000-then-16x16-tags",
        "avif-claiming-100x100-over-4000x4000",
        "jpeg-with-20000-scans",
    }


def test_a_decode_that_disagrees_with_its_header_is_refused() -> None:
    data = images.encode(cv2.resize(images.bgr("chelsea.png"), (64, 48)), ".png")
    honest = probe(data, Limits())
    with pytest.raises(InvalidImage, match="decodes to 64x48 but its header says 32x48"):
        decode(data, ImageInfo("PNG", 32, 48))
    assert decode(data, honest).size == (64, 48)
