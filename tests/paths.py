"""Where the shared real data and the project's own files are."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
IMAGES = SHARED / "images"
MODEL_DIR = SHARED / "models" / "deeplabv3_mnv2_pascal"
FROZEN_GRAPH = MODEL_DIR / "frozen_inference_graph.pb"
TFLITE = MODEL_DIR / "deeplabv3_257_mv_gpu.tflite"
LABELS = MODEL_DIR / "labels.txt"
TF_SIDE = ROOT / "tests" / "tf_side"
GRPCURL = ROOT / ".venv" / "bin" / "grpcurl"

PERSON = 15
CAT = 8
