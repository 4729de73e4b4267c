"""Per-class probability maps from the model's scores: the softmax over the classes at the model's size, enlarged to
the mask's size with the half-pixel bilinear arithmetic that decides the mask (service/image/bilinear.py), as 8-bit
levels, round(255 x p), in a grayscale PNG.

The model-size scores are the model's own: where it gives coarser ones (DeepLab's logits at its output stride), they
are enlarged with aligned corners first, as the graph does (mask.classes.ScoreMap). The enlargement to the photo
runs in bands of rows, so that a map of a 50-megapixel photo needs a few MB of floats at a time, not 800 MB.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from service.image.bilinear import interpolate, taps
from service.mask.classes import ScoreMap

_BAND_ROWS = 256


@dataclass(frozen=True)
class ProbabilityMap:
    class_id: int
    width: int
    height: int
    png: bytes


def model_size_probabilities(scores: ScoreMap) -> np.ndarray:
    """(h, w, classes) float32: the softmax of the model's scores at its own size."""
    ys, xs = np.indices((scores.height, scores.width)).reshape(2, -1)
    logits = scores.at(ys, xs).reshape(scores.height, scores.width, -1)
    logits -= logits.max(axis=2, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=2, keepdims=True)
    return logits


def enlarged_levels(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width) uint8: round(255 x p) of a (h, w) float32 probability plane enlarged with half-pixel centres."""
    rows, cols = taps(height, plane.shape[0]), taps(width, plane.shape[1])
    left, right = plane[:, cols.lower], plane[:, cols.upper]  # (h, width): the model's rows, every column's taps
    x_lerp = cols.lerp[np.newaxis]
    out = np.empty((height, width), dtype=np.uint8)
    for start in range(0, height, _BAND_ROWS):
        band = slice(start, min(start + _BAND_ROWS, height))
        top, bottom = rows.lower[band], rows.upper[band]
        corners = [left[top], right[top], left[bottom], right[bottom]]
        values = interpolate(corners, x_lerp, rows.lerp[band][:, np.newaxis])
        values *= np.float32(255)
        np.rint(values, out=values)
        np.clip(values, 0, 255, out=values)
        out[band] = values
    return out


def region_mean(
    probabilities: np.ndarray, class_id: int, size: tuple[int, int], origin: tuple[int, int], inside: np.ndarray
) -> float:
    """The mean probability of `class_id` over a region's pixels: `inside`, a bool box at `origin` = (column, row) of
    a mask of `size` = (width, height), from the model-size probabilities (model_size_probabilities), enlarged as
    the maps are."""
    width, height = size
    x, y = origin
    plane = probabilities[:, :, class_id]
    rows, cols = taps(height, plane.shape[0]), taps(width, plane.shape[1])
    columns = slice(x, x + inside.shape[1])
    left, right = plane[:, cols.lower[columns]], plane[:, cols.upper[columns]]
    x_lerp = cols.lerp[columns][np.newaxis]
    total = 0.0
    for start in range(0, inside.shape[0], _BAND_ROWS):
        band = slice(y + start, y + min(start + _BAND_ROWS, inside.shape[0]))
        top, bottom = rows.lower[band], rows.upper[band]
        values = interpolate(
            [left[top], right[top], left[bottom], right[bottom]], x_lerp, rows.lerp[band][:, np.newaxis]
        )
        total += float(values[inside[start : start + _BAND_ROWS]].sum(dtype=np.float64))
    return total / int(inside.sum())


def probability_maps(scores: ScoreMap, class_ids: tuple[int, ...], width: int, height: int) -> list[ProbabilityMap]:
    """The maps of `class_ids` (each below the model's class count) at (width, height), as PNGs."""
    probabilities = model_size_probabilities(scores)
    maps = []
    for class_id in class_ids:
        plane = np.ascontiguousarray(probabilities[:, :, class_id])
        levels = enlarged_levels(plane, width, height)
        ok, png = cv2.imencode(".png", levels)
        assert ok  # a uint8 image always encodes
        maps.append(ProbabilityMap(class_id, width, height, png.tobytes()))
    return maps
