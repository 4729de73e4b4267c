"""Resizing the decoded image to the model's input size, by the model's resize policy."""

from __future__ import annotations

import cv2
import numpy as np

from service.config import Profile, ResizePolicy


def longest_side_size(width: int, height: int, longest_side: int) -> tuple[int, int]:
    """(width, height) with the longest side at most `longest_side`, aspect ratio kept. Never upscales."""
    longest = max(width, height)
    if longest <= longest_side:
        return width, height
    scale = longest_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def model_size(width: int, height: int, profile: Profile) -> tuple[int, int]:
    """(width, height) of the tensor the model gets for an image of this (oriented) size."""
    if profile.resize == ResizePolicy.FIXED:
        return profile.width, profile.height
    return longest_side_size(width, height, profile.longest_side)


def resize_to(rgb: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """A C-contiguous (h, w, 3) uint8 array of size `target` = (width, height)."""
    height, width = rgb.shape[:2]
    if target == (width, height):
        return np.ascontiguousarray(rgb)
    # INTER_AREA averages every source pixel (no aliasing) but costs ~7x INTER_LINEAR; below a 2x reduction
    # (the usual case after a reduced-scale JPEG decode) bilinear already sees every pixel, and it is the
    # filter for the rare upscale (a reduced decode slightly under the input size, or a fixed-size model).
    ratio = max(width / target[0], height / target[1])
    interpolation = cv2.INTER_AREA if ratio > 2 else cv2.INTER_LINEAR
    return cv2.resize(rgb, target, interpolation=interpolation)
