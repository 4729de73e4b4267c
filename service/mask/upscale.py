"""The mask at another size, decided as the model decides it: its scores enlarged bilinearly, then the argmax.

A DeepLab graph answers at the input's size by enlarging its score maps (TensorFlow's bilinear resize, half-pixel
centres) and taking the argmax per pixel. Each output pixel mixes the scores of the 2 x 2 model-size cells around
it. Where those four cells have the same class, every mix of their scores has it too, so the pixel's class is
that one; only pixels whose four cells differ, a few percent near class boundaries, need the scores themselves.
So the full-size mask is a grid of repeated values (MaskGrid) plus those pixels, decided one by one from the
scores with the graph's own arithmetic (service/image/bilinear.py).

Without scores, the class ids are enlarged by nearest neighbour, which differs from the model at boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.image.bilinear import Taps, mix_columns, mix_rows, taps
from service.mask.classes import ModelMask, ScoreMap
from service.mask.grid import MaskGrid, Patches, grid_for


@dataclass(frozen=True)
class _Bands:
    """Runs of consecutive output indices that read the same two source indices (one axis)."""

    start: np.ndarray  # first output index of each band
    count: np.ndarray  # output indices in it
    lower: np.ndarray  # the two source indices they read
    upper: np.ndarray
    taps: Taps  # every output index's


def _bands(axis: Taps) -> _Bands:
    new = np.empty(axis.lower.size, dtype=bool)
    new[0] = True
    np.not_equal(axis.lower[1:], axis.lower[:-1], out=new[1:])
    new[1:] |= axis.upper[1:] != axis.upper[:-1]
    start = np.flatnonzero(new)
    count = np.diff(start, append=axis.lower.size)
    return _Bands(start, count, axis.lower[start], axis.upper[start], axis)


def upscale(mask: ModelMask, width: int, height: int) -> MaskGrid:
    """The mask at (width, height): the model's decision at every pixel where it gave scores, else nearest neighbour."""
    small = mask.classes
    if mask.scores is None or small.shape == (height, width):
        return grid_for(small, width, height)
    rows, cols = _bands(taps(height, small.shape[0])), _bands(taps(width, small.shape[1]))
    top, bottom = small[rows.lower], small[rows.upper]
    cell = top[:, cols.lower]
    mixed = (cell != top[:, cols.upper]) | (cell != bottom[:, cols.lower]) | (cell != bottom[:, cols.upper])
    grid = MaskGrid(cell, rows.count, cols.count)
    if not mixed.any():
        return grid
    return MaskGrid(cell, rows.count, cols.count, _decide(mask.scores, mixed, rows, cols))


_PIXELS_AT_ONCE = 1 << 14


def _decide(scores: ScoreMap, mixed: np.ndarray, rows: _Bands, cols: _Bands) -> Patches:
    """Every pixel of the mixed cells, its class the argmax of its scores mixed as the graph mixes them."""
    band_y, band_x = np.nonzero(mixed)  # row-major, so the pixels come grouped by band row
    heights, widths = rows.count[band_y], cols.count[band_x]
    sizes = heights * widths
    cell_of = np.repeat(np.arange(sizes.size), sizes)
    offset = np.arange(cell_of.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    within = offset % widths[cell_of]  # the pixel's column in its cell
    pixel_rows = rows.start[band_y][cell_of] + offset // widths[cell_of]
    pixel_cols = cols.start[band_x][cell_of] + within
    # The four cells' scores, once per mixed cell. A pixel's mix of them, in the graph's order, is its column's mix of
    # the top two and of the bottom two, then those two mixed by its row: the column's mixes are made once for each
    # column of each cell (a cell spans several rows), and each pixel only mixes its column's two by its row, a block
    # of pixels at a time (at 4K the mixed pixels are a few hundred thousand, 21 scores each).
    top_y, bottom_y = rows.lower[band_y], rows.upper[band_y]
    left_x, right_x = cols.lower[band_x], cols.upper[band_x]
    top_left, top_right, bottom_left, bottom_right = (
        scores.at(y, x) for y in (top_y, bottom_y) for x in (left_x, right_x)
    )
    column_starts = np.cumsum(widths) - widths  # each cell's first column among all cells' columns
    column_cell = np.repeat(np.arange(widths.size), widths)
    column = cols.start[band_x][column_cell] + np.arange(column_cell.size) - column_starts[column_cell]
    corners = [corner[column_cell] for corner in (top_left, top_right, bottom_left, bottom_right)]
    top, rise = mix_columns(corners, cols.taps.lerp[column][:, np.newaxis])
    pixel_column = column_starts[cell_of] + within
    values = np.empty(cell_of.size, dtype=np.uint8)
    for start in range(0, cell_of.size, _PIXELS_AT_ONCE):
        block = slice(start, start + _PIXELS_AT_ONCE)
        columns = pixel_column[block]
        mixes = mix_rows(top[columns], rise[columns], rows.taps.lerp[pixel_rows[block]][:, np.newaxis])
        values[block] = np.argmax(mixes, axis=1)
    per_band_row = np.bincount(band_y, weights=sizes, minlength=mixed.shape[0]).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(per_band_row)))
    return Patches(pixel_rows, pixel_cols, values, mixed, offsets)
