"""The PASCAL VOC colormap: class id -> RGB, by spreading the id's bits over the three channels."""

from __future__ import annotations

import numpy as np


def pascal_colormap(size: int = 256) -> np.ndarray:
    """A (size, 3) uint8 array; row i is the colour of class i (0 is black)."""
    ids = np.arange(size)
    colours = np.zeros((size, 3), dtype=np.int64)
    for shift in range(7, -1, -1):
        for channel in range(3):
            bit = (ids >> channel) & 1
            colours[:, channel] |= bit << shift
        ids = ids >> 3
    return colours.astype(np.uint8)


PASCAL = pascal_colormap()
