"""Resizing the decoded image to the model's input size, by the model's resize policy, as TensorFlow resizes."""

from __future__ import annotations

import numpy as np

from service.image import bilinear
from service.profiles import Profile, ResizePolicy


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


def resize_to(bgr: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """The decoded BGR image resized to `target` = (width, height): float32 RGB (h, w, 3), C-contiguous.

    TensorFlow's bilinear resize with half-pixel centres, what DeepLab graphs do to the whole photo themselves
    (`resize/ResizeBilinear`), bit for bit; no smoothing before a large reduction, as there is none in the graph.
    """
    return bilinear.resize(bgr, target, reverse_channels=True)
