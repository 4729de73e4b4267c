"""The gateway's one typed configuration: server settings, backends, models and their profiles.

Built by service/flags.py from defaults, then the config file (service/config_file.py), then SEGMENTATION_*
variables, then flags. Immutable: a new configuration is a new object. Every mistake is a ConfigError whose message
is one line naming where it is and what is accepted.
"""

from __future__ import annotations

import enum
import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

MIB = 1024 * 1024
DEFAULT_BACKEND = "default"


class ConfigError(Exception):
    """A bad flag, variable, config file or labels file; the message is one line for the user."""


class InputDtype(enum.StrEnum):
    UINT8 = "uint8"
    FLOAT32 = "float32"


class ResizePolicy(enum.StrEnum):
    # Longest side scaled to `longest_side`, aspect ratio kept, never upscaled (DeepLab model-zoo graphs).
    LONGEST_SIDE = "longest_side"
    # Exactly width x height, aspect ratio not kept (models with a fixed input shape, e.g. TFLite).
    FIXED = "fixed"


class OutputKind(enum.StrEnum):
    CLASS_IDS = "class_ids"  # [1, h, w] integer class ids
    SCORES = "scores"  # [1, h, w, C] float scores; the gateway takes the argmax


@dataclass(frozen=True)
class Profile:
    """What a model takes and returns: its input tensor's type, scaling and size, and its output's kind."""

    input_dtype: InputDtype = InputDtype.UINT8
    # float32 inputs are (pixel - input_offset) / input_scale; e.g. 127.5 and 127.5 give [-1, 1].
    input_offset: float = 0.0
    input_scale: float = 1.0
    resize: ResizePolicy = ResizePolicy.LONGEST_SIDE
    longest_side: int = 513
    width: int = 0  # for ResizePolicy.FIXED
    height: int = 0
    output: OutputKind = OutputKind.CLASS_IDS

    @property
    def largest_side(self) -> int:
        """The longest side, in pixels, of any tensor sent to the model."""
        return self.longest_side if self.resize == ResizePolicy.LONGEST_SIDE else max(self.width, self.height)


# DeepLab model-zoo graphs: uint8 RGB of any size (513 on the longest side), int64 class ids out.
DEEPLAB_ZOO = Profile()
BUILTIN_PROFILES = {"deeplab-zoo": DEEPLAB_ZOO}


@dataclass(frozen=True)
class BackendConfig:
    """One TF Serving deployment: one channel, balanced round robin over its targets."""

    name: str = DEFAULT_BACKEND
    # One gRPC target (host:port, dns:///host:port, ipv4:..., unix:...) or several host:port entries.
    targets: tuple[str, ...] = ("localhost:8500",)


@dataclass(frozen=True)
class ModelConfig:
    """A model as clients name it, and how to call it at its backend and read its answer."""

    name: str = "deeplab"
    backend: str = DEFAULT_BACKEND
    served_name: str = ""  # the model's name at TF Serving; empty means the same as `name`
    signature: str = "serving_default"
    input_key: str = "ImageTensor"
    output_key: str = "SemanticPredictions"
    profile: Profile = DEEPLAB_ZOO
    labels: tuple[str, ...] = ()
    # Pinned at the backend; a request's own version or label wins. Neither means the latest version.
    version: int | None = None
    version_label: str = ""

    @property
    def name_at_backend(self) -> str:
        return self.served_name or self.name

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else f"class_{class_id}"


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 20 * MIB
    max_image_pixels: int = 50_000_000


