"""One typed configuration: defaults, then the config file, then SEGMENTATION_* variables, then flags.

Without a file, the flags describe one model at one backend (the gateway as it started). With `--config FILE`
(TOML), the file holds the backends and models; variables and flags may still override its server settings.
Every mistake is a ConfigError whose message is one line naming where it is and what is accepted.
"""

from __future__ import annotations

import argparse
import enum
import os
import pathlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

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


# -- values: each check takes a value already of the right Python type and raises ValueError saying what is accepted


def _positive(value: int | float) -> int | float:
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _log_level(value: str) -> str:
    if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("use DEBUG, INFO, WARNING or ERROR")
    return value.upper()


def _nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class _Option:
    """A setting that a flag and a SEGMENTATION_* variable can give; `in_file` ones also the file's [server]."""

    flag: str
    kind: type  # int, float or str
    check: Callable[[Any], Any]
    help: str
    in_file: bool = True  # False: describes the single flag-configured model, not allowed with --config

    @property
    def env(self) -> str:
        return "SEGMENTATION_" + self.flag.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.flag.replace("-", "_")

    def from_text(self, text: str) -> Any:
        try:
            value = self.kind(text)
        except ValueError:
            raise ValueError(f"must be {_KIND_NAMES[self.kind]}") from None
        return self.check(value)


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}

