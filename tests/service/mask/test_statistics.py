"""service/mask/statistics.py: per-class statistics from runs, against the pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from service.mask.grid import MaskGrid, expand, grid_for
from service.mask.statistics import _from_cells, _from_runs, class_statistics
from tests import grids
from tests.grids import assert_describes

MASK_CASES = [(5, 7, 13, 20), (289, 513, 1080, 1920), (171, 257, 400, 600), (1, 1, 1, 1), (1, 1, 3, 2), (6, 4, 6, 4)]


def _random_mask(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(4):  # blobs, as a segmentation has, plus noise
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[y : y + 1 + h // 3, x : x + 1 + w // 3] = rng.choice([8, 15, 11])
    noise = rng.random((h, w)) < 0.02
    mask[noise] = rng.integers(0, 21, size=int(noise.sum()))
    return mask


@pytest.mark.parametrize(("h", "w", "height", "width"), MASK_CASES)
def test_statistics_runs_and_encodings_equal_those_of_the_expanded_mask(h, w, height, width) -> None:
    small = _random_mask(h, w, seed=h * w)
    grid = grid_for(small, width, height)
    full = expand(grid)
    assert full.shape == (height, width)
    # Nearest neighbour: every full-size pixel takes the value of the small pixel under its centre.
    ys = ((2 * np.arange(height) + 1) * h) // (2 * height)
    xs = ((2 * np.arange(width) + 1) * w) // (2 * width)
    assert np.array_equal(full, small[ys][:, xs])

    assert_describes(grid, full)


@pytest.mark.parametrize(("h", "w", "height", "width"), MASK_CASES)
def test_run_based_and_pixel_based_statistics_agree(h, w, height, width) -> None:
    for seed in range(3):
        grid = grid_for(_random_mask(h, w, seed), width, height)
        assert sorted(_from_runs(grid), key=lambda s: s.class_id) == sorted(_from_cells(grid), key=lambda s: s.class_id)


@settings(max_examples=150, deadline=None)
@given(grids.random_grids())
def test_statistics_equal_a_brute_force_count_of_the_full_mask(grid: MaskGrid) -> None:
    full = expand(grid)
    stats = {s.class_id: s for s in class_statistics(grid)}
    present = np.unique(full)
    assert sorted(stats) == present.tolist()
    for class_id in present:
        ys, xs = np.nonzero(full == class_id)
        s = stats[int(class_id)]
        assert s.pixel_count == ys.size and s.fraction == ys.size / full.size
        assert (s.x, s.y, s.width, s.height) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
