"""Segments images with an exported SavedModel in TensorFlow; run as a script, never imported by pytest.

usage: segment_savedmodel.py SAVED_MODEL_DIR IMAGE... -> JSON {image: {class_id: fraction}} on stdout.
"""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import tensorflow as tf


def main() -> None:
    model = tf.saved_model.load(sys.argv[1], tags=["serve"])
    predict = model.signatures["serving_default"]
    result: dict[str, dict[int, float]] = {}
    for path in sys.argv[2:]:
        rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        mask = predict(ImageTensor=tf.constant(rgb[np.newaxis]))["SemanticPredictions"].numpy()
        ids, counts = np.unique(mask, return_counts=True)
        result[path] = {int(i): float(c) / mask.size for i, c in zip(ids, counts, strict=True)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
