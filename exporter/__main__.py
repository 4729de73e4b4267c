"""python -m exporter: DeepLab frozen graph (or model-zoo tarball) -> versioned SavedModel servable."""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from exporter.graph import FULL_SIZE, GRAPH_DEF_SUBSET, ExportError, parse_graph, read_graph_bytes
from exporter.native_log import without_gpu_notices
from exporter.versions import choose_version, publish, staging_dir

if TYPE_CHECKING:
    from exporter.savedmodel import ModelSummary


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter",
        description="Export a DeepLab frozen graph (ImageTensor:0 -> SemanticPredictions:0) or a DeepLab "
        "model-zoo .tar.gz as a TF Serving servable: EXPORT_DIR/<version>/saved_model.pb.",
    )
    parser.add_argument("--frozen-graph", required=True, type=pathlib.Path, help="a .pb frozen graph or a .tar.gz")
    parser.add_argument(
        "--export-dir", required=True, type=pathlib.Path, help="the model's base path, e.g. models/deeplab"
    )
    parser.add_argument("--version", type=int, default=None, help="version to write (default: highest + 1)")
    parser.add_argument(
        "--model-name", default=None, help="name to serve the model under (default: EXPORT_DIR's last part)"
    )
    parser.add_argument(
        "--output-dtype",
        choices=("int64", "uint8"),
        default="int64",
        help="dtype of serving_default's SemanticPredictions: int64 as the frozen graph computes it (default), or "
        "uint8, cast in the graph (DeepLab's class ids are < 256): 1 byte per pixel instead of 8 in a tensor_content "
        "answer (TF Serving's --enable_serialization_as_tensor_content); the default typed fields already send "
        "ids < 128 in one byte each",
    )
    parser.add_argument(
        "--bytes-signature",
        action="store_true",
        help="also write a 'serving_bytes' signature: input image_bytes, a string tensor of shape [1] holding one "
        'encoded image (JPEG, PNG, BMP or GIF; {"b64": ...} over REST), decoded and resized in the graph to at most '
        "513 on the longest side (aspect ratio kept, never enlarged), then the same DeepLab nodes -> "
        "SemanticPredictions uint8 [1,h,w] at that size; serving_default is kept as it is",
    )
    parser.add_argument(
        "--bytes-signature-size",
        type=_size,
        default=None,
        metavar="WxH|full",
        help="serving_bytes resizes every image to exactly this size instead (aspect ratio not kept), e.g. 257x257 "
        "for a graph that works at that size inside: the gateway's deeplab-257 profile, in the graph; or 'full': "
        "the decoded image goes to the graph as it is, and the mask is the graph's own answer at the image's size",
    )
    args = parser.parse_args(argv)
    if args.bytes_signature_size and not args.bytes_signature:
        parser.error("--bytes-signature-size needs --bytes-signature")
    return args


def _size(text: str) -> tuple[int, int] | str:
    """(height, width) from "WxH", or FULL_SIZE."""
    if text.lower() == FULL_SIZE:
        return FULL_SIZE
    width, _, height = text.lower().partition("x")
    try:
        size = int(height), int(width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use WIDTHxHEIGHT, e.g. 257x257") from None
    if min(size) < 1 or max(size) > 8192:
        raise argparse.ArgumentTypeError(f"{text!r}: each side from 1 to 8192 pixels")
    return size


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turns a polite kill into an exception, so the staging directory is removed on the way out.
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    base: pathlib.Path = args.export_dir
    model_name = args.model_name or base.resolve().name
    data = read_graph_bytes(args.frozen_graph)
    parse_graph(data, GRAPH_DEF_SUBSET, args.frozen_graph)
    version = choose_version(base, args.version)

    # TensorFlow is loaded only once the cheap checks have passed; its C++ logs would bury our one line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with without_gpu_notices():
        summary, final = _export(args, data, base, version)
    print(f"exported {args.frozen_graph} -> {final}")
    print(summary.describe())
    print(f"serve it with: --model_name={model_name} --model_base_path={base.resolve()}")
    return 0


def _export(
    args: argparse.Namespace, data: bytes, base: pathlib.Path, version: int
) -> tuple[ModelSummary, pathlib.Path]:
    import tensorflow as tf  # noqa: PLC0415

    from exporter.savedmodel import verify_saved_model, write_saved_model  # noqa: PLC0415

    graph_def = parse_graph(data, tf.compat.v1.GraphDef, args.frozen_graph)
    with staging_dir(base, version) as staging:
        scores = write_saved_model(
            graph_def, staging, args.output_dtype, args.bytes_signature, args.bytes_signature_size
        )
        summary = verify_saved_model(
            staging, args.output_dtype, args.bytes_signature, args.bytes_signature_size, scores
        )
        final = publish(staging, base, version)
    return summary, final


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        return run(args)
    except ExportError as exc:
        print(f"exporter: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("exporter: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
