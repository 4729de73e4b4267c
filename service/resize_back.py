"""Scaling the model-size mask to the requested size by nearest neighbour, described by repeat counts.

Nearest-neighbour upscaling repeats each source row and column a whole number of times, so the mask at the
original size is fully described by the small mask plus those counts. Statistics, runs and the PNG rows are
computed from that description instead of from millions of upscaled pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def repeats(source: int, target: int) -> np.ndarray:
    """How many of `target` pixels map to each of `source` pixels (pixel centres aligned)."""
    sources = ((2 * np.arange(target, dtype=np.int64) + 1) * source) // (2 * target)
    return np.bincount(sources, minlength=source)


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


def grid_for(small: np.ndarray, width: int, height: int) -> MaskGrid:
    return MaskGrid(small, repeats(small.shape[0], height), repeats(small.shape[1], width))


def expand(grid: MaskGrid) -> np.ndarray:
    """The mask at its full size, (height, width) uint8, C-contiguous."""
    if grid.is_identity:
        return np.ascontiguousarray(grid.small)
    return np.repeat(np.repeat(grid.small, grid.col_repeats, axis=1), grid.row_repeats, axis=0)
