"""Probability maps (service/mask/probability.py) against TensorFlow computing the same: the logits enlarged to the
model's size with aligned corners (as DeepLab's graph does), the softmax, the class's plane enlarged to the photo with
half-pixel centres, round(255 x p)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from service.mask.classes import ScoreMap
from service.mask.probability import model_size_probabilities, probability_maps


def _theirs(logits: np.ndarray, model: tuple[int, int], class_id: int, size: tuple[int, int]) -> np.ndarray:
    scores = tf.constant(logits[np.newaxis])
    if logits.shape[:2] != model:
        scores = tf.raw_ops.ResizeBilinear(images=scores, size=model, align_corners=True, half_pixel_centers=False)
    probabilities = tf.nn.softmax(scores, axis=-1)[..., class_id : class_id + 1]
    enlarged = tf.raw_ops.ResizeBilinear(images=probabilities, size=size, align_corners=False, half_pixel_centers=True)
    return np.clip(np.rint(enlarged.numpy()[0, ..., 0] * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("grid", "model", "size"),
    [
        ((33, 33), (257, 257), (300, 451)),  # DeepLab's logits at its output stride, a photo
        ((33, 33), (257, 257), (257, 257)),  # the model's size
        ((257, 257), (257, 257), (1080, 1920)),  # scores at the model's size, 1080p
        ((65, 49), (513, 385), (40, 30)),  # a photo smaller than the model's input
    ],
)
def test_maps_are_tensorflow_s_within_one_level(
    grid: tuple[int, int], model: tuple[int, int], size: tuple[int, int]
) -> None:
    logits = (np.random.default_rng(sum(grid) + sum(size)).standard_normal((*grid, 21)) * 6).astype(np.float32)
    classes = (0, 8, 15)
    maps = probability_maps(model_size_probabilities(ScoreMap(logits, *model)), classes, size[1], size[0])
    assert [m.class_id for m in maps] == list(classes)
    for found in maps:
        ours = cv2.imdecode(np.frombuffer(found.png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert ours.dtype == np.uint8 and ours.shape == size and (found.width, found.height) == size[::-1]
        theirs = _theirs(logits, model, found.class_id, size)
        difference = np.abs(ours.astype(int) - theirs.astype(int))
        assert difference.max() <= 1, (found.class_id, difference.max(), (difference > 0).mean())
