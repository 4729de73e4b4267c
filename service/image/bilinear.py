"""TensorFlow's bilinear resize (`ResizeBilinear`), bit for bit, in NumPy and OpenCV.

DeepLab graphs resize with TensorFlow's kernel (tensorflow/core/kernels/image/resize_bilinear_op.cc): the image
to the network's size, the scores back to the input's size. Doing the same float32 operations in the same order
gives the same bits, so the tensor the gateway sends is the one the graph would make from the whole photo, and a
pixel at the original size gets the class the graph would give it. The kernel, for each output index i:

    in    = (i + 0.5) * scale - 0.5      half-pixel centres (scale = in_size / out_size), or
    in    = i * scale                    aligned corners (scale = (in_size - 1) / (out_size - 1))
    lower = max(floor(in), 0),  upper = min(ceil(in), in_size - 1),  lerp = in - floor(in)

and each value is  top + (bottom - top) * y_lerp,  with  top = top_left + (top_right - top_left) * x_lerp  (and
bottom alike): float32 throughout, one rounding per operation, no fused multiply-add.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# cv2.remap addresses pixels with 16-bit coordinates; wider images are gathered with NumPy.
_REMAP_MAX_SIDE = 32767


@dataclass(frozen=True)
class Taps:
    """Where each output index of one axis reads its two source indices, and the weight of the upper one."""

    lower: np.ndarray  # (out,) int64
    upper: np.ndarray  # (out,) int64
    lerp: np.ndarray  # (out,) float32, in [0, 1)


@functools.lru_cache(maxsize=512)
def taps(out_size: int, in_size: int, align_corners: bool = False) -> Taps:
    """The taps of one axis resized from `in_size` to `out_size`, with half-pixel centres unless `align_corners`."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
        source = np.arange(out_size, dtype=np.float32) * scale
    else:
        scale = np.float32(in_size) / np.float32(out_size)
        source = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    lerp = (source - floor).astype(np.float32)
    for array in (lower, upper, lerp):
        array.setflags(write=False)  # shared by every call through the cache
    return Taps(lower, upper, lerp)


def interpolate(corners: Sequence[np.ndarray], x_lerp: np.ndarray, y_lerp: np.ndarray) -> np.ndarray:
    """The kernel's value from four float32 corner arrays (top left, top right, bottom left, bottom right) and
    broadcastable weights, in TensorFlow's order."""
    return mix_rows(*mix_columns(corners, x_lerp), y_lerp)


def mix_columns(corners: Sequence[np.ndarray], x_lerp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's first half: the top two corners mixed by x_lerp, and the bottom two's mix less the top's."""
    top_left, top_right, bottom_left, bottom_right = corners
    top = top_right - top_left
    top *= x_lerp
    top += top_left
    bottom = bottom_right - bottom_left
    bottom *= x_lerp
    bottom += bottom_left
    bottom -= top
    return top, bottom


def mix_rows(top: np.ndarray, rise: np.ndarray, y_lerp: np.ndarray) -> np.ndarray:
    """The kernel's second half, from mix_columns' two (`rise` is overwritten): top + rise x y_lerp."""
    rise *= y_lerp
    rise += top
    return rise


def _corners(image: np.ndarray, ys: Taps, xs: Taps, reverse_channels: bool) -> tuple[np.ndarray, ...]:
    """The four corner images (top left, top right, bottom left, bottom right), each (out_h, out_w, c)."""
    height, width = ys.lower.size, xs.lower.size
    if max(image.shape[:2]) <= _REMAP_MAX_SIDE and image.dtype == np.uint8 and image.shape[2] in (3, 4):
        # One gather of all four: INTER_NEAREST at integer coordinates copies those very pixels.
        map_x = np.broadcast_to(np.concatenate((xs.lower, xs.upper)).astype(np.float32), (2 * height, 2 * width))
        map_y = np.broadcast_to(np.concatenate((ys.lower, ys.upper)).astype(np.float32)[:, np.newaxis], map_x.shape)
        both = cv2.remap(image, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_NEAREST)
        if reverse_channels:
            both = cv2.cvtColor(both, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
        return both[:height, :width], both[:height, width:], both[height:, :width], both[height:, width:]
    if reverse_channels:
        image = image[..., ::-1]
    return tuple(image[y][:, x] for y in (ys.lower, ys.upper) for x in (xs.lower, xs.upper))


def resize(
    image: np.ndarray, size: tuple[int, int], align_corners: bool = False, reverse_channels: bool = False
) -> np.ndarray:
    """`image` (h, w, c) resized to `size` = (width, height) as TensorFlow does: float32 (height, width, c).

    `reverse_channels` gives the channels in reverse order (BGR as OpenCV decodes to RGB as models take), on the
    sampled pixels rather than the whole image.
    """
    width, height = size
    channels = image.shape[2]
    if image.shape[:2] == (height, width):
        return (image[..., ::-1] if reverse_channels else image).astype(np.float32)
    ys, xs = taps(height, image.shape[0], align_corners), taps(width, image.shape[1], align_corners)
    # Rows of width * channels values with per-value x weights: NumPy's loops then run along whole rows.
    corners = [
        np.ascontiguousarray(corner, dtype=np.float32).reshape(height, width * channels)
        for corner in _corners(image, ys, xs, reverse_channels)
    ]
    x_lerp = np.repeat(xs.lerp, channels)[np.newaxis]
    y_lerp = ys.lerp[:, np.newaxis]
    return interpolate(corners, x_lerp, y_lerp).reshape(height, width, channels)
