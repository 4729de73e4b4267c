"""Resizing the decoded image to the model's input size: longest side = input_size, aspect ratio kept."""

from __future__ import annotations

import cv2
import numpy as np


def model_size(width: int, height: int, input_size: int) -> tuple[int, int]:
    """(width, height) of the model input. Never upscales: small images go as they are."""
    longest = max(width, height)
    if longest <= input_size:
        return width, height
    scale = input_size / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_for_model(rgb: np.ndarray, input_size: int, full_size: tuple[int, int] | None = None) -> np.ndarray:
    """A C-contiguous (h, w, 3) uint8 array at the model's size.

    `full_size` is the image's (width, height) when `rgb` was decoded at reduced scale: the model's size follows
    from the full image, so a reduced decode slightly under the input size is scaled up to it.
    """
    height, width = rgb.shape[:2]
    target = model_size(*(full_size or (width, height)), input_size)
    if target == (width, height):
        return np.ascontiguousarray(rgb)
    # INTER_AREA averages every source pixel (no aliasing) but costs ~7x INTER_LINEAR; below a 2x reduction
    # (the usual case after a reduced-scale JPEG decode) bilinear already sees every pixel.
    ratio = max(width / target[0], height / target[1])
    interpolation = cv2.INTER_AREA if ratio > 2 else cv2.INTER_LINEAR
    return cv2.resize(rgb, target, interpolation=interpolation)