@dataclass(frozen=True)
class Config:
    listen: str = "0.0.0.0:50051"
    backends: tuple[BackendConfig, ...] = (BackendConfig(),)
    models: tuple[ModelConfig, ...] = (ModelConfig(),)
    default_model: str = "deeplab"
    limits: Limits = field(default_factory=Limits)
    # Upper bound on one Predict; the caller's own deadline applies when it is shorter.
    predict_timeout_s: float = 30.0
    # Predicts in flight per SegmentImageStream call.
    stream_window: int = 4
    # Images in progress at once (unary calls and stream items) before new calls get RESOURCE_EXHAUSTED.
    max_concurrent_calls: int = 64
    # Threads for the CPU stages (decode, resize, encode); by default one per core.
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    health_poll_s: float = 1.0
    shutdown_grace_s: float = 10.0
    log_level: str = "INFO"
    source: str = ""  # the config file, if any, for messages

    @property
    def model(self) -> ModelConfig:
        """The default model."""
        return next(m for m in self.models if m.name == self.default_model)


def read_labels(path: pathlib.Path) -> tuple[str, ...]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {path}: {exc.strerror}") from exc
    labels = tuple(line.strip() for line in lines if line.strip())
    if not labels:
        raise ConfigError(f"the labels file {path} has no labels (one class name a line, class 0 first)")
    return labels


# Checks of setting values: each takes a value already of the right Python type and raises ValueError saying what
# is accepted.


def positive(value: int | float) -> int | float:
    if value <= 0:
        raise ValueError("must be positive")
    return value


def log_level(value: str) -> str:
    if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("use DEBUG, INFO, WARNING or ERROR")
    return value.upper()


def nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def same(value: Any) -> Any:
    return value


KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}


@dataclass(frozen=True)
class Setting:
    """A server setting: a key of the config file's [server] table, a flag and a SEGMENTATION_* variable."""

    key: str  # e.g. "max_image_bytes": flag --max-image-bytes, variable SEGMENTATION_MAX_IMAGE_BYTES
    kind: type  # int, float or str
    check: Callable[[Any], Any]
    apply: Callable[[Config, Any], Config]
    help: str


SERVER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "listen",
        str,
        nonempty,
        lambda c, v: replace(c, listen=v),
        "address to listen on, host:port (default 0.0.0.0:50051)",
    ),
    Setting(
        "max_image_bytes",
        int,
        positive,
        lambda c, v: replace(c, limits=replace(c.limits, max_image_bytes=v)),
        "largest accepted image in bytes (default 20 MiB)",
    ),
    Setting(
        "max_image_pixels",
        int,
        positive,
        lambda c, v: replace(c, limits=replace(c.limits, max_image_pixels=v)),
        "largest accepted width x height (default 50000000)",
    ),
    Setting(
        "predict_timeout",
        float,
        positive,
        lambda c, v: replace(c, predict_timeout_s=v),
        "upper bound on one Predict in seconds (default 30)",
    ),
    Setting(
        "stream_window",
        int,
        positive,
        lambda c, v: replace(c, stream_window=v),
        "Predicts in flight per stream (default 4)",
    ),
    Setting(
        "max_concurrent_calls",
        int,
        positive,
        lambda c, v: replace(c, max_concurrent_calls=v),
        "images in progress, calls and stream items, before shedding load (default 64)",
    ),
    Setting(
        "workers",
        int,
        positive,
        lambda c, v: replace(c, workers=v),
        "threads for decoding and encoding (default: one per core)",
    ),
    Setting(
        "health_poll",
        float,
        positive,
        lambda c, v: replace(c, health_poll_s=v),
        "seconds between backend model status checks (default 1)",
    ),
    Setting(
        "shutdown_grace",
        float,
        positive,
        lambda c, v: replace(c, shutdown_grace_s=v),
        "seconds in-flight calls get on SIGTERM (default 10)",
    ),
    Setting(
        "log_level",
        str,
        log_level,
        lambda c, v: replace(c, log_level=v),
        "DEBUG, INFO, WARNING or ERROR (default INFO)",
    ),
)
SERVER_KEYS = {setting.key: setting for setting in SERVER_SETTINGS}


def with_server_settings(config: Config, values: Mapping[str, Any]) -> Config:
    """`config` with the server settings among `values` (keyed by setting key) applied."""
    for key, value in values.items():
        if key in SERVER_KEYS:
            config = SERVER_KEYS[key].apply(config, value)
    return config
