"""Command-line flags and SEGMENTATION_* variables, and the one place the configuration is put together.

Defaults, then the config file (if any), then variables, then flags: each wins over the ones before it. Without a
file the flags describe one model at one backend; with one, those model flags are refused.
"""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.config import (
    KIND_NAMES,
    SERVER_SETTINGS,
    BackendConfig,
    Config,
    ConfigError,
    ModelConfig,
    backend_kind,
    check_config,
    check_target,
    nonempty,
    pixels,
    read_labels,
    readable,
    with_server_settings,
)
from service.config_file import read_config_file
from service.profiles import BUILTIN_PROFILES, Profile, ResizePolicy


@dataclass(frozen=True)
class _Flag:
    name: str  # e.g. "max-image-bytes"
    kind: type  # int, float or str
    check: Callable[[Any], Any]
    help: str
    model: bool = False  # describes the one flag-configured model or backend: refused with a config file

    @property
    def env(self) -> str:
        return "SEGMENTATION_" + self.name.upper().replace("-", "_")

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    def parse(self, text: str) -> Any:
        try:
            value = _parse_bool(text) if self.kind is bool else self.kind(text)
        except ValueError:
            raise ValueError(f"must be {KIND_NAMES[self.kind]}") from None
        return self.check(value)


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _builtin_profile(name: str) -> str:
    if name not in BUILTIN_PROFILES:
        raise ValueError(f"no such profile; built in: {', '.join(BUILTIN_PROFILES)} (others need a config file)")
    return name


FLAGS: tuple[_Flag, ...] = (
    *(_Flag(s.key.replace("_", "-"), s.kind, s.check, s.help) for s in SERVER_SETTINGS),
    _Flag("backend", str, check_target, "the model server's gRPC target, host:port (default localhost:8500)", True),
    _Flag("backend-kind", str, backend_kind, "its protocol: tfserving (default) or kserve-v2", True),
    _Flag("model-name", str, nonempty, "the model's name, for clients and at the backend (default deeplab)", True),
    _Flag("signature", str, nonempty, "signature to run (default: the profile's)", True),
    _Flag("input-key", str, nonempty, "input tensor alias in the signature (default: the profile's)", True),
    _Flag("output-key", str, nonempty, "output tensor alias in the signature (default: the profile's)", True),
    _Flag("scores-key", str, nonempty, "alias of the scores behind the class ids (default: the profile's)", True),
    _Flag("profile", str, _builtin_profile, "built-in profile: deeplab-zoo (default) or deeplab-257", True),
    _Flag("input-size", int, pixels, "longest side of the model input in pixels, deeplab-zoo (default 513)", True),
    _Flag("labels", str, nonempty, "labels file, one class name a line, class 0 first (default: class_<id>)", True),
    _Flag("backend-ca", str, readable, "PEM CA of the backend's certificate: TLS to it (default plaintext)", True),
    _Flag("backend-cert", str, readable, "PEM client certificate, mutual TLS to the backend", True),
    _Flag("backend-key", str, readable, "PEM private key of --backend-cert", True),
)


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
    for flag in FLAGS:
        suffix = " (not with --config)" if flag.model else ""
        parser.add_argument(f"--{flag.name}", dest=flag.key, default=None, help=flag.help + suffix)
    return parser


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    args = vars(_parser().parse_args(argv))
    config_path = args.pop("config") or environ.get("SEGMENTATION_CONFIG") or None
    given: dict[str, Any] = {}
    origins: dict[str, str] = {}  # the flag or variable each given setting came from, for messages
    for flag in FLAGS:
        raw, source = args[flag.key], f"--{flag.name}"
        if raw is None and flag.env in environ:
            raw, source = environ[flag.env], flag.env
        if raw is None:
            continue
        if config_path and flag.model:
            raise ConfigError(f"{source} cannot be combined with a config file ({config_path}): set it in the file")
        try:
            given[flag.key] = flag.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from exc
        origins[flag.key] = source
    base = read_config_file(pathlib.Path(config_path)) if config_path else _single_model(given, origins)
    return check_config(with_server_settings(base, given), origins)


def _single_model(values: Mapping[str, Any], origins: Mapping[str, str]) -> Config:
    """The one model and backend the flags describe."""
    defaults = ModelConfig()
    model = ModelConfig(
        name=values.get("model_name", defaults.name),
        signature=values.get("signature", defaults.signature),
        input_key=values.get("input_key", defaults.input_key),
        output_key=values.get("output_key", defaults.output_key),
        scores_key=values.get("scores_key", defaults.scores_key),
        profile=_profile(values, origins),
        labels=_labels(values["labels"], origins["labels"]) if "labels" in values else (),
    )
    backend = BackendConfig(
        kind=values.get("backend_kind", BackendConfig().kind),
        targets=(values.get("backend", BackendConfig().targets[0]),),
        ca=values.get("backend_ca", ""),
        cert=values.get("backend_cert", ""),
        key=values.get("backend_key", ""),
    )
    return Config(backends=(backend,), models=(model,), default_model=model.name)


def _profile(values: Mapping[str, Any], origins: Mapping[str, str]) -> Profile:
    """The built-in profile --profile names; --input-size sets deeplab-zoo's longest side."""
    name = values.get("profile", "deeplab-zoo")
    profile = BUILTIN_PROFILES[name]
    if "input_size" not in values:
        return profile
    if profile.resize != ResizePolicy.LONGEST_SIDE:
        raise ConfigError(f"{origins['input_size']} applies to the deeplab-zoo profile, not {name} (a fixed size)")
    return replace(profile, longest_side=values["input_size"])


def _labels(path: str, origin: str) -> tuple[str, ...]:
    """The labels file named by --labels or SEGMENTATION_LABELS (`origin`), read from the working directory."""
    try:
        return read_labels(pathlib.Path(path))
    except ConfigError as exc:
        raise ConfigError(f"{origin}={path!r}: {exc}") from exc
