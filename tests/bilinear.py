"""TensorFlow's bilinear resize written out pixel by pixel, apart from the gateway's own (service/image/bilinear.py),
for tests that check the gateway's masks without TensorFlow in the process."""

from __future__ import annotations

import numpy as np


def _source(index: np.ndarray, out_size: int, in_size: int, align_corners: bool) -> tuple[np.ndarray, ...]:
    """TensorFlow's sampling of one axis, written out per index in float32 (resize_bilinear_op.cc)."""
    out = np.float32(out_size)
    if align_corners and out_size > 1:
        where = index.astype(np.float32) * (np.float32(in_size - 1) / np.float32(out_size - 1))
    else:
        where = (index.astype(np.float32) + np.float32(0.5)) * (np.float32(in_size) / out) - np.float32(0.5)
    low = np.floor(where)
    lower = np.clip(low.astype(int), 0, None)
    upper = np.clip(np.ceil(where).astype(int), None, in_size - 1)
    return lower, upper, (where - low).astype(np.float32)


def enlarged(scores: np.ndarray, height: int, width: int, align_corners: bool = False) -> np.ndarray:
    """Scores (h, w, C) enlarged to (height, width), each pixel from its four neighbours, TensorFlow's order."""
    y0, y1, dy = _source(np.arange(height), height, scores.shape[0], align_corners)
    x0, x1, dx = _source(np.arange(width), width, scores.shape[1], align_corners)
    rows_top, rows_bottom = scores[y0], scores[y1]
    out = np.empty((height, width, scores.shape[2]), np.float32)
    for x in range(width):
        top = rows_top[:, x0[x]] + (rows_top[:, x1[x]] - rows_top[:, x0[x]]) * dx[x]
        bottom = rows_bottom[:, x0[x]] + (rows_bottom[:, x1[x]] - rows_bottom[:, x0[x]]) * dx[x]
        out[:, x] = top + (bottom - top) * dy[:, None]
    return out
