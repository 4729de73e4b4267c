"""A binary mask as COCO's run-length encoding, compressed: the `counts` string pycocotools reads.

COCO flattens the mask column by column (Fortran order) and counts alternating runs, zeros first. The compressed
form writes each count (from the fourth on, less the count two before it) as little-endian groups of 5 bits, one
character each (48 + the group, + 32 while more groups follow), the last group's top bit its sign.

A region is encoded from its bounding box: every pixel outside it is 0, so the runs are found within the box's
columns and placed at their index in the whole mask.
"""

from __future__ import annotations

import numpy as np


def run_counts(box: np.ndarray, x: int, y: int, height: int, width: int) -> np.ndarray:
    """The runs (zeros first) of a (height, width) mask that is 0 but for `box` (bool) placed at column x, row y."""
    box_height = box.shape[0]
    columns = np.zeros((box.shape[1], box_height + 2), dtype=np.int8)
    columns[:, 1:-1] = box.T
    changes = np.diff(columns, axis=1)  # +1 where a run of ones starts, -1 just after it ends
    column, row = np.nonzero(changes)
    # Flat Fortran index of each change: the row within the box, the box's first row, and its column in the mask.
    flat = (x + column).astype(np.int64) * height + y + row
    edges = flat.reshape(-1, 2)  # (start, end) of each run of ones, in order
    if edges.size:
        # A run that ends at the foot of one column and one that starts at the head of the next are one run.
        starts, ends = edges[:, 0], edges[:, 1]
        joined = np.concatenate(([False], starts[1:] == ends[:-1]))
        starts = starts[~joined]
        ends = ends[np.concatenate((~joined[1:], [True]))]
        edges = np.stack((starts, ends), axis=1)
    bounds = np.concatenate(([0], edges.ravel(), [height * width]))
    counts = np.diff(bounds)
    # A mask that ends in a one ends its runs there: COCO writes no empty run of zeros after it.
    return counts[:-1] if counts.size > 1 and counts[-1] == 0 else counts


def compress(counts: np.ndarray) -> str:
    """COCO's compressed text of a list of run counts."""
    out = []
    values = counts.tolist()
    for i, count in enumerate(values):
        value = count - values[i - 2] if i > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            out.append(chr(48 + (group | 0x20 if more else group)))
    return "".join(out)


def encode(box: np.ndarray, x: int, y: int, height: int, width: int) -> str:
    """The compressed COCO RLE `counts` of a (height, width) mask that is 0 but for `box` at column x, row y."""
    return compress(run_counts(box, x, y, height, width))
