"""A colour overlay for people: the image blended with the PASCAL-coloured mask, as PNG."""

from __future__ import annotations

import cv2
import numpy as np

from service.image.resize import longest_side_size
from service.mask.classes import ModelMask
from service.mask.colormap import PASCAL
from service.mask.encode import encode_rgb_png
from service.mask.grid import expand
from service.mask.upscale import upscale

# An overlay is a picture for people: past this many pixels on its longest side it only costs time and bytes
# (a 4000x3000 one was a 9 MB PNG taking about a second).
MAX_OVERLAY_SIDE = 1280
# What a call keeps of the image for its overlay while the model runs: at most this many pixels on the longest
# side (1.2 MB), enlarged when the overlay is made. A call in flight holds it, so it weighs in the memory clients
# can make the gateway hold (docs/reliability.md): at 1280 px it was 3.3 MB a call.
PICTURE_SIDE = 640


# The colormap in OpenCV's channel order, so that the decoded image is blended and encoded as it is.
_PASCAL_BGR = np.ascontiguousarray(PASCAL[:, ::-1])


def blend(bgr: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The BGR image, of the mask's size, with every non-background pixel tinted by its class colour."""
    tinted = cv2.addWeighted(bgr, 1.0 - alpha, _PASCAL_BGR[mask], alpha, 0.0)
    return np.where((mask > 0)[:, :, None], tinted, bgr)


def overlay_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the overlay of a (width, height) mask: that size, or scaled down to MAX_OVERLAY_SIDE."""
    return longest_side_size(width, height, MAX_OVERLAY_SIDE)


def overlay_picture(bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """The decoded image (BGR, any scale), for the overlay of a (width, height) mask: at the overlay's size, or
    scaled down to PICTURE_SIDE on its longest side. All a call keeps of the image for its overlay."""
    size = longest_side_size(*overlay_size(width, height), PICTURE_SIDE)
    if bgr.shape[:2] == (size[1], size[0]):
        return bgr
    shrinking = size[0] < bgr.shape[1] and size[1] < bgr.shape[0]
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def overlay_png(picture: np.ndarray, answer: ModelMask, width: int, height: int, alpha: float = 0.5) -> bytes:
    """A PNG of the picture (overlay_picture) with the model's mask for a (width, height) mask, at the overlay's
    size; the mask is decided at that size."""
    width, height = overlay_size(width, height)
    if picture.shape[:2] != (height, width):
        picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_LINEAR)
    return encode_rgb_png(blend(picture, expand(upscale(answer, width, height)), alpha))
