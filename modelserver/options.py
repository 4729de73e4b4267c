"""Command-line flags, spelled as tensorflow_model_server spells them, and the model config they describe."""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

log = logging.getLogger("modelserver")

# TF Serving's own limit: the largest message protobuf can parse.
MAX_MESSAGE_BYTES = 2**31 - 1


@dataclass(frozen=True)
class ServerOptions:
    port: int
    bind_address: str
    config: model_server_config_pb2.ModelServerConfig
    file_system_poll_wait_seconds: float
    intra_op_threads: int
    inter_op_threads: int
    max_concurrent_inferences: int
    max_num_load_retries: int
    shutdown_grace_seconds: float
    prefer_tflite_model: bool = False
    num_tflite_pools: int = 1


class OptionsError(Exception):
    """A bad flag or config file; the message is one line for the user."""


def _tf_bool(flag: str) -> Callable[[str], bool]:
    """Parses a bool flag's value as TF Serving's flag parser does (TensorFlow's
    third_party/xla/xla/tsl/util/command_line_flags.cc, ParseBoolFlag): true or false in any case, or 1 or 0;
    a bare `--flag` is true."""

    def parse(value: str) -> bool:
        if value.lower() == "true" or value == "1":
            return True
        if value.lower() == "false" or value == "0":
            return False
        raise argparse.ArgumentTypeError(f"Couldn't interpret value {value} for flag {flag}.")

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modelserver",
        description="A TensorFlow-Serving-compatible gRPC model server (PredictionService, ModelService) for "
        "machines where tensorflow_model_server cannot be installed. Flags as tensorflow_model_server spells them.",
    )
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500, as TF Serving)")
    parser.add_argument(
        "--rest_api_port",
        type=int,
        default=0,
        help="accepted for command-line compatibility; this server has no REST API and says so if it is set",
    )
    parser.add_argument("--model_name", default="default", help="name of the single model to serve")
    parser.add_argument("--model_base_path", default="", help="base path of the single model to serve")
    parser.add_argument(
        "--model_config_file",
        default="",
        help="a ModelServerConfig in text format; overrides --model_name/_base_path",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between scans of the base paths for new or removed versions (default 1; 0 scans only once)",
    )
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0, help="0 lets TensorFlow choose")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0, help="0 lets TensorFlow choose")
    parser.add_argument(
        "--grpc_max_threads",
        type=int,
        default=4,
        help="the most inferences run at once; further requests queue (default 4)",
    )
    parser.add_argument(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="retries of a version that failed to load (default 5)",
    )
    # tensorflow/serving model_servers/main.cc:263-269 (at 9d981c5c): a bool flag, false by default; a version
    # directory without model.tflite falls back to its SavedModel. Loading and running: modelserver/tflite.py.
    parser.add_argument(
        "--prefer_tflite_model",
        type=_tf_bool("prefer_tflite_model"),
        nargs="?",
        const=True,
        default=False,
        help="serve <version>/model.tflite with TensorFlow Lite where a version directory holds one, else its "
        "SavedModel (default false)",
    )
    parser.add_argument(
        "--num_tflite_pools",
        type=int,
        # TF Serving's default (model_servers/server.h:99): the CPUs this process may run on.
        default=len(os.sched_getaffinity(0)),
        help="TFLite interpreters per loaded TFLite version (default: the schedulable CPUs; at most "
        "--grpc_max_threads are ever used at once)",
    )
    parser.add_argument(
        "--bind_address",
        default="0.0.0.0",
        help="not a TF Serving flag: the address to listen on (default 0.0.0.0, as TF Serving)",
    )
    parser.add_argument(
        "--shutdown_grace_seconds",
        type=float,
        default=5.0,
        help="not a TF Serving flag: drain time on SIGTERM",
    )
    return parser


def _config_from_file(path: pathlib.Path) -> model_server_config_pb2.ModelServerConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise OptionsError(f"cannot read --model_config_file {path}: {exc.strerror}") from exc
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise OptionsError(f"--model_config_file {path}: {exc}") from exc
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise OptionsError(f"--model_config_file {path}: needs a model_config_list with at least one config")
    names = [model.name for model in config.model_config_list.config]
    if len(set(names)) != len(names) or not all(names):
        raise OptionsError(f"--model_config_file {path}: model names must be present and unique, got {names}")
    for model in config.model_config_list.config:
        if not model.base_path:
            raise OptionsError(f"--model_config_file {path}: model {model.name!r} has no base_path")
        if model.model_platform not in ("", "tensorflow"):
            raise OptionsError(f"model {model.name!r}: only model_platform 'tensorflow' is supported")
    return config


def parse_options(argv: list[str] | None = None) -> ServerOptions:
    args = _parser().parse_args(argv)
    if args.model_config_file:
        config = _config_from_file(pathlib.Path(args.model_config_file))
    elif args.model_base_path:
        config = model_server_config_pb2.ModelServerConfig()
        config.model_config_list.config.add(
            name=args.model_name,
            base_path=str(pathlib.Path(args.model_base_path).resolve()),
            model_platform="tensorflow",
        )
    else:
        raise OptionsError("either --model_config_file or --model_base_path must be given")
    if args.rest_api_port:
        log.warning("--rest_api_port=%d ignored: this server speaks gRPC only", args.rest_api_port)
    if args.grpc_max_threads < 1:
        raise OptionsError("--grpc_max_threads must be at least 1")
    return ServerOptions(
        port=args.port,
        bind_address=args.bind_address,
        config=config,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        intra_op_threads=args.tensorflow_intra_op_parallelism,
        inter_op_threads=args.tensorflow_inter_op_parallelism,
        max_concurrent_inferences=args.grpc_max_threads,
        max_num_load_retries=args.max_num_load_retries,
        shutdown_grace_seconds=args.shutdown_grace_seconds,
        prefer_tflite_model=args.prefer_tflite_model,
        num_tflite_pools=args.num_tflite_pools,
    )
