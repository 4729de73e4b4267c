"""The model's input tensor from the resized image, as the model's profile asks: uint8, or float32 scaled."""

from __future__ import annotations

import numpy as np

from service.config import InputDtype, Profile
from service.image.resize import model_size, resize_to


def model_input(rgb: np.ndarray, profile: Profile) -> np.ndarray:
    """A C-contiguous [1, h, w, 3] array of the profile's dtype."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (h, w, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if profile.input_dtype == InputDtype.UINT8:
        return np.ascontiguousarray(rgb)[np.newaxis]
    scaled = rgb.astype(np.float32)
    scaled -= np.float32(profile.input_offset)
    scaled /= np.float32(profile.input_scale)
    return scaled[np.newaxis]


def tensor_for(rgb: np.ndarray, full_size: tuple[int, int], profile: Profile) -> np.ndarray:
    """The model's input for a decoded image (possibly decoded at reduced scale) whose full size is `full_size`."""
    return model_input(resize_to(rgb, model_size(*full_size, profile)), profile)
