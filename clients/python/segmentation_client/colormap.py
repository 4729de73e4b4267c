"""The PASCAL VOC colormap (class id -> RGB), the colours the service uses for its PNG masks and overlays.

The client keeps its own copy so that it needs nothing of the gateway: the definition is fixed by PASCAL VOC.
"""

from __future__ import annotations

import numpy as np


def pascal_colormap(size: int = 256) -> np.ndarray:
    """A (size, 3) uint8 array; row i is the colour of class i (0 is black)."""
    ids = np.arange(size)
    colours = np.zeros((size, 3), dtype=np.int64)
    # Bit k of the id becomes bit 7 - k // 3 of channel k % 3, as in the VOC devkit's labelcolormap.
    for shift in range(7, -1, -1):
        for channel in range(3):
            colours[:, channel] |= ((ids >> channel) & 1) << shift
        ids = ids >> 3
    return colours.astype(np.uint8)


PASCAL = pascal_colormap()
