"""The gateway's masks are the model's own: its resize against TensorFlow's kernel, and the fidelity harness's
short form (`python -m bench.fidelity --plan short`) against the real graph and TFLite model."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from service.image.bilinear import resize
from tests.paths import ROOT

SIZES = [((1080, 1920), (257, 257)), ((300, 451), (257, 257)), ((60, 100), (257, 257)), ((2160, 3840), (257, 257))]
SIZES += [((257, 257), (97, 131)), ((7, 5), (3, 2)), ((1, 1), (4, 4))]


@pytest.mark.parametrize(("source", "target"), SIZES)
def test_the_image_resize_is_tensorflow_s_bit_for_bit(source: tuple[int, int], target: tuple[int, int]) -> None:
    image = np.random.default_rng(sum(source)).integers(0, 256, size=(*source, 3), dtype=np.uint8)
    theirs = tf.raw_ops.ResizeBilinear(
        images=tf.cast(image[np.newaxis], tf.float32), size=target, align_corners=False, half_pixel_centers=True
    ).numpy()[0]
    np.testing.assert_array_equal(resize(image, target[::-1]), theirs)
    # Decoded BGR in, RGB out: the same values in the other order.
    np.testing.assert_array_equal(resize(image[:, :, ::-1].copy(), target[::-1], reverse_channels=True), theirs)


@pytest.mark.parametrize("align_corners", [True, False], ids=["aligned", "half-pixel"])
@pytest.mark.parametrize(("source", "target"), [((33, 33), (257, 257)), ((257, 257), (1080, 1620)), ((33, 33), (5, 9))])
def test_the_score_resize_is_tensorflow_s_bit_for_bit(
    source: tuple[int, int], target: tuple[int, int], align_corners: bool
) -> None:
    scores = (np.random.default_rng(7).standard_normal((*source, 21)) * 5).astype(np.float32)
    theirs = tf.raw_ops.ResizeBilinear(
        images=scores[np.newaxis], size=target, align_corners=align_corners, half_pixel_centers=not align_corners
    ).numpy()[0]
    np.testing.assert_array_equal(resize(scores, target[::-1], align_corners=align_corners), theirs)


def test_the_short_fidelity_run_meets_the_targets_with_exact_model_size_masks(tmp_path: pathlib.Path) -> None:
    """Both models the examples configure, on the shared photos as given, EXIF-rotated, as WebP, as HEIC and AVIF
    turned by their containers, and at 1080p."""
    outcomes = tmp_path / "outcomes.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.fidelity", "--plan=short", f"--outcomes={outcomes}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["fidelity_min_agreement"] >= 0.995 and figures["fidelity_mean_agreement"] >= 0.999, figures
    cases = json.loads(outcomes.read_text())
    assert len(cases) == figures["fidelity_cases"] == 2 * 3 * 6
    assert {c["subject"] for c in cases} == {"deeplab", "deeplab-lite"}
    # Exactness at the model's size, where nothing is left to chance: the model's own output for the tensor sent,
    # and that tensor the one the graph makes from the photo itself.
    assert all(c["model_size_exact"] for c in cases), [c for c in cases if not c["model_size_exact"]]
    assert all(c["tensor_exact"] for c in cases if c["subject"] == "deeplab")
    # The default model's regions: COCO RLE decoded to exactly its mask, exact outlines drawn back to the regions.
    regions = figures["regions"]
    assert regions["cases"] == 3 * 6 and regions["regions"] > 0, regions
    assert regions["rle_exact"] == regions["outlines_exact"] == "18/18", regions
    assert regions["min_polygon_iou_1px"] > 0.9, regions  # the same regions at 1 px; its figures are reported
