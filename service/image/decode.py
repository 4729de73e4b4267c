"""Decoding to 8-bit BGR with OpenCV (HEIF and AVIF: service/image/heif.py), orientation applied: every pixel, or
(a profile's speed option) a JPEG at reduced scale when the model needs far fewer pixels.

The image stays BGR, as OpenCV decodes it: the resize reads the few pixels it needs in RGB order (bilinear.py),
which spares a pass over the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from service.errors import InvalidImage
from service.image import heif
from service.image.probe import ImageInfo

ISO_MEDIA = ("HEIF", "AVIF")  # decoded by service/image/heif.py; everything else by OpenCV

_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


@dataclass(frozen=True)
class Decoded:
    bgr: np.ndarray  # (h, w, 3) uint8, oriented, possibly at 1/scale of the original
    width: int  # the original size once oriented, whatever scale was decoded
    height: int
    scale: int  # 1, 2, 4 or 8: the JPEG decoder's reduction

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole image once oriented."""
        return self.width, self.height


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# A reduced decode may land a little below the model's input size; the resize step then scales it up by at most
# 1/0.9. Entropy decoding at 1/4 instead of 1/2 scale saves a quarter of the decode time of a 1080p JPEG.
MIN_DECODE_FRACTION = 0.9


def reduction_for(info: ImageInfo, target: tuple[int, int]) -> int:
    """The largest JPEG reduction that still leaves about the model's input size, `target` = (width, height)."""
    if info.format != "JPEG":
        return 1
    width, height = info.oriented_size
    for factor in (8, 4, 2):
        if min(_ceil_div(width, factor) / target[0], _ceil_div(height, factor) / target[1]) >= MIN_DECODE_FRACTION:
            return factor
    return 1


def _sizes_agree(info: ImageInfo, bgr: np.ndarray, factor: int) -> None:
    """Refuses an image that decodes to another size than its header gave (at 1/`factor` scale, either way round:
    a decoder may apply an orientation the header did not show): the limits were checked on the header's size."""
    height, width = bgr.shape[:2]
    expected = (_ceil_div(info.width, factor), _ceil_div(info.height, factor))
    if (width, height) not in (expected, expected[::-1]):
        raise InvalidImage(
            f"the {info.format} image decodes to {width}x{height} but its header says {info.width}x{info.height}"
            + (f" (at 1/{factor} scale)" if factor > 1 else "")
        )


def decode(data: bytes | memoryview, info: ImageInfo, target: tuple[int, int] | None = None) -> Decoded:
    """Decodes to BGR: every pixel, or at reduced scale when given the model's input size `target` (width, height)
    and that allows it.

    Grayscale, alpha, palette and 16-bit images become 8-bit BGR; alpha is dropped.
    """
    if info.format in ISO_MEDIA:
        bgr = heif.decode(info.container or heif.read_container(data, info.format))
        _sizes_agree(info, bgr, 1)
        return Decoded(bgr=bgr, width=bgr.shape[1], height=bgr.shape[0], scale=1)
    factor = reduction_for(info, target) if target is not None else 1
    try:
        # IMREAD_COLOR (and the reduced variants) apply the EXIF orientation and convert every layout to BGR.
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _REDUCED_FLAGS[factor])
    except cv2.error as exc:
        raise InvalidImage(f"the {info.format} image could not be decoded: {exc.err}") from exc
    if bgr is None or bgr.size == 0:
        raise InvalidImage(f"the {info.format} image could not be decoded (corrupt or truncated data)")
    _sizes_agree(info, bgr, factor)
    height, width = bgr.shape[:2]
    if factor == 1:
        full_w, full_h = width, height
    else:
        # The decoder rounds reduced sizes up; recover the original size from the header.
        oriented_w, oriented_h = info.oriented_size
        if (width, height) == (_ceil_div(oriented_w, factor), _ceil_div(oriented_h, factor)):
            full_w, full_h = oriented_w, oriented_h
        else:
            full_w, full_h = info.width, info.height  # the decoder did not rotate
    return Decoded(bgr=bgr, width=full_w, height=full_h, scale=factor)
