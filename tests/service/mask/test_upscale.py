"""The mask at the original size, decided from the model's scores: against a per-pixel computation written apart.

TensorFlow itself is not in this process (gateway-side suite); tests/model/test_fidelity.py holds the same code
against TensorFlow's own kernels and the real graph.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from service.image.bilinear import resize, taps
from service.mask.classes import ModelMask, ScoreMap
from service.mask.grid import expand
from service.mask.upscale import upscale
from tests.bilinear import enlarged as _per_pixel
from tests.grids import assert_describes


@pytest.mark.parametrize("seed", range(12))
def test_the_upscaled_mask_is_the_argmax_of_the_enlarged_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    grid_h, grid_w, classes = (int(v) for v in rng.integers(2, 30, size=3))
    height, width = (int(v) for v in rng.integers(8, 260, size=2))
    logits = (rng.standard_normal((grid_h, grid_w, classes)) * 4).astype(np.float32)
    at_model_size = _per_pixel(logits, height, width, align_corners=True)
    assert np.array_equal(resize(logits, (width, height), align_corners=True), at_model_size)
    small = np.argmax(at_model_size, axis=2).astype(np.uint8)
    for full_h, full_w in ((int(v) for v in rng.integers(1, 900, size=2)), (height, width), (3 * height, 2 * width)):
        expected = np.argmax(_per_pixel(at_model_size, full_h, full_w), axis=2)
        # The scores as the DeepLab graph gives them (coarse logits), and as a TFLite model does (at model size).
        for scores in (ScoreMap(logits, height, width), ScoreMap(at_model_size, height, width)):
            found = expand(upscale(ModelMask(small, scores), full_w, full_h))
            assert found.shape == (full_h, full_w)
            assert np.array_equal(found, expected)


def test_without_scores_class_ids_are_enlarged_by_nearest_neighbour() -> None:
    small = np.array([[1, 2], [3, 4]], np.uint8)
    grid = upscale(ModelMask(small), 4, 4)
    assert grid.patches is None
    assert np.array_equal(expand(grid), np.repeat(np.repeat(small, 2, axis=0), 2, axis=1))


def test_only_pixels_near_class_boundaries_are_decided_one_by_one() -> None:
    small = np.zeros((257, 257), np.uint8)
    small[80:180, 60:200] = 15
    scores = np.zeros((257, 257, 21), np.float32)
    scores[..., 0] = 1.0
    scores[80:180, 60:200, 15] = 2.0
    grid = upscale(ModelMask(small, ScoreMap(scores, 257, 257)), 1920, 1080)
    assert grid.patches is not None
    patched = grid.patches.values.size
    assert 0 < patched < 0.05 * 1920 * 1080
    full = expand(grid)
    assert np.array_equal(full, np.argmax(_per_pixel(scores, 1080, 1920), axis=2))


@pytest.mark.parametrize(("height", "width"), [(1080, 1920), (300, 451), (97, 131), (1, 1), (2000, 7)])
def test_statistics_runs_and_encodings_of_a_patched_mask_equal_those_of_the_expanded_mask(
    height: int, width: int
) -> None:
    rng = np.random.default_rng(height * width)
    logits = (rng.standard_normal((9, 9, 21)) * 3).astype(np.float32)
    logits[..., 0] += 2.0  # mostly background, as photos are
    scores = ScoreMap(logits, 65, 65)
    small = np.argmax(resize(logits, (65, 65), align_corners=True), axis=2).astype(np.uint8)
    grid = upscale(ModelMask(small, scores), width, height)
    assert_describes(grid, expand(grid))


def test_taps_follow_tensorflow_at_the_edges() -> None:
    # Half-pixel centres: the first output pixels of an enlargement read source pixel 0 twice (lerp on a clamped
    # pair), the last ones the last pixel; aligned corners map the ends onto the ends.
    enlarge = taps(8, 2)
    assert enlarge.lower.tolist() == [0, 0, 0, 0, 0, 0, 1, 1] and enlarge.upper.tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    aligned = taps(257, 33, align_corners=True)
    assert (aligned.lower[0], aligned.upper[-1], aligned.lerp[0], aligned.lerp[-1]) == (0, 32, 0.0, 0.0)
    assert aligned.lower[8] == aligned.upper[8] == 1  # 8 * 0.125: exactly a source pixel


def test_a_mask_mixed_everywhere_is_decided_a_few_megabytes_at_a_time() -> None:
    # Noise-like logits: a third of a 4K mask's pixels sit in mixed cells (2.9 million), which took 330 MB at once.
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((33, 19, 21)) * 3).astype(np.float32)
    logits[..., 0] += 1.0
    small = np.argmax(resize(logits, (145, 257), align_corners=True), axis=2).astype(np.uint8)
    tracemalloc.start()
    try:
        grid = upscale(ModelMask(small, ScoreMap(logits, 257, 145)), 3840, 2160)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grid.patches is not None and grid.patches.values.size > 2_000_000
    # What is kept (each pixel's place and class: 9 bytes) and a block's working arrays, not every pixel's at once;
    # the pixels' classes are checked against the graph's arithmetic, across blocks, by the tests above.
    assert peak < 10 * grid.patches.values.size + (40 << 20)
