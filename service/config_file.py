"""Reading a TOML config file (Python's tomllib) into a Config.

Each mistake raises a ConfigError of one line: the file, the key (e.g. `models[1].profile.width`), what was wrong
and what is accepted. Relative paths in the file (labels) are read from the file's folder.
"""

from __future__ import annotations

import enum
import pathlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from service.config import (
    BUILTIN_PROFILES,
    DEEPLAB_ZOO,
    KIND_NAMES,
    SERVER_KEYS,
    BackendConfig,
    Config,
    ConfigError,
    InputDtype,
    ModelConfig,
    OutputKind,
    Profile,
    ResizePolicy,
    nonempty,
    positive,
    read_labels,
    same,
    with_server_settings,
)

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
        self, table: Mapping[str, Any], key: str, where: str, kind: type, check: Callable[[Any], Any] = same
    ) -> Any:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.fail(f"{where}.{key} = {value!r}", f"must be {KIND_NAMES[kind]}")
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
        server = self.table(document.get("server", {}), "server", tuple(SERVER_KEYS))
        settings = {}
        for key in server:
            setting = SERVER_KEYS[key]
            settings[key] = self.value(server, key, "server", setting.kind, setting.check)
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
        return with_server_settings(config, settings)

    def profile(self, value: Any, where: str) -> Profile:
        table = self.table(value, where, _PROFILE_KEYS)
        fields: dict[str, Any] = {
            "input_dtype": self.choice(table, "input_dtype", where, InputDtype),
            "input_offset": self.value(table, "input_offset", where, float),
            "input_scale": self.value(table, "input_scale", where, float, positive),
            "resize": self.choice(table, "resize", where, ResizePolicy),
            "longest_side": self.value(table, "longest_side", where, int, positive),
            "width": self.value(table, "width", where, int, positive),
            "height": self.value(table, "height", where, int, positive),
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
            name = self.value(table, "name", where, str, nonempty)
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
        name = self.value(table, "name", where, str, nonempty)
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
            key: self.value(table, key, where, str, nonempty)
            for key in ("served_name", "signature", "input_key", "output_key", "version_label")
        }
        fields["version"] = self.value(table, "version", where, int, positive)
        if fields["version"] is not _MISSING and fields["version_label"] is not _MISSING:
            self.fail(where, "version and version_label cannot both be set")
        profile = table.get("profile", _MISSING)
        if isinstance(profile, str) and profile not in profiles:
            self.fail(f"{where}.profile = {profile!r}", f"no such profile; defined: {', '.join(profiles)}")
        if isinstance(profile, str):
            fields["profile"] = profiles[profile]
        elif profile is not _MISSING:
            fields["profile"] = self.profile(profile, f"{where}.profile")
        labels = self.value(table, "labels", where, str, nonempty)
        if labels is not _MISSING:
            try:
                fields["labels"] = read_labels(self.path.parent / labels)
            except ConfigError as exc:
                self.fail(f"{where}.labels = {labels!r}", str(exc))
        return ModelConfig(name=name, backend=backend, **{k: v for k, v in fields.items() if v is not _MISSING})


def read_config_file(path: pathlib.Path) -> Config:
    return _FileReader(path).read()
