"""Per-class pixel counts, fractions and bounding boxes of a mask, computed at the model's resolution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.resize_back import MaskGrid


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
    small = grid.small
    rows, cols = grid.row_repeats, grid.col_repeats
    if grid.is_identity:
        counts = np.bincount(small.ravel(), minlength=256)
    else:
        # Each small pixel stands for row_repeat x col_repeat full-size pixels; float64 counts are exact here.
        weights = np.outer(rows, cols).ravel()
        counts = np.rint(np.bincount(small.ravel(), weights=weights, minlength=256)).astype(np.int64)
    total = grid.width * grid.height
    row_start = np.cumsum(rows) - rows
    col_start = np.cumsum(cols) - cols
    visible = None
    if (rows == 0).any() or (cols == 0).any():
        visible = (rows > 0)[:, None] & (cols > 0)[None, :]
    stats = []
    for class_id in np.flatnonzero(counts):
        present = small == class_id
        if visible is not None:
            present &= visible
        ys = np.flatnonzero(present.any(axis=1))
        xs = np.flatnonzero(present.any(axis=0))
        y0, y1 = int(row_start[ys[0]]), int(row_start[ys[-1]] + rows[ys[-1]])
        x0, x1 = int(col_start[xs[0]]), int(col_start[xs[-1]] + cols[xs[-1]])
        count = int(counts[class_id])
        stats.append(ClassStats(int(class_id), count, count / total, x0, y0, x1 - x0, y1 - y0))
    stats.sort(key=lambda s: (-s.pixel_count, s.class_id))
    return stats
