"""Command-line flags, spelled as tensorflow_model_server spells them, and the model config they describe."""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

MessageT = TypeVar("MessageT", bound=Message)

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
    rest_api_port: int = 0
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0
    allow_version_labels_for_unavailable_models: bool = False
    enable_serialization_as_tensor_content: bool = False
    load_retry_interval_seconds: float = 60.0
    ssl_config_file: str = ""
    monitoring_config_file: str = ""
    grpc_channel_arguments: tuple[tuple[str, int | str], ...] = ()


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
    # model_servers/server.h:51 and server.cc:437-459 (tensorflow/serving 9d981c5c): 0 (the default) exports no
    # REST API; the same port as --port is logged as an error and skipped, as is a port that cannot be bound.
    parser.add_argument(
        "--rest_api_port",
        type=int,
        default=0,
        help="port of TF Serving's HTTP/REST API (default 0: none; TF Serving's images use 8501)",
    )
    parser.add_argument("--model_name", default="default", help="name of the single model to serve")
    parser.add_argument("--model_base_path", default="", help="base path of the single model to serve")
    parser.add_argument(
        "--model_config_file",
        default="",
        help="a ModelServerConfig in text format; overrides --model_name/_base_path",
    )
    # main.cc:138-144 and server.cc:337-350: read the file again every N seconds; 0 (the default) never.
    parser.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="seconds between reads of --model_config_file, whose changes are applied as TF Serving's "
        "ReloadConfig applies them (default 0: read once)",
    )
    # main.cc:109-113, server_core.cc:549-614: labels may point only at AVAILABLE versions unless this is set.
    parser.add_argument(
        "--allow_version_labels_for_unavailable_models",
        type=_tf_bool("allow_version_labels_for_unavailable_models"),
        nargs="?",
        const=True,
        default=False,
        help="let a new version label (or one keeping its version) name a version that is not AVAILABLE yet, "
        "e.g. at start-up (default false)",
    )
    # main.cc:311-314 (TF Serving 2.19+), server.cc:327-330, predict_util.cc:176-189.
    parser.add_argument(
        "--enable_serialization_as_tensor_content",
        type=_tf_bool("enable_serialization_as_tensor_content"),
        nargs="?",
        const=True,
        default=False,
        help="write Predict outputs as tensor_content bytes instead of typed repeated fields (default false)",
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
    # main.cc:163-172, server.h:68-69; retried as core/loader_harness.cc:74-116 does.
    parser.add_argument(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="times a failed load is retried before the version is END with its error (default 5)",
    )
    parser.add_argument(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="microseconds between those retries (default 60000000: one minute)",
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
        "--ssl_config_file",
        default="",
        help="an SSLConfig in text format (server_key, server_cert, custom_ca as PEM contents; client_verify): "
        "TLS (or mutual TLS) on the gRPC port, as TF Serving's flag",
    )
    # main.cc:254-257; read (monitoring.py) only where the REST server is made, as server.cc:437-452 reads it.
    parser.add_argument(
        "--monitoring_config_file",
        default="",
        help="a MonitoringConfig in text format: with prometheus_config { enable: true }, Prometheus metrics on "
        "--rest_api_port at prometheus_config.path (default /monitoring/prometheus/metrics); unused without "
        "--rest_api_port",
    )
    parser.add_argument(
        "--grpc_channel_arguments",
        default="",
        help="comma-separated gRPC server arguments, key=value (e.g. grpc.max_connection_age_ms=300000), as TF "
        "Serving's flag: integer values as integers",
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


def read_text_proto(path: str | os.PathLike[str], flag: str, message: MessageT) -> MessageT:
    """`message` filled from the text-format file at `path`, named by `flag`; one-line OptionsError otherwise."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        raise OptionsError(f"cannot read {flag} {path}: {exc.strerror}") from exc
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise OptionsError(f"{flag} {path}: {exc}") from exc
    return message


def _config_from_file(path: pathlib.Path) -> model_server_config_pb2.ModelServerConfig:
    config = read_text_proto(path, "--model_config_file", model_server_config_pb2.ModelServerConfig())
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


def _channel_arguments(flag: str) -> tuple[tuple[str, int | str], ...]:
    """key=value,key=value as TF Serving's server.cc parses it: an integer value is passed as an integer."""
    arguments: list[tuple[str, int | str]] = []
    for item in filter(None, flag.split(",")):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise OptionsError(f"--grpc_channel_arguments: {item!r} is not key=value")
        try:
            arguments.append((key, int(value)))
        except ValueError:
            arguments.append((key, value))
    return tuple(arguments)


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
        rest_api_port=args.rest_api_port,
        model_config_file=args.model_config_file,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        # util/retrier.cc:35: a negative interval means no wait.
        load_retry_interval_seconds=max(0, args.load_retry_interval_micros) / 1e6,
        ssl_config_file=args.ssl_config_file,
        monitoring_config_file=args.monitoring_config_file,
        grpc_channel_arguments=_channel_arguments(args.grpc_channel_arguments),
    )
