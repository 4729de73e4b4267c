"""NVIDIA Triton Inference Server serving the exported DeepLab servable, for the gateway's `kserve-v2` backend.

Triton (the real `tritonserver` that nvidia-pytriton ships) answers the Open Inference Protocol over gRPC and
HTTP; the model is the same SavedModel version that TF Serving (modelserver/) serves, run by TensorFlow inside
Triton's Python backend, so the two answer the same tensor with the same bits. Runs in triton/.venv
(triton/setup.sh), never in the project's .venv:

    triton/.venv/bin/python triton/serve.py --model-base-path models/deeplab [--grpc-port 8001] [--http-port 8000]

The model is named as its directory (`--model-name` to change it), with the version of the newest numbered
directory under it (`--version` to pick one), and the tensors of the signature `--signature` (serving_scores:
`image` FP32 [1, 257, 257, 3] in; `SemanticPredictions` INT64 and `scores` FP32 out). One request at a time, no
batching: the gateway sends one image a request. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import threading

import numpy as np
import tensorflow as tf
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

SERVE_TAG = "serve"
log = logging.getLogger("triton-serve")


def newest_version(base: pathlib.Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise SystemExit(f"{base}: no numbered version directory (run `make export` first)")
    return max(versions)


class SignatureRunner:
    """One signature of a SavedModel in a TF1 session, as TF Serving runs it."""

    def __init__(self, path: pathlib.Path, signature: str, threads: int) -> None:
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
        graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=graph, config=config)
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [SERVE_TAG], str(path))
        if signature not in meta_graph.signature_def:
            raise SystemExit(f"{path}: no signature {signature!r}; it has {', '.join(meta_graph.signature_def)}")
        definition = meta_graph.signature_def[signature]
        self.inputs = {key: info for key, info in definition.inputs.items()}
        self.outputs = {key: info for key, info in definition.outputs.items()}
        self.graph = graph

    def tensors(self, infos: dict) -> list[Tensor]:
        """The signature's tensors as Triton declares them: the signature's shapes, the batch dimension included
        (batching is off), -1 where a size varies."""
        return [
            Tensor(
                name=key,
                dtype=tf.dtypes.as_dtype(info.dtype).as_numpy_dtype,
                shape=tuple(max(d.size, -1) for d in info.tensor_shape.dim),
            )
            for key, info in infos.items()
        ]

    def __call__(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            feed = {self.inputs[key].name: value for key, value in request.items()}
            fetched = self.session.run({key: info.name for key, info in self.outputs.items()}, feed_dict=feed)
            answers.append(fetched)
        return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triton/serve.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", type=pathlib.Path, required=True, help="the servable's directory")
    parser.add_argument("--model-name", default="", help="the model's name at Triton (default: the directory's)")
    parser.add_argument("--version", type=int, default=0, help="the version to serve (default: the newest)")
    parser.add_argument("--signature", default="serving_scores", help="the signature to serve")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics; 0: none")
    parser.add_argument("--address", default="127.0.0.1", help="the address Triton listens on")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow's intra- and inter-op threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    base = args.model_base_path.resolve()
    version = args.version or newest_version(base)
    name = args.model_name or base.name
    runner = SignatureRunner(base / str(version), args.signature, args.threads)
    config = TritonConfig(
        grpc_address=args.address,
        grpc_port=args.grpc_port,
        http_address=args.address,
        http_port=args.http_port,
        allow_metrics=args.metrics_port != 0,
        metrics_port=args.metrics_port or None,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Triton(config=config) as triton:
        triton.bind(
            model_name=name,
            model_version=version,
            infer_func=runner,
            inputs=runner.tensors(runner.inputs),
            outputs=runner.tensors(runner.outputs),
            config=ModelConfig(batching=False),
            strict=True,
        )
        triton.run()
        log.info(
            "serving %r version %d (%s) on gRPC %s:%d", name, version, args.signature, args.address, args.grpc_port
        )
        stop.wait()
        log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
