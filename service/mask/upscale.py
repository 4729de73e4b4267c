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


# Mixed pixels decided at once: their indices, their columns' mixes and their scores are made for this many at a time,
# so that a photo whose every cell is mixed (noise, at 4K: 2.9 million pixels, 330 MB in one go) costs a few MB at a
# time; only the pixels' places and classes are kept.
_PIXELS_AT_ONCE = 1 << 15


def _decide(scores: ScoreMap, mixed: np.ndarray, rows: _Bands, cols: _Bands) -> Patches:
    """Every pixel of the mixed cells, its class the argmax of its scores mixed as the graph mixes them."""
    band_y, band_x = np.nonzero(mixed)  # row-major, so the pixels come grouped by band row
    sizes = rows.count[band_y] * cols.count[band_x]
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if ends.size else 0
    # Full-size places fit in 32 bits: the images are far below 2**31 pixels a side (max_image_pixels).
    found = Patches(
        np.empty(total, np.int32),
        np.empty(total, np.int32),
        np.empty(total, np.uint8),
        mixed,
        np.concatenate(([0], np.cumsum(np.bincount(band_y, weights=sizes, minlength=mixed.shape[0])))).astype(np.int64),
    )
    first = 0
    while first < sizes.size:
        # The cells whose pixels end within _PIXELS_AT_ONCE of the first's first pixel, and at least that one.
        begin = int(ends[first] - sizes[first])
        last = max(first + 1, int(np.searchsorted(ends, begin + _PIXELS_AT_ONCE, side="right")))
        _decide_cells(scores, rows, cols, band_y[first:last], band_x[first:last], found=found, begin=begin)
        first = last
    return found


def _decide_cells(
    scores: ScoreMap, rows: _Bands, cols: _Bands, band_y: np.ndarray, band_x: np.ndarray, *, found: Patches, begin: int
) -> None:
    """The pixels of some consecutive mixed cells, written into `found` from pixel `begin` on."""
    heights, widths = rows.count[band_y], cols.count[band_x]
    sizes = heights * widths
    cell_of = np.repeat(np.arange(sizes.size), sizes)
    offset = np.arange(cell_of.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    within = offset % widths[cell_of]  # the pixel's column in its cell
    pixel_rows = rows.start[band_y][cell_of] + offset // widths[cell_of]
    done = slice(begin, begin + cell_of.size)
    found.rows[done] = pixel_rows
    found.cols[done] = cols.start[band_x][cell_of] + within
    # The four cells' scores, once per mixed cell. A pixel's mix of them, in the graph's order, is its column's mix of
    # the top two and of the bottom two, then those two mixed by its row: the column's mixes are made once for each
    # column of each cell (a cell spans several rows), and each pixel only mixes its column's two by its row.
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
    columns = column_starts[cell_of] + within
    mixes = mix_rows(top[columns], rise[columns], rows.taps.lerp[pixel_rows][:, np.newaxis])
    found.values[done] = np.argmax(mixes, axis=1)
