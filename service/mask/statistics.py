"""Per-class pixel counts, fractions and bounding boxes of a mask, computed at the model's resolution.

Segmentation masks are mostly long runs, so the statistics come from the row runs of the model-size mask,
each run standing for a rectangle of the full-size mask. A mask of noise has nearly as many runs as pixels;
then a per-pixel pass is cheaper, and gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.mask.grid import MaskGrid

# Above this many runs per pixel, the per-pixel pass is the faster one.
_RUNS_PER_PIXEL_LIMIT = 0.125


@dataclass(frozen=True)
class ClassStats:
    class_id: int
    pixel_count: int
    fraction: float
    x: int
    y: int
    width: int
    height: int


def class_statistics(grid: MaskGrid) -> list[ClassStats]:
    """Statistics of every class present in the full-size mask, by descending pixel count."""
    noisy = grid.runs.value.size > _RUNS_PER_PIXEL_LIMIT * grid.small.size
    stats = _from_pixels(grid) if noisy else _from_runs(grid)
    stats.sort(key=lambda s: (-s.pixel_count, s.class_id))
    return stats


def _from_runs(grid: MaskGrid) -> list[ClassStats]:
    runs = grid.runs
    x0, x1 = grid.col_edges[runs.start], grid.col_edges[runs.end]
    y0, y1 = grid.row_edges[runs.row], grid.row_edges[runs.row + 1]
    area = (x1 - x0) * (y1 - y0)
    counts = np.bincount(runs.value, weights=area, minlength=256)
    total = grid.width * grid.height
    stats = []
    for class_id in np.flatnonzero(counts):
        mine = (runs.value == class_id) & (area > 0)
        left, top = int(x0[mine].min()), int(y0[mine].min())
        width, height = int(x1[mine].max()) - left, int(y1[mine].max()) - top
        count = round(counts[class_id])
        stats.append(ClassStats(int(class_id), count, count / total, left, top, width, height))
    return stats


def _from_pixels(grid: MaskGrid) -> list[ClassStats]:
    small = grid.small
    rows, cols = grid.row_repeats, grid.col_repeats
    # Each small pixel stands for row_repeat x col_repeat full-size pixels; float64 counts are exact here.
    counts = np.bincount(small.ravel(), weights=np.outer(rows, cols).ravel(), minlength=256)
    total = grid.width * grid.height
    visible = (rows > 0)[:, None] & (cols > 0)[None, :]
    stats = []
    for class_id in np.flatnonzero(counts):
        present = (small == class_id) & visible
        ys = np.flatnonzero(present.any(axis=1))
        xs = np.flatnonzero(present.any(axis=0))
        top, left = int(grid.row_edges[ys[0]]), int(grid.col_edges[xs[0]])
        height, width = int(grid.row_edges[ys[-1] + 1]) - top, int(grid.col_edges[xs[-1] + 1]) - left
        count = round(counts[class_id])
        stats.append(ClassStats(int(class_id), count, count / total, left, top, width, height))
    return stats
