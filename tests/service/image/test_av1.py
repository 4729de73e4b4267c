"""service/image/av1.py: the frame size from the AV1 sequence header."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench import hostile
from service.errors import InvalidImage, LimitExceeded
from service.image import av1, heif


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
