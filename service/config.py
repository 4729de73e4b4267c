"""One typed configuration, from flags, then SEGMENTATION_* environment variables, then defaults."""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024


class ConfigError(Exception):
    """A bad flag, variable or labels file; the message is one line for the user."""


@dataclass(frozen=True)
class ModelConfig:
    """How to call one model at the backend, and how to read its answer."""

    name: str = "deeplab"
    signature: str = "serving_default"
    input_key: str = "ImageTensor"
    output_key: str = "SemanticPredictions"
    # Longest side, in pixels, of the tensor sent to the model; DeepLab's model-zoo graphs take 513.
    input_size: int = 513
    labels: tuple[str, ...] = ()

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else f"class_{class_id}"


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 20 * MIB
    max_image_pixels: int = 50_000_000


@dataclass(frozen=True)
class Config:
    listen: str = "0.0.0.0:50051"
    backend: str = "localhost:8500"
    model: ModelConfig = field(default_factory=ModelConfig)
    limits: Limits = field(default_factory=Limits)
    # Upper bound on one Predict; the caller's own deadline applies when it is shorter.
    predict_timeout_s: float = 30.0
    # Predicts in flight per SegmentImageStream call.
    stream_window: int = 4
    # SegmentImage calls in progress at once before new ones get RESOURCE_EXHAUSTED.
    max_concurrent_calls: int = 64
    # Threads for the CPU stages (decode, resize, encode); by default one per core.
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    health_poll_s: float = 1.0
    shutdown_grace_s: float = 10.0
    log_level: str = "INFO"

    @property
    def models(self) -> tuple[ModelConfig, ...]:
        return (self.model,)


def read_labels(path: pathlib.Path) -> tuple[str, ...]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {path}: {exc.strerror}") from exc
    labels = tuple(line.strip() for line in lines if line.strip())
    if not labels:
        raise ConfigError(f"the labels file {path} has no labels (one class name a line, class 0 first)")
    return labels


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


@dataclass(frozen=True)
class _Option:
    flag: str
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return "SEGMENTATION_" + self.flag.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.flag.replace("-", "_")


OPTIONS: tuple[_Option, ...] = (
    _Option("listen", str, "address to listen on, host:port (default 0.0.0.0:50051)"),
    _Option("backend", str, "TF Serving gRPC target, host:port (default localhost:8500)"),
    _Option("model-name", str, "default model name at the backend (default deeplab)"),
    _Option("signature", str, "signature to run (default serving_default)"),
    _Option("input-key", str, "input tensor alias in the signature (default ImageTensor)"),
    _Option("output-key", str, "output tensor alias in the signature (default SemanticPredictions)"),
    _Option("input-size", _positive_int, "longest side of the model input in pixels (default 513)"),
    _Option("labels", str, "labels file, one class name a line, class 0 first (default: none, class_<id>)"),
    _Option("max-image-bytes", _positive_int, "largest accepted image in bytes (default 20 MiB)"),
    _Option("max-image-pixels", _positive_int, "largest accepted width x height (default 50000000)"),
    _Option("predict-timeout", _positive_float, "upper bound on one Predict in seconds (default 30)"),
    _Option("stream-window", _positive_int, "Predicts in flight per stream (default 4)"),
    _Option("max-concurrent-calls", _positive_int, "calls in progress before shedding load (default 64)"),
    _Option("workers", _positive_int, "threads for decoding and encoding (default: one per core)"),
    _Option("health-poll", _positive_float, "seconds between backend model status checks (default 1)"),
    _Option("shutdown-grace", _positive_float, "seconds in-flight calls get on SIGTERM (default 10)"),
    _Option("log-level", str.upper, "DEBUG, INFO, WARNING or ERROR (default INFO)"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="The deeplab-gateway SegmentationService. Every flag can also be set by the environment "
        "variable SEGMENTATION_<FLAG> (e.g. SEGMENTATION_BACKEND); a flag wins over its variable.",
    )
    for option in OPTIONS:
        parser.add_argument(f"--{option.flag}", dest=option.dest, default=None, help=option.help)
    return parser


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    args = vars(_parser().parse_args(argv))
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = args[option.dest]
        source = f"--{option.flag}"
        if raw is None and option.env in environ:
            raw, source = environ[option.env], option.env
        if raw is None:
            continue
        try:
            values[option.dest] = option.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from exc
    if values.get("log_level", "INFO") not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log level {values['log_level']!r}: use DEBUG, INFO, WARNING or ERROR")
    defaults = ModelConfig()
    model = ModelConfig(
        name=values.get("model_name", defaults.name),
        signature=values.get("signature", defaults.signature),
        input_key=values.get("input_key", defaults.input_key),
        output_key=values.get("output_key", defaults.output_key),
        input_size=values.get("input_size", defaults.input_size),
        labels=read_labels(pathlib.Path(values["labels"])) if "labels" in values else (),
    )
    base = Config()
    limits = Limits(
        max_image_bytes=values.get("max_image_bytes", base.limits.max_image_bytes),
        max_image_pixels=values.get("max_image_pixels", base.limits.max_image_pixels),
    )
    return Config(
        listen=values.get("listen", base.listen),
        backend=values.get("backend", base.backend),
        model=model,
        limits=limits,
        predict_timeout_s=values.get("predict_timeout", base.predict_timeout_s),
        stream_window=values.get("stream_window", base.stream_window),
        max_concurrent_calls=values.get("max_concurrent_calls", base.max_concurrent_calls),
        workers=values.get("workers", base.workers),
        health_poll_s=values.get("health_poll", base.health_poll_s),
        shutdown_grace_s=values.get("shutdown_grace", base.shutdown_grace_s),
        log_level=values.get("log_level", base.log_level),
    )
