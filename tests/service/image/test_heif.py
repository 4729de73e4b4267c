"""service/image/heif.py: HEIC and AVIF as phones send them, made at test time by libheif and libavif."""

from __future__ import annotations

import numpy as np
import pillow_heif
import pytest

from bench import hostile
from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image.decode import decode
from service.image.heif import coded_sizes
from service.image.probe import probe
from tests import images

MAKERS = images.PHONE_FORMATS


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


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("image_format", MAKERS)
def test_the_container_s_orientation_is_applied_once(image_format: str, orientation: int) -> None:
    data = MAKERS[image_format]("chelsea.png", orientation=orientation)
    assert probe(data, Limits()).format == image_format
    _close_to(_decoded(data), images.ORIENTED[orientation](images.bgr("chelsea.png")))


@pytest.mark.parametrize(("bits", "tile"), [(10, 0), (12, 0), (8, 128)], ids=["10-bit", "12-bit", "grid"])
def test_deep_colour_becomes_8_bit_and_a_grid_is_assembled(bits: int, tile: int) -> None:
    _close_to(_decoded(images.heic("astronaut.png", bits=bits, tile=tile)), images.bgr("astronaut.png"))


@pytest.mark.parametrize("image_format", MAKERS)
@pytest.mark.parametrize("keep", [0.5, 0.05, 40], ids=["half", "head", "ftyp"])
def test_a_truncated_file_is_invalid_and_names_its_format(image_format: str, keep: float) -> None:
    data = MAKERS[image_format]("chelsea.png")
    cut = data[: int(len(data) * keep) if keep < 1 else int(keep)]
    with pytest.raises(InvalidImage, match=f"the {image_format} (file|image)"):
        _decoded(cut)


@pytest.mark.parametrize("image_format", MAKERS)
@pytest.mark.parametrize("photo", ["astronaut.png", "chelsea.png"], ids=["uncropped", "cropped"])
def test_a_size_past_the_limit_is_refused_from_the_header(image_format: str, photo: str) -> None:
    """chelsea's 451 x 300 is coded larger and cropped (`clap`): libheif then reports the cropped size, and only
    the coded size tells what decoding would allocate."""
    claiming = hostile.iso_media_claiming(MAKERS[image_format](photo), 100_000, 100_000)
    with pytest.raises(LimitExceeded, match="100000x100000 = 10000000000 pixels, over the limit"):
        probe(claiming, Limits())
    assert (100_000, 100_000) in coded_sizes(claiming)


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
