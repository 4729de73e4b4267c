"""The model's input tensor from the resized image, as the model's profile asks: float32 (scaled), or uint8."""

from __future__ import annotations

import numpy as np

from service.image.resize import model_size, resize_to
from service.profiles import InputDtype, Profile


def model_input(resized: np.ndarray, profile: Profile) -> np.ndarray:
    """A C-contiguous [1, h, w, 3] array of the profile's dtype from float32 RGB (h, w, 3) in 0-255."""
    if resized.dtype != np.float32 or resized.ndim != 3 or resized.shape[2] != 3:
        raise ValueError(f"expected (h, w, 3) float32, got {resized.shape} {resized.dtype}")
    if profile.input_dtype == InputDtype.UINT8:
        # Rounded as tf.cast(tf.round(x), tf.uint8) would: to the nearest, halves to even.
        return np.rint(resized).astype(np.uint8)[np.newaxis]
    if (profile.input_offset, profile.input_scale) == (0.0, 1.0):
        return np.ascontiguousarray(resized)[np.newaxis]
    # The same float32 operations, in the same order, as the model's own (x - offset) / scale.
    scaled = resized - np.float32(profile.input_offset)
    scaled /= np.float32(profile.input_scale)
    return scaled[np.newaxis]


def tensor_for(bgr: np.ndarray, full_size: tuple[int, int], profile: Profile) -> np.ndarray:
    """The model's input for a decoded BGR image (possibly decoded at reduced scale) of full size `full_size`."""
    return model_input(resize_to(bgr, model_size(*full_size, profile)), profile)
