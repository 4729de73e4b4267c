"""Scaling the model-size mask to the requested size by nearest neighbour, described by repeat counts.

Nearest-neighbour upscaling repeats each source row and column a whole number of times, so the mask at the
original size is fully described by the small mask plus those counts. Statistics, runs and the PNG rows are
computed from that description instead of from millions of upscaled pixels.
"""

from __future__ import annotations

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
class MaskGrid:
    """A mask at the model's size and the row and column repeat counts that scale it to (width, height)."""

    small: np.ndarray  # (h, w) uint8 class ids
    row_repeats: np.ndarray  # (h,) int64, sums to height
    col_repeats: np.ndarray  # (w,) int64, sums to width

    @property
    def width(self) -> int:
        return int(self.col_repeats.sum())

    @property
    def height(self) -> int:
        return int(self.row_repeats.sum())

    @property
    def is_identity(self) -> bool:
        return self.small.shape == (self.height, self.width)

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
    return np.repeat(np.repeat(grid.small, grid.col_repeats, axis=1), grid.row_repeats, axis=0)
