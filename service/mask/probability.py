"""Per-class probability maps from the model's scores: the softmax over the classes at the model's size, enlarged to
the mask's size with the half-pixel bilinear arithmetic that decides the mask (service/image/bilinear.py), as 8-bit
levels, round(255 x p), in a grayscale PNG.

The model-size scores are the model's own: where it gives coarser ones (DeepLab's logits at its output stride), they
are enlarged with aligned corners first, as the graph does (mask.classes.ScoreMap). The enlargement to the photo
runs in bands of rows, so that a map of a 50-megapixel photo needs a few MB of floats at a time, not 800 MB.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def _enlarged_bands(
    plane: np.ndarray, size: tuple[int, int], columns: slice, rows: range
) -> Iterator[tuple[slice, np.ndarray]]:
    """A (h, w) float32 plane enlarged with half-pixel centres to `size` = (width, height), for the `columns` and
    `rows` of the enlargement asked for, a band of rows at a time: each band's rows and its (rows, columns) values."""
    width, height = size
    row_taps, col_taps = taps(height, plane.shape[0]), taps(width, plane.shape[1])
    # The model's rows at every column's taps: (h, columns) each.
    left, right = plane[:, col_taps.lower[columns]], plane[:, col_taps.upper[columns]]
    x_lerp = col_taps.lerp[columns][np.newaxis]
    for start in range(rows.start, rows.stop, _BAND_ROWS):
        band = slice(start, min(start + _BAND_ROWS, rows.stop))
        top, bottom = row_taps.lower[band], row_taps.upper[band]
        yield (
            band,
            interpolate([left[top], right[top], left[bottom], right[bottom]], x_lerp, row_taps.lerp[band][:, None]),
        )


def enlarged_levels(
    plane: np.ndarray, width: int, height: int, columns: slice | None = None, rows: slice | None = None
) -> np.ndarray:
    """uint8 round(255 x p) of a (h, w) float32 probability plane enlarged with half-pixel centres to (width,
    height): all of it, or the `columns` and `rows` of it asked for."""
    columns = columns or slice(0, width)
    rows = rows or slice(0, height)
    out = np.empty((rows.stop - rows.start, columns.stop - columns.start), dtype=np.uint8)
    for band, values in _enlarged_bands(plane, (width, height), columns, range(rows.start, rows.stop)):
        levels = np.multiply(values, np.float32(255), out=values)
        np.rint(levels, out=levels)
        np.clip(levels, 0, 255, out=levels)
        out[band.start - rows.start : band.stop - rows.start] = levels
    return out


def region_mean(
    probabilities: np.ndarray, class_id: int, size: tuple[int, int], origin: tuple[int, int], inside: np.ndarray
) -> float:
    """The mean probability of `class_id` over a region's pixels: `inside`, a bool box at `origin` = (column, row) of
    a mask of `size` = (width, height), from the model-size probabilities (model_size_probabilities), enlarged as
    the maps are."""
    x, y = origin
    columns, rows = slice(x, x + inside.shape[1]), range(y, y + inside.shape[0])
    total = 0.0
    for band, values in _enlarged_bands(probabilities[:, :, class_id], size, columns, rows):
        total += float(values[inside[band.start - y : band.stop - y]].sum(dtype=np.float64))
    return total / int(inside.sum())


def probability_maps(
    probabilities: np.ndarray, class_ids: tuple[int, ...], width: int, height: int
) -> list[ProbabilityMap]:
    """The maps of `class_ids` (each below the model's class count) at (width, height), as PNGs, from the
    model-size probabilities (model_size_probabilities)."""
    maps = []
    for class_id in class_ids:
        plane = np.ascontiguousarray(probabilities[:, :, class_id])
        levels = enlarged_levels(plane, width, height)
        ok, png = cv2.imencode(".png", levels)
        assert ok  # a uint8 image always encodes
        maps.append(ProbabilityMap(class_id, width, height, png.tobytes()))
    return maps
