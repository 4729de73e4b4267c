"""Probability maps from scores: the softmax at the model's size sums to one, and the bands of the enlargement give
the whole enlargement (tests/model/test_probability.py holds the maps to TensorFlow's)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.image.bilinear import resize
from service.mask.classes import ScoreMap
from service.mask.probability import enlarged_levels, model_size_probabilities, probability_maps, region_mean


def test_the_softmax_at_the_model_s_size_sums_to_one_and_keeps_the_argmax() -> None:
    logits = np.random.default_rng(1).standard_normal((9, 9, 5)).astype(np.float32) * 8
    scores = ScoreMap(logits, 33, 33)
    probabilities = model_size_probabilities(scores)
    assert probabilities.shape == (33, 33, 5)
    np.testing.assert_allclose(probabilities.sum(axis=2), 1, rtol=1e-5)
    ys, xs = np.indices((33, 33)).reshape(2, -1)
    model_size = scores.at(ys, xs).reshape(33, 33, 5)
    assert np.array_equal(probabilities.argmax(axis=2), model_size.argmax(axis=2))


def test_the_bands_give_the_whole_enlargement() -> None:
    plane = np.random.default_rng(2).random((40, 30), dtype=np.float32)
    levels = enlarged_levels(plane, 333, 700)  # several bands of rows, the last one short
    whole = resize(plane[:, :, np.newaxis], (333, 700))[:, :, 0]
    assert np.array_equal(levels, np.clip(np.rint(whole * 255), 0, 255).astype(np.uint8))


def test_a_certain_class_is_white_and_the_others_black() -> None:
    logits = np.full((4, 4, 3), -50, dtype=np.float32)
    logits[..., 1] = 50
    maps = probability_maps(model_size_probabilities(ScoreMap(logits, 4, 4)), (1, 2), 10, 6)
    levels = [cv2.imdecode(np.frombuffer(m.png, np.uint8), cv2.IMREAD_UNCHANGED) for m in maps]
    assert (levels[0] == 255).all() and (levels[1] == 0).all() and levels[0].shape == (6, 10)


def test_a_region_s_mean_is_the_enlarged_plane_s_mean_over_its_pixels() -> None:
    logits = np.random.default_rng(3).standard_normal((9, 9, 4)).astype(np.float32) * 4
    probabilities = model_size_probabilities(ScoreMap(logits, 33, 33))
    width, height = 120, 600  # several bands of rows
    whole = resize(np.ascontiguousarray(probabilities[:, :, 2:3]), (width, height))[:, :, 0]
    inside = np.zeros((550, 70), dtype=bool)
    inside[::3, 5:] = True
    x, y = 40, 30
    expected = whole[y : y + 550, x : x + 70][inside].mean(dtype=np.float64)
    assert region_mean(probabilities, 2, (width, height), (x, y), inside) == pytest.approx(expected, rel=1e-6)
