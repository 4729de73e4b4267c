"""A colour overlay for people: the image blended with the PASCAL-coloured mask, as PNG."""

from __future__ import annotations

import cv2
import numpy as np

from service.image.resize import longest_side_size
from service.mask.colormap import PASCAL
from service.mask.grid import MaskGrid, expand, grid_for

# An overlay is a picture for people: past this many pixels on its longest side it only costs time and bytes
# (a 4000x3000 one was a 9 MB PNG taking about a second).
MAX_OVERLAY_SIDE = 1280


def blend(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image, scaled to the mask's size, with every non-background pixel tinted by its class colour."""
    height, width = mask.shape
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    tinted = cv2.addWeighted(rgb, 1.0 - alpha, PASCAL[mask], alpha, 0.0)
    return np.where((mask > 0)[:, :, None], tinted, rgb)


def overlay_png(rgb: np.ndarray, grid: MaskGrid, alpha: float = 0.5) -> bytes:
    """A PNG at the mask's size, or scaled down to MAX_OVERLAY_SIDE on its longest side."""
    width, height = longest_side_size(grid.width, grid.height, MAX_OVERLAY_SIDE)
    if (width, height) != (grid.width, grid.height):
        grid = grid_for(grid.small, width, height)
    out = blend(rgb, expand(grid), alpha)
    ok, png = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("OpenCV could not encode the overlay")
    return png.tobytes()
