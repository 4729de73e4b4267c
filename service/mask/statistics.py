"""Per-class pixel counts, fractions and bounding boxes of a mask, computed from its grid description.

Segmentation masks are mostly long runs, so the statistics come from the row runs of the grid, each run standing
for a rectangle of the full-size mask. A mask of noise has nearly as many runs as cells, and a patched grid has
pixels of its own; then a pass over the cells (and the patched pixels) is cheaper, and gives the same numbers.
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
    stats = _from_runs(grid) if grid.patches is None and not noisy else _from_cells(grid)
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


def _from_cells(grid: MaskGrid) -> list[ClassStats]:
    """From every grid cell and every patched pixel: for noisy grids, and for patched ones."""
    small, patches = grid.small, grid.patches
    rows, cols = grid.row_repeats, grid.col_repeats
    repeated = (rows > 0)[:, None] & (cols > 0)[None, :]
    if patches is not None:
        repeated &= ~patches.cells
    # Each cell stands for row_repeat x col_repeat full-size pixels; float64 counts are exact here.
    counts = np.bincount(small.ravel(), weights=(np.outer(rows, cols) * repeated).ravel(), minlength=256)
    if patches is not None:
        counts += np.bincount(patches.values, minlength=256)
    total = grid.width * grid.height
    stats = []
    for class_id in np.flatnonzero(counts):
        boxes = []  # (left, top, right, bottom), one past the last pixel
        present = (small == class_id) & repeated
        if present.any():
            ys = np.flatnonzero(present.any(axis=1))
            xs = np.flatnonzero(present.any(axis=0))
            edges = grid.col_edges[xs[0]], grid.row_edges[ys[0]], grid.col_edges[xs[-1] + 1], grid.row_edges[ys[-1] + 1]
            boxes.append(tuple(int(edge) for edge in edges))
        if patches is not None and (mine := patches.values == class_id).any():
            ys, xs = patches.rows[mine], patches.cols[mine]
            boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
        right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
        count = round(counts[class_id])
        stats.append(ClassStats(int(class_id), count, count / total, left, top, right - left, bottom - top))
    return stats
