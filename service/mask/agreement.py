"""How far two class-id masks of the same image agree: the share of equal pixels and the mean IoU."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.mask.grid import expand, grid_for


@dataclass(frozen=True)
class Agreement:
    pixels: float  # the share of pixels with the same class id, in [0, 1]
    mean_iou: float  # intersection over union per class present in either mask, averaged, in [0, 1]


def agreement(primary: np.ndarray, shadow: np.ndarray) -> Agreement:
    """Compares two (h, w) uint8 masks; the shadow's is first mapped to the primary's size by nearest neighbour."""
    if shadow.shape != primary.shape:
        shadow = expand(grid_for(shadow, primary.shape[1], primary.shape[0]))
    if primary.size == 0:
        return Agreement(1.0, 1.0)
    # One bincount over (primary, shadow) pairs gives every class's intersection and both masks' areas.
    pairs = np.bincount(primary.ravel().astype(np.int32) * 256 + shadow.ravel(), minlength=256 * 256)
    confusion = pairs.reshape(256, 256)
    intersection = np.diagonal(confusion).astype(np.float64)
    union = confusion.sum(axis=1) + confusion.sum(axis=0) - intersection
    present = union > 0
    return Agreement(
        pixels=float(intersection.sum() / primary.size),
        mean_iou=float((intersection[present] / union[present]).mean()),
    )
