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

from service.backends.kinds import DEFAULT_KIND
from service.config import (
    KIND_NAMES,
    SERVER_KEYS,
    TARGET_SCHEMES,
    BackendConfig,
    Config,
    ConfigError,
    ModelConfig,
    Shadow,
    Variant,
    backend_kind,
    check_target,
    finite,
    nonempty,
    not_negative,
    pixels,
    positive,
    read_labels,
    readable,
    same,
    with_server_settings,
)
from service.profiles import (
    BUILTIN_PROFILES,
    DEEPLAB_ZOO,
    Decode,
    InputDtype,
    OutputKind,
    Profile,
    ResizePolicy,
    Upscale,
)

_TOP_KEYS = ("server", "backends", "models", "profiles")
_BACKEND_KEYS = ("name", "kind", "targets", "ca", "cert", "key")
_MODEL_KEYS = (
    "name",
    "default",
    "backend",
    "served_name",
    "signature",
    "input_key",
    "output_key",
    "scores_key",
    "profile",
    "labels",
    "version",
    "version_label",
    "variants",
    "shadow",
)
# A variant may set how it is called; labels and the default stay the model's.
_VARIANT_KEYS = (
    "name",
    "weight",
    "backend",
    "served_name",
    "signature",
    "input_key",
    "output_key",
    "scores_key",
    "profile",
    "version",
    "version_label",
)
_INTERFACE_KEYS = ("signature", "input_key", "output_key", "scores_key")
_PROFILE_KEYS = (
    "input_dtype",
    "input_offset",
    "input_scale",
    "resize",
    "longest_side",
    "width",
    "height",
    "output",
    "decode",
    "upscale",
    *_INTERFACE_KEYS,
)
_MISSING = object()


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
            document = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the config file {self.path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: not valid TOML: {exc}") from exc
        self.table(document, "", _TOP_KEYS)
        server = self.table(document.get("server", {}), "server", tuple(SERVER_KEYS))
        settings = {}
        for key in server:
            setting = SERVER_KEYS[key]
            if setting.path and isinstance(server[key], str) and server[key]:
                server[key] = str(self.path.parent / server[key])
            settings[key] = self.value(server, key, "server", setting.kind, setting.check)
        profiles = dict(BUILTIN_PROFILES)
        declared = document.get("profiles", {})
        if not isinstance(declared, dict):
            self.fail("profiles", "must be a table of profiles, [profiles.NAME]")
        for name, table in declared.items():
            if name in BUILTIN_PROFILES:
                self.fail(f"profiles.{name}", "is built in; give your profile another name")
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

    def file(self, table: Mapping[str, Any], key: str, where: str) -> str:
        """A readable file named by `key`, relative to this file's folder; "" when not set."""
        name = self.value(table, key, where, str, nonempty)
        if name is _MISSING:
            return ""
        path = str(self.path.parent / name)
        try:
            return readable(path)
        except ValueError as exc:
            self.fail(f"{where}.{key} = {name!r}", str(exc))

    def profile(self, value: Any, where: str) -> Profile:
        table = self.table(value, where, _PROFILE_KEYS)
        fields: dict[str, Any] = {
            "input_dtype": self.choice(table, "input_dtype", where, InputDtype),
            "input_offset": self.value(table, "input_offset", where, float, finite),
            "input_scale": self.value(table, "input_scale", where, float, positive),
            "resize": self.choice(table, "resize", where, ResizePolicy),
            "longest_side": self.value(table, "longest_side", where, int, pixels),
            "width": self.value(table, "width", where, int, pixels),
            "height": self.value(table, "height", where, int, pixels),
            "output": self.choice(table, "output", where, OutputKind),
            "decode": self.choice(table, "decode", where, Decode),
            "upscale": self.choice(table, "upscale", where, Upscale),
            **{key: self.value(table, key, where, str, nonempty) for key in _INTERFACE_KEYS},
        }
        profile = replace(DEEPLAB_ZOO, **{k: v for k, v in fields.items() if v is not _MISSING})
        if profile.resize == ResizePolicy.FIXED and not (profile.width and profile.height):
            self.fail(where, 'resize = "fixed" needs width and height')
        if profile.resize == ResizePolicy.LONGEST_SIDE and (profile.width or profile.height):
            self.fail(where, 'width and height apply to resize = "fixed"; use longest_side')
        if profile.resize == ResizePolicy.FIXED and "longest_side" in table:
            self.fail(where, 'longest_side applies to resize = "longest_side"; use width and height')
        if profile.input_dtype == InputDtype.UINT8 and (profile.input_offset, profile.input_scale) != (0.0, 1.0):
            self.fail(where, 'input_offset and input_scale apply to input_dtype = "float32"')
        if profile.output == OutputKind.SCORES and profile.scores_key:
            self.fail(where, 'scores_key applies to output = "class_ids"; with output = "scores" the output is them')
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
                if len(targets) > 1 and target.startswith(TARGET_SCHEMES):
                    self.fail(f"{where}.targets[{j}] = {target!r}", "a target URI must be the backend's only target")
            tls = {key: self.file(table, key, where) for key in ("ca", "cert", "key")}
            kind = self.value(table, "kind", where, str, backend_kind)
            backends[name] = BackendConfig(
                name=name, kind=DEFAULT_KIND if kind is _MISSING else kind, targets=tuple(targets), **tls
            )
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
        fields = self.calling(table, where, backends, profiles)
        fields["backend"] = backend if backend is not _MISSING else next(iter(backends))
        labels = self.value(table, "labels", where, str, nonempty)
        if labels is not _MISSING:
            try:
                fields["labels"] = read_labels(pathlib.Path(labels), relative_to=self.path.parent)
            except ConfigError as exc:
                self.fail(f"{where}.labels = {labels!r}", str(exc))
        model = ModelConfig(name=name, **fields)
        variants = self.variants(table.get("variants", _MISSING), f"{where}.variants", model, backends, profiles)
        shadow = self.shadow(table.get("shadow", _MISSING), f"{where}.shadow", variants)
        return replace(model, variants=variants, shadow=shadow)

    def calling(
        self, table: dict[str, Any], where: str, backends: Mapping[str, BackendConfig], profiles: Mapping[str, Profile]
    ) -> dict[str, Any]:
        """The keys that say how a model (or a variant of it) is called at its backend, those that are set."""
        fields: dict[str, Any] = {
            key: self.value(table, key, where, str, nonempty)
            for key in ("backend", "served_name", *_INTERFACE_KEYS, "version_label")
        }
        if fields["backend"] is not _MISSING and fields["backend"] not in backends:
            self.fail(f"{where}.backend = {fields['backend']!r}", f"no such backend; defined: {', '.join(backends)}")
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
        return {key: value for key, value in fields.items() if value is not _MISSING}

    def variants(
        self,
        value: Any,
        where: str,
        model: ModelConfig,
        backends: Mapping[str, BackendConfig],
        profiles: Mapping[str, Profile],
    ) -> tuple[Variant, ...]:
        if value is _MISSING:
            return ()
        variants: list[Variant] = []
        for i, table in enumerate(self.tables(value, where, _VARIANT_KEYS)):
            here = f"{where}[{i}]"
            name = self.value(table, "name", here, str, nonempty)
            if name is _MISSING:
                self.fail(here, "needs a name (reported with every answer it serves)")
            if any(v.name == name for v in variants):
                self.fail(f"{here}.name = {name!r}", "another variant of this model has this name")
            weight = self.value(table, "weight", here, int, not_negative)
            if weight is _MISSING:
                self.fail(here, "needs a weight (an integer; its share is weight / the sum of the weights)")
            own = self.calling(table, here, backends, profiles)
            if not own.keys() & {"version", "version_label", "served_name", "backend"}:
                self.fail(here, "needs a version, version_label, served_name or backend of its own")
            # The variant's version choice is its own: none of its own means the latest version.
            base = replace(model, version=None, version_label="", variants=(), shadow=None)
            variants.append(Variant(name=name, weight=weight, model=replace(base, **own)))
        if not any(v.weight > 0 for v in variants):
            self.fail(where, "at least one variant needs a weight above 0")
        return tuple(variants)

    def shadow(self, value: Any, where: str, variants: tuple[Variant, ...]) -> Shadow | None:
        if value is _MISSING:
            return None
        table = self.table(value, where, ("variant", "percent"))
        variant = self.value(table, "variant", where, str, nonempty)
        names = ", ".join(v.name for v in variants) or "none ([[models.variants]] first)"
        if variant is _MISSING or variant not in {v.name for v in variants}:
            self.fail(f"{where}.variant", f"must name one of the model's variants; defined: {names}")
        percent = self.value(table, "percent", where, float, _percent)
        if percent is _MISSING:
            self.fail(where, "needs a percent (of the model's requests also sent to the shadow, 0 < percent <= 100)")
        return Shadow(variant=variant, percent=percent)


def _percent(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError("must be above 0 and at most 100")
    return value


def read_config_file(path: pathlib.Path) -> Config:
    return _FileReader(path).read()
