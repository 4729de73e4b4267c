"""service/mask/grid.py: the model's mask at any size."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from service.mask.grid import expand, grid_for, repeats
from tests import grids


def test_repeats_spread_target_pixels_evenly() -> None:
    counts = repeats(289, 1080)
    assert counts.sum() == 1080 and set(counts.tolist()) <= {3, 4}
    assert repeats(5, 5).tolist() == [1] * 5


@settings(max_examples=200, deadline=None)
@given(grids.small_masks, grids.sizes, grids.sizes)
def test_the_model_size_mask_maps_to_any_size_by_nearest_pixel_centre(
    small: np.ndarray, width: int, height: int
) -> None:
    grid = grid_for(small, width, height)
    h, w = small.shape
    assert repeats(h, height).sum() == height and repeats(w, width).sum() == width
    full = expand(grid)
    assert full.shape == (height, width)
    # Output pixel (y, x) takes the source pixel whose area holds its centre.
    rows = ((2 * np.arange(height) + 1) * h) // (2 * height)
    cols = ((2 * np.arange(width) + 1) * w) // (2 * width)
    assert np.array_equal(full, small[rows][:, cols])
