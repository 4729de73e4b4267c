"""Every decoder bounded by the configured limit, whatever a file says: the files that lie about their size
(bench/hostile.py) refused by the probe, the TIFF layouts scanners and editors write accepted, the AV1 sequence
header read as libavif's decoder reads it, and a decode that disagrees with its header refused."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from bench import hostile
from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image import av1, heif
from service.image.decode import decode
from service.image.probe import ImageInfo, probe
from tests import images
from tests.fuzz.targets import sizes_target

LIMITS = Limits(max_image_pixels=9_000_000)


@pytest.fixture(scope="module")
def lying() -> list[hostile.Sample]:
    return hostile.lying(cv2.resize(images.bgr("chelsea.png"), (1200, 800)))


def test_files_that_lie_about_their_size_are_refused_or_fail_before_they_cost(lying: list[hostile.Sample]) -> None:
    refused_by_probe = set()
    for sample in lying:
        try:
            info = probe(sample.data, LIMITS)
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


def _tiff(array: np.ndarray, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "TIFF", **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {}),
        ("RGB", {"compression": "tiff_lzw"}),
        ("RGB", {"compression": "tiff_adobe_deflate"}),
        ("RGB", {"compression": "packbits"}),
        ("RGB", {"compression": "jpeg", "quality": 90}),
        ("RGBA", {"compression": "tiff_lzw"}),
        ("L", {}),
        ("I;16", {}),
        ("1", {"compression": "group4"}),
        ("RGB", {"compression": "tiff_lzw", "tile": (64, 64)}),
    ],
    ids=["raw", "lzw", "deflate", "packbits", "jpeg", "rgba-lzw", "gray", "gray16", "bilevel-g4", "tiled-lzw"],
)
def test_the_tiff_layouts_scanners_and_editors_write_are_accepted(mode: str, options: dict[str, object]) -> None:
    rgb = cv2.cvtColor(cv2.resize(images.bgr("coffee.png"), (150, 100)), cv2.COLOR_BGR2RGB)
    array = {
        "RGB": rgb,
        "RGBA": np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]),
        "L": rgb[:, :, 1],
        "I;16": rgb[:, :, 1].astype(np.uint16) * 257,
        "1": rgb[:, :, 1] > 128,
    }[mode]
    tile = options.pop("tile", None)
    if tile:
        # Pillow writes tiles through libtiff's own writer, told by the tag.
        options = {**options, "tiffinfo": {322: tile[0], 323: tile[1]}}
    data = _tiff(array, **options)
    info = probe(data, Limits())
    assert (info.format, info.width, info.height) == ("TIFF", 150, 100)
    decoded = decode(data, info)
    assert decoded.bgr.shape == (100, 150, 3)


def test_a_decode_that_disagrees_with_its_header_is_refused() -> None:
    data = images.encode(cv2.resize(images.bgr("chelsea.png"), (64, 48)), ".png")
    honest = probe(data, Limits())
    with pytest.raises(InvalidImage, match="decodes to 64x48 but its header says 32x48"):
        decode(data, ImageInfo("PNG", 32, 48))
    assert decode(data, honest).size == (64, 48)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (300, 200), (4000, 3000), (8193, 3)])
def test_the_av1_sequence_header_gives_the_frame_size_libavif_decodes(width: int, height: int) -> None:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "AVIF", quality=30, speed=10)
    data = out.getvalue()
    container = heif.read_container(data, "AVIF")
    heif.av1_frames_fit(container.data, width * height)  # fits exactly
    with pytest.raises(LimitExceeded, match=f"frames of up to {width * height} pixels"):
        heif.av1_frames_fit(container.data, width * height - 1)
    claiming = hostile.iso_media_claiming(data, width + 1, height)
    with pytest.raises(InvalidImage, match=f"its AV1 frames are {width}x{height}"):
        heif.av1_frames_fit(claiming, 10**9)


def test_an_av1_item_that_is_not_a_bitstream_is_refused() -> None:
    with pytest.raises(av1.Av1Error, match="forbidden bit"):
        av1.sequence_headers(b"\xff\x00", 0, 2)
    with pytest.raises(av1.Av1Error, match="runs past"):
        av1.sequence_headers(b"\x0a\x05\x00\x00", 0, 4)  # a sequence header OBU claiming 5 bytes, 2 there
    with pytest.raises(av1.Av1Error, match="sequence header is truncated"):
        av1.sequence_headers(b"\x0a\x01\x00", 0, 3)  # one byte cannot hold a sequence header
    assert av1.sequence_headers(b"\x12\x00", 0, 2) == []  # a temporal delimiter alone
