"""service/image/probe.py: format, size and orientation from the header, and what is refused before decoding."""

from __future__ import annotations

import resource
import time

import cv2
import pytest

from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image.decode import decode
from service.image.probe import probe
from service.image.resize import longest_side_size
from tests import images

LIMITS = Limits()


@pytest.mark.parametrize(
    ("data", "fmt", "size"),
    [
        (images.jpeg("astronaut.png"), "JPEG", (512, 512)),
        (images.png("chelsea.png"), "PNG", (451, 300)),
        (images.webp("coffee.png"), "WebP", (600, 400)),
        (images.encode(images.bgr("chelsea.png"), ".bmp"), "BMP", (451, 300)),
        (images.encode(images.bgr("chelsea.png"), ".tiff"), "TIFF", (451, 300)),
        (images.encode(images.bgr("chelsea.png"), ".webp", cv2.IMWRITE_WEBP_QUALITY, 101), "WebP", (451, 300)),
        (images.cmyk_jpeg("chelsea.png"), "JPEG", (451, 300)),
    ],
    ids=["jpeg", "png", "webp-lossy", "bmp", "tiff", "webp-lossless", "cmyk-jpeg"],
)
def test_probe_reads_format_and_size_from_the_header(data: bytes, fmt: str, size: tuple[int, int]) -> None:
    info = probe(data, LIMITS)
    assert (info.format, info.width, info.height) == (fmt, *size)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_probe_reads_the_exif_orientation(orientation: int) -> None:
    info = probe(images.with_orientation(images.jpeg("chelsea.png"), orientation), LIMITS)
    assert info.orientation == orientation
    assert info.oriented_size == ((300, 451) if orientation >= 5 else (451, 300))


def test_probe_refuses_a_huge_header_in_microseconds() -> None:
    data = images.png_header_claiming(30000, 30000)
    start = time.perf_counter()
    with pytest.raises(LimitExceeded, match=r"30000x30000 = 900000000 pixels.*max_image_pixels=50000000"):
        probe(data, LIMITS)
    assert time.perf_counter() - start < 0.01


def test_probe_refuses_bytes_over_the_limit() -> None:
    with pytest.raises(LimitExceeded, match="max_image_bytes=100"):
        probe(images.png("chelsea.png"), Limits(max_image_bytes=100))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the image is empty"),
        (b"hello, this is text", "not an image"),
        (images.gif(), "unsupported image format GIF"),
        (images.png("chelsea.png")[:20], "PNG header is truncated"),
        (images.jpeg("chelsea.png")[:40], "JPEG header is truncated"),
    ],
    ids=["empty", "text", "gif", "short-png", "short-jpeg"],
)
def test_probe_names_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        probe(data, LIMITS)


def test_a_png_chunk_longer_than_the_data_is_refused_before_decoding() -> None:
    # OpenCV allocates a chunk's declared length before reading it: 92 bytes could cost 4 GiB (found by fuzzing).
    data = images.png("chelsea.png")
    claiming = bytearray(data[:100])
    claiming[33:37] = (0xFFFFF000).to_bytes(4, "big")  # the first chunk after IHDR
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for broken in (bytes(claiming), data[: len(data) // 2]):
        with pytest.raises(InvalidImage, match=r"PNG is truncated or corrupt: chunk .* declares \d+ bytes, only"):
            _decode(broken)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def _decode(data: bytes, reduced_for: int | None = None):  # type: ignore[no-untyped-def]
    """Every pixel, or reduced for a model whose longest side is `reduced_for`."""
    info = probe(data, LIMITS)
    target = longest_side_size(*info.oriented_size, reduced_for) if reduced_for else None
    return decode(data, info, target)


def test_a_jpeg_may_have_up_to_100_scans_counted_by_their_markers() -> None:
    photo = images.encode(cv2.resize(images.bgr("chelsea.png"), (64, 48)), ".jpg")
    assert probe(photo + b"\xff\xda" * 99, Limits()).format == "JPEG"  # its own scan and 99 more
    assert probe(photo + b"\x00\xda" * 500, Limits()).format == "JPEG"  # 0xDA alone marks nothing
    with pytest.raises(InvalidImage, match="more than 100 scans"):
        probe(photo + b"\xff\xda" * 100, Limits())
    with pytest.raises(InvalidImage, match="more than 100 scans"):
        probe(memoryview(photo + b"\xff\xda" * 100), Limits())