OPTIONS: tuple[_Option, ...] = (
    _Option("listen", str, _nonempty, "address to listen on, host:port (default 0.0.0.0:50051)"),
    _Option("backend", str, _nonempty, "TF Serving gRPC target, host:port (default localhost:8500)", False),
    _Option("model-name", str, _nonempty, "default model name at the backend (default deeplab)", False),
    _Option("signature", str, _nonempty, "signature to run (default serving_default)", False),
    _Option("input-key", str, _nonempty, "input tensor alias in the signature (default ImageTensor)", False),
    _Option("output-key", str, _nonempty, "output tensor alias in the signature (default SemanticPredictions)", False),
    _Option("input-size", int, _positive, "longest side of the model input in pixels (default 513)", False),
    _Option("labels", str, _nonempty, "labels file, one class name a line, class 0 first (default: class_<id>)", False),
    _Option("max-image-bytes", int, _positive, "largest accepted image in bytes (default 20 MiB)"),
    _Option("max-image-pixels", int, _positive, "largest accepted width x height (default 50000000)"),
    _Option("predict-timeout", float, _positive, "upper bound on one Predict in seconds (default 30)"),
    _Option("stream-window", int, _positive, "Predicts in flight per stream (default 4)"),
    _Option("max-concurrent-calls", int, _positive, "images in progress before shedding load (default 64)"),
    _Option("workers", int, _positive, "threads for decoding and encoding (default: one per core)"),
    _Option("health-poll", float, _positive, "seconds between backend model status checks (default 1)"),
    _Option("shutdown-grace", float, _positive, "seconds in-flight calls get on SIGTERM (default 10)"),
    _Option("log-level", str, _log_level, "DEBUG, INFO, WARNING or ERROR (default INFO)"),
)
_BY_DEST = {option.dest: option for option in OPTIONS}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="The deeplab-gateway SegmentationService. Every flag can also be set by the environment "
        "variable SEGMENTATION_<FLAG> (e.g. SEGMENTATION_BACKEND); a flag wins over its variable, and both win "
        "over the config file's [server] settings.",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="TOML file with server settings, backends and models (also SEGMENTATION_CONFIG); "
        "without it the flags describe one model at one backend",
    )
    for option in OPTIONS:
        parser.add_argument(f"--{option.flag}", dest=option.dest, default=None, help=option.help)
    return parser


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    args = vars(_parser().parse_args(argv))
    config_path = args.pop("config") or environ.get("SEGMENTATION_CONFIG") or None
    overrides: dict[str, Any] = {}
    for option in OPTIONS:
        raw, source = args[option.dest], f"--{option.flag}"
        if raw is None and option.env in environ:
            raw, source = environ[option.env], option.env
        if raw is None:
            continue
        if config_path and not option.in_file:
            raise ConfigError(f"{source} cannot be combined with a config file ({config_path}): set it in the file")
        try:
            overrides[option.dest] = option.from_text(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from exc
    base = read_config_file(pathlib.Path(config_path)) if config_path else _single_model(overrides)
    return with_server_settings(base, overrides)


def _single_model(values: Mapping[str, Any]) -> Config:
    """The one model and backend the flags describe."""
    defaults = ModelConfig()
    model = ModelConfig(
        name=values.get("model_name", defaults.name),
        signature=values.get("signature", defaults.signature),
        input_key=values.get("input_key", defaults.input_key),
        output_key=values.get("output_key", defaults.output_key),
        profile=replace(DEEPLAB_ZOO, longest_side=values.get("input_size", DEEPLAB_ZOO.longest_side)),
        labels=read_labels(pathlib.Path(values["labels"])) if "labels" in values else (),
    )
    backend = BackendConfig(targets=(values.get("backend", BackendConfig().targets[0]),))
    return Config(backends=(backend,), models=(model,), default_model=model.name)


# Server settings: the option's dest -> the Config field it sets, and how.
_SERVER_FIELDS: dict[str, Callable[[Config, Any], Config]] = {
    "listen": lambda c, v: replace(c, listen=v),
    "max_image_bytes": lambda c, v: replace(c, limits=replace(c.limits, max_image_bytes=v)),
    "max_image_pixels": lambda c, v: replace(c, limits=replace(c.limits, max_image_pixels=v)),
    "predict_timeout": lambda c, v: replace(c, predict_timeout_s=v),
    "stream_window": lambda c, v: replace(c, stream_window=v),
    "max_concurrent_calls": lambda c, v: replace(c, max_concurrent_calls=v),
    "workers": lambda c, v: replace(c, workers=v),
    "health_poll": lambda c, v: replace(c, health_poll_s=v),
    "shutdown_grace": lambda c, v: replace(c, shutdown_grace_s=v),
    "log_level": lambda c, v: replace(c, log_level=v),
}
SERVER_KEYS = tuple(_SERVER_FIELDS)


def with_server_settings(config: Config, values: Mapping[str, Any]) -> Config:
    """`config` with the server settings among `values` (keyed by option dest) applied."""
    for key, value in values.items():
        if key in _SERVER_FIELDS:
            config = _SERVER_FIELDS[key](config, value)
    return config


def server_option(key: str) -> _Option:
    """The option behind a [server] key of the config file."""
    return _BY_DEST[key]


# -- the config file


_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")
_TOP_KEYS = ("server", "backends", "models", "profiles")
_BACKEND_KEYS = ("name", "targets")
_MODEL_KEYS = (
    "name",
    "default",
    "backend",
    "served_name",
    "signature",
    "input_key",
    "output_key",
    "profile",
    "labels",
    "version",
    "version_label",
)
_PROFILE_KEYS = ("input_dtype", "input_offset", "input_scale", "resize", "longest_side", "width", "height", "output")
_MISSING = object()


def check_target(target: str) -> str:
    """A host:port entry (or, alone in its backend, any gRPC target URI); ValueError says what is accepted."""
    if target.startswith(_SCHEMES):
        return target
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("use host:port, or dns:///host:port for a name gRPC re-resolves")
    return target


class _FileReader:
    """Reads one TOML config file into a Config; every mistake raises a ConfigError naming the file and key."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.path}: {where}: {problem}")

    def table(self, value: Any, where: str, accepted: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {value!r}")
        for key in value:
            if key not in accepted:
                self.fail(f"{where}.{key}" if where else key, f"unknown key; accepted: {', '.join(accepted)}")
        return value

    def tables(self, value: Any, where: str, accepted: Sequence[str]) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            self.fail(where, f"must be an array of tables ([[{where}]]), got {value!r}")
        return [self.table(item, f"{where}[{i}]", accepted) for i, item in enumerate(value)]

    def value(
        self, table: Mapping[str, Any], key: str, where: str, kind: type, check: Callable[[Any], Any] = _same
    ) -> Any:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.fail(f"{where}.{key} = {value!r}", f"must be {_KIND_NAMES[kind]}")
        try:
            return check(value)
        except ValueError as exc:
            self.fail(f"{where}.{key} = {value!r}", str(exc))

    def choice(self, table: Mapping[str, Any], key: str, where: str, kind: type[enum.StrEnum]) -> Any:
        def check(value: str) -> enum.StrEnum:
            try:
                return kind(value)
            except ValueError:
                raise ValueError("use " + " or ".join(f'"{member.value}"' for member in kind)) from None

        return self.value(table, key, where, str, check)

    def read(self) -> Config:
        try:
            document = tomllib.loads(self.path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read the config file {self.path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: not valid TOML: {exc}") from exc
        self.table(document, "", _TOP_KEYS)
        profiles = dict(BUILTIN_PROFILES)
        declared = document.get("profiles", {})
        if not isinstance(declared, dict):
            self.fail("profiles", "must be a table of profiles, [profiles.NAME]")
        for name, table in declared.items():
            profiles[name] = self.profile(table, f"profiles.{name}")
        backends = self.backends(document.get("backends", _MISSING))
        models = self.models(document.get("models", _MISSING), backends, profiles)
        defaults = [m.name for m, table in models if table.get("default") is True]
        if len(defaults) > 1:
            self.fail("models", f"more than one model has default = true: {', '.join(defaults)}")
        config = Config(
            backends=tuple(backends.values()),
            models=tuple(m for m, _ in models),
            default_model=defaults[0] if defaults else models[0][0].name,
            source=str(self.path),
        )
        server = self.table(document.get("server", {}), "server", SERVER_KEYS)
        settings = {}
        for key in server:
            option = server_option(key)
            settings[key] = self.value(server, key, "server", option.kind, option.check)
        return with_server_settings(config, settings)

    def profile(self, value: Any, where: str) -> Profile:
        table = self.table(value, where, _PROFILE_KEYS)
        fields: dict[str, Any] = {
            "input_dtype": self.choice(table, "input_dtype", where, InputDtype),
            "input_offset": self.value(table, "input_offset", where, float),
            "input_scale": self.value(table, "input_scale", where, float, _positive),
            "resize": self.choice(table, "resize", where, ResizePolicy),
            "longest_side": self.value(table, "longest_side", where, int, _positive),
            "width": self.value(table, "width", where, int, _positive),
            "height": self.value(table, "height", where, int, _positive),
            "output": self.choice(table, "output", where, OutputKind),
        }
        profile = replace(DEEPLAB_ZOO, **{k: v for k, v in fields.items() if v is not _MISSING})
        if profile.resize == ResizePolicy.FIXED and not (profile.width and profile.height):
            self.fail(where, 'resize = "fixed" needs width and height')
        if profile.resize == ResizePolicy.LONGEST_SIDE and (profile.width or profile.height):
            self.fail(where, 'width and height apply to resize = "fixed"; use longest_side')
        if profile.input_dtype == InputDtype.UINT8 and (profile.input_offset, profile.input_scale) != (0.0, 1.0):
            self.fail(where, 'input_offset and input_scale apply to input_dtype = "float32"')
        return profile

    def backends(self, value: Any) -> dict[str, BackendConfig]:
        if value is _MISSING:
            self.fail("backends", "at least one [[backends]] table is needed (name, targets)")
        backends: dict[str, BackendConfig] = {}
        for i, table in enumerate(self.tables(value, "backends", _BACKEND_KEYS)):
            where = f"backends[{i}]"
            name = self.value(table, "name", where, str, _nonempty)
            if name is _MISSING:
                self.fail(where, "needs a name")
            if name in backends:
                self.fail(f"{where}.name = {name!r}", "another backend has this name; names must be unique")
            targets = table.get("targets", _MISSING)
            if isinstance(targets, str):
                targets = [targets]
            if targets is _MISSING or not isinstance(targets, list) or not targets:
                self.fail(f"{where}.targets", 'needs one or more targets, e.g. ["tfserving:8500"]')
            for j, target in enumerate(targets):
                if not isinstance(target, str):
                    self.fail(f"{where}.targets[{j}] = {target!r}", "must be a string")
                try:
                    check_target(target)
                except ValueError as exc:
                    self.fail(f"{where}.targets[{j}] = {target!r}", str(exc))
                if len(targets) > 1 and target.startswith(_SCHEMES):
                    self.fail(f"{where}.targets[{j}] = {target!r}", "a target URI must be the backend's only target")
            backends[name] = BackendConfig(name=name, targets=tuple(targets))
        return backends

    def models(
        self, value: Any, backends: Mapping[str, BackendConfig], profiles: Mapping[str, Profile]
    ) -> list[tuple[ModelConfig, dict[str, Any]]]:
        if value is _MISSING:
            self.fail("models", "at least one [[models]] table is needed (name, backend, ...)")
        models: list[tuple[ModelConfig, dict[str, Any]]] = []
        for i, table in enumerate(self.tables(value, "models", _MODEL_KEYS)):
            model = self.model(table, f"models[{i}]", backends, profiles)
            if any(m.name == model.name for m, _ in models):
                self.fail(f"models[{i}].name = {model.name!r}", "another model has this name; names must be unique")
            models.append((model, table))
        return models

    def model(
        self, table: dict[str, Any], where: str, backends: Mapping[str, BackendConfig], profiles: Mapping[str, Profile]
    ) -> ModelConfig:
        name = self.value(table, "name", where, str, _nonempty)
        if name is _MISSING:
            self.fail(where, "needs a name (the name clients put in ModelSelector.name)")
        self.value(table, "default", where, bool)
        backend = self.value(table, "backend", where, str)
        if backend is _MISSING and len(backends) != 1:
            self.fail(where, f"needs a backend; defined: {', '.join(backends)}")
        if backend is _MISSING:
            backend = next(iter(backends))
        elif backend not in backends:
            self.fail(f"{where}.backend = {backend!r}", f"no such backend; defined: {', '.join(backends)}")
        fields: dict[str, Any] = {
            key: self.value(table, key, where, str, _nonempty)
            for key in ("served_name", "signature", "input_key", "output_key", "version_label")
        }
        fields["version"] = self.value(table, "version", where, int, _positive)
        if fields["version"] is not _MISSING and fields["version_label"] is not _MISSING:
            self.fail(where, "version and version_label cannot both be set")
        profile = table.get("profile", _MISSING)
        if isinstance(profile, str) and profile not in profiles:
            self.fail(f"{where}.profile = {profile!r}", f"no such profile; defined: {', '.join(profiles)}")
        if isinstance(profile, str):
            fields["profile"] = profiles[profile]
        elif profile is not _MISSING:
            fields["profile"] = self.profile(profile, f"{where}.profile")
        labels = self.value(table, "labels", where, str, _nonempty)
        if labels is not _MISSING:
            try:
                fields["labels"] = read_labels(self.path.parent / labels)
            except ConfigError as exc:
                self.fail(f"{where}.labels = {labels!r}", str(exc))
        return ModelConfig(name=name, backend=backend, **{k: v for k, v in fields.items() if v is not _MISSING})


def read_config_file(path: pathlib.Path) -> Config:
    return _FileReader(path).read()
