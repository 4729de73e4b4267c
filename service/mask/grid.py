"""A full-size mask described by a small grid of values, the row and column repeat counts that enlarge it, and the
few pixels decided one by one (patches).

Enlarging a mask repeats each grid row and column a whole number of times, so the mask at the original size is
described by the grid plus those counts; where the model's decision differs within a cell (service/mask/upscale.py),
the cell's pixels are patches. Statistics, runs and the PNG rows are computed from that description, a block of
rows at a time, instead of from millions of upscaled pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def repeats(source: int, target: int) -> np.ndarray:
    """How many of `target` pixels map to each of `source` pixels (pixel centres aligned)."""
    sources = ((2 * np.arange(target, dtype=np.int64) + 1) * source) // (2 * target)
    return np.bincount(sources, minlength=source)


@dataclass(frozen=True)
class RowRuns:
    """Maximal runs of equal class ids within each row of the model-size mask."""

    row: np.ndarray  # row of each run
    start: np.ndarray  # first column
    end: np.ndarray  # one past the last column
    value: np.ndarray  # class id


def row_runs(small: np.ndarray) -> RowRuns:
    h, w = small.shape
    change = np.empty((h, w), dtype=bool)
    change[:, 0] = True
    np.not_equal(small[:, 1:], small[:, :-1], out=change[:, 1:])
    flat = np.flatnonzero(change)
    row, start = np.divmod(flat, w)
    end = np.empty_like(start)
    end[:-1] = start[1:]
    end[-1] = w
    end[np.flatnonzero(row[1:] != row[:-1])] = w  # the last run of each row ends at the row's end
    return RowRuns(row, start, end, small.ravel()[flat])


@dataclass(frozen=True)
class Patches:
    """Every pixel of some grid cells, each with its own value, in the order of the cells' grid rows."""

    rows: np.ndarray  # (n,) int32 or int64 full-size row of each pixel
    cols: np.ndarray  # (n,) int32 or int64 full-size column
    values: np.ndarray  # (n,) uint8
    cells: np.ndarray  # (h, w) bool: the grid cells the pixels cover (their repeated value does not apply)
    offsets: np.ndarray  # (h + 1,) int64: the pixels of grid row y are [offsets[y], offsets[y + 1])


@dataclass(frozen=True)
class MaskGrid:
    """A grid of class ids, the row and column repeat counts that scale it to (width, height), and patches."""

    small: np.ndarray  # (h, w) uint8 class ids
    row_repeats: np.ndarray  # (h,) int64, sums to height
    col_repeats: np.ndarray  # (w,) int64, sums to width
    patches: Patches | None = None

    @property
    def width(self) -> int:
        return int(self.col_repeats.sum())

    @property
    def height(self) -> int:
        return int(self.row_repeats.sum())

    @property
    def is_identity(self) -> bool:
        """The grid is the mask itself: every count is 1 and nothing is patched."""
        return self.small.shape == (self.height, self.width) and self.patches is None

    @cached_property
    def runs(self) -> RowRuns:
        """The small mask's row runs, shared by the statistics and the RLE encoder."""
        return row_runs(self.small)

    @cached_property
    def row_edges(self) -> np.ndarray:
        """row_edges[y] is the first full-size row of small row y; row_edges[h] is the height."""
        return np.concatenate(([0], np.cumsum(self.row_repeats)))

    @cached_property
    def col_edges(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.col_repeats)))


def grid_for(small: np.ndarray, width: int, height: int) -> MaskGrid:
    return MaskGrid(small, repeats(small.shape[0], height), repeats(small.shape[1], width))


def expand(grid: MaskGrid) -> np.ndarray:
    """The mask at its full size, (height, width) uint8, C-contiguous."""
    if grid.is_identity:
        return np.ascontiguousarray(grid.small)
    full = np.repeat(np.repeat(grid.small, grid.col_repeats, axis=1), grid.row_repeats, axis=0)
    if grid.patches is not None:
        full[grid.patches.rows, grid.patches.cols] = grid.patches.values
    return full


def expand_part(grid: MaskGrid, rows: slice, columns: slice) -> np.ndarray:
    """The full-size mask's `rows` and `columns` (from 0, steps of 1), (rows, columns) uint8, built a block of rows
    at a time: a small part of a large mask costs its rows, not the whole mask."""
    if (rows.start, rows.stop, columns.start, columns.stop) == (0, grid.height, 0, grid.width):
        return expand(grid)
    out = np.empty((rows.stop - rows.start, columns.stop - columns.start), dtype=np.uint8)
    first = 0
    for block in row_blocks(grid, _PART_BLOCK_BYTES):
        last = first + block.shape[0]
        top, bottom = max(first, rows.start), min(last, rows.stop)
        if top < bottom:
            out[top - rows.start : bottom - rows.start] = block[top - first : bottom - first, columns]
        if last >= rows.stop:
            break
        first = last
    return out


_PART_BLOCK_BYTES = 1 << 20


def row_blocks(grid: MaskGrid, block_bytes: int, lead: int = 0) -> Iterator[np.ndarray]:
    """The full-size mask as consecutive blocks of whole rows, each about `block_bytes`, patches applied.

    Each row has `lead` zero bytes before the mask's own (a PNG scanline's filter byte), so a consumer can take the
    block as it is. The blocks are built from the grid: the whole mask never exists at once.
    """
    width = grid.width
    small_rows = np.zeros((grid.small.shape[0], width + lead), dtype=np.uint8)
    small_rows[:, lead:] = np.repeat(grid.small, grid.col_repeats, axis=1)
    rows_per_block = max(1, block_bytes // ((width + lead) * max(1, int(grid.row_repeats.max(initial=1)))))
    patches = grid.patches
    for first in range(0, small_rows.shape[0], rows_per_block):
        last = min(first + rows_per_block, small_rows.shape[0])
        block = np.repeat(small_rows[first:last], grid.row_repeats[first:last], axis=0)
        if patches is not None:
            mine = slice(patches.offsets[first], patches.offsets[last])
            block[patches.rows[mine] - grid.row_edges[first], patches.cols[mine] + lead] = patches.values[mine]
        yield block
