"""HEIF (HEIC) and AVIF, as phones send them: made at test time from the shared photos by libheif and libavif,
read and decoded by the gateway's stages (every orientation, 10 and 12 bits, a grid, truncated files, a size claim
past the limit) and segmented end to end."""

from __future__ import annotations

import cv2
import numpy as np
import pillow_heif
import pytest

from bench import hostile
from segmentation.v1 import segmentation_service_pb2 as pb
from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image.decode import decode
from service.image.heif import coded_sizes
from service.image.probe import probe
from tests import images
from tests.paths import CAT

MAKERS = {"HEIF": images.heic, "AVIF": images.avif}
# An EXIF orientation's transform of the upright image (what a viewer shows).
ORIENTED = {
    1: lambda a: a,
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: cv2.transpose,
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _decoded(data: bytes) -> np.ndarray:
    info = probe(data, Limits())
    decoded = decode(data, info)
    assert decoded.size == info.oriented_size
    return decoded.bgr


def _close_to(got: np.ndarray, want: np.ndarray) -> None:
    """The same picture through a lossy codec: same shape, a small mean difference (a wrong turn or mirror is
    tens of levels off)."""
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.abs(got.astype(np.int16) - want).mean() < 4


@pytest.mark.unit
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("image_format", MAKERS)
def test_the_container_s_orientation_is_applied_once(image_format: str, orientation: int) -> None:
    data = MAKERS[image_format]("chelsea.png", orientation=orientation)
    assert probe(data, Limits()).format == image_format
    _close_to(_decoded(data), ORIENTED[orientation](images.bgr("chelsea.png")))


@pytest.mark.unit
@pytest.mark.parametrize(("bits", "tile"), [(10, 0), (12, 0), (8, 128)], ids=["10-bit", "12-bit", "grid"])
def test_deep_colour_becomes_8_bit_and_a_grid_is_assembled(bits: int, tile: int) -> None:
    _close_to(_decoded(images.heic("astronaut.png", bits=bits, tile=tile)), images.bgr("astronaut.png"))


@pytest.mark.unit
@pytest.mark.parametrize("image_format", MAKERS)
@pytest.mark.parametrize("keep", [0.5, 0.05, 40], ids=["half", "head", "ftyp"])
def test_a_truncated_file_is_invalid_and_names_its_format(image_format: str, keep: float) -> None:
    data = MAKERS[image_format]("chelsea.png")
    cut = data[: int(len(data) * keep) if keep < 1 else int(keep)]
    with pytest.raises(InvalidImage, match=f"the {image_format} (file|image)"):
        _decoded(cut)


@pytest.mark.unit
@pytest.mark.parametrize("image_format", MAKERS)
@pytest.mark.parametrize("photo", ["astronaut.png", "chelsea.png"], ids=["uncropped", "cropped"])
def test_a_size_past_the_limit_is_refused_from_the_header(image_format: str, photo: str) -> None:
    """chelsea's 451 x 300 is coded larger and cropped (`clap`): libheif then reports the cropped size, and only
    the coded size tells what decoding would allocate."""
    claiming = hostile.iso_media_claiming(MAKERS[image_format](photo), 100_000, 100_000)
    with pytest.raises(LimitExceeded, match="100000x100000 = 10000000000 pixels, over the limit"):
        probe(claiming, Limits())
    assert (100_000, 100_000) in coded_sizes(claiming)


@pytest.mark.unit
@pytest.mark.parametrize("image_format", MAKERS)
def test_a_request_s_bytes_are_parsed_once_and_copied_once(monkeypatch, image_format: str) -> None:  # type: ignore[no-untyped-def]
    """The probe's parse of the container goes to the decoder with the one copy of the request's buffer."""
    opened: list[int] = []
    real_open = pillow_heif.open_heif

    def counting_open(fp, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(id(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(pillow_heif, "open_heif", counting_open)
    request_buffer = memoryview(MAKERS[image_format]("chelsea.png"))
    info = probe(request_buffer, Limits())
    decoded = decode(request_buffer, info)
    assert len(opened) == 1
    assert info.container is not None and id(info.container.data) == opened[0]
    assert decoded.size == info.oriented_size


def _mask(response: pb.SegmentImageResponse) -> np.ndarray:
    return np.frombuffer(response.mask.data, np.uint8).reshape(response.mask.height, response.mask.width)


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
    shown, _ = mask(images.encode(ORIENTED[6](images.bgr("chelsea.png")), ".png"))
    assert (rotated == shown).mean() > 0.98
