"""Reading a TOML config file (Python's tomllib) into a Config.

The keys are those declared on the configuration's types (service/config.py, service/profiles.py); what is read by
hand here is what a declaration cannot say: which keys a table needs, names that must be unique or must name
something, a labels file, a profile by name or as a table, a split's variants and its shadow.

Each mistake raises a ConfigError of one line: the file, the key (e.g. `models[1].profile.width`), what was wrong
and what is accepted. Relative paths in the file (labels, TLS and token files) are read from the file's folder.
"""

from __future__ import annotations

import pathlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from service.config import (
    MODEL_DEFAULT_KEY,
    BackendConfig,
    Config,
    ConfigError,
    ModelConfig,
    Shadow,
    Variant,
)
from service.profiles import BUILTIN_PROFILES, DEEPLAB_ZOO, InputDtype, OutputKind, Profile, ResizePolicy
from service.settings import TARGET_SCHEMES, Declared, check_target, declared, typed, with_value

TOP_KEYS = ("server", "backends", "models", "profiles")
SERVER_KEYS = {item.name: item for item in declared(Config)}
BACKEND_KEYS = {item.name: item for item in declared(BackendConfig)}
_MODEL = declared(ModelConfig)
MODEL_KEYS = (_MODEL[0].name, MODEL_DEFAULT_KEY, *(item.name for item in _MODEL[1:]))
# A variant may set how it is called; labels and the default stay the model's.
_CALLING = tuple(item for item in _MODEL if item.key.variant)
VARIANT_KEYS = (*(item.name for item in declared(Variant)), *(item.name for item in _CALLING))
PROFILE_KEYS = {item.name: item for item in declared(Profile)}
SHADOW_KEYS = {item.name: item for item in declared(Shadow)}
_MISSING = object()


def read_labels(path: pathlib.Path, relative_to: pathlib.Path | None = None) -> tuple[str, ...]:
    """The class names in a labels file, one a line, class 0 first; a ConfigError of one line says what is accepted.

    `relative_to` is the config file's folder, which a relative `path` in the file is read from.
    """
    full = relative_to / path if relative_to is not None else path
    accepted = "use a readable UTF-8 text file, one class name a line, class 0 first"
    if relative_to is not None:
        accepted += f", relative to the config file's folder ({relative_to})"
    try:
        # utf-8-sig: a byte order mark, as some Windows editors write, is not part of class 0's name.
        lines = full.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {full}: {exc.strerror or exc}; {accepted}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the labels file {full} is not UTF-8 text (byte {exc.start}); {accepted}") from exc
    labels = tuple(line.strip() for line in lines if line.strip())
    if not labels:
        raise ConfigError(f"the labels file {full} has no labels; {accepted}")
    return labels


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

    def value(self, table: Mapping[str, Any], item: Declared, where: str) -> Any:
        """The declared key's value in `table`, typed and checked; _MISSING when not set."""
        value = table.get(item.name, _MISSING)
        if value is _MISSING:
            return _MISSING
        if item.key.path and isinstance(value, str) and value:
            value = str(self.path.parent / value)
        try:
            return item.key.check(typed(value, item.kind))
        except ValueError as exc:
            self.fail(f"{where}.{item.name} = {table[item.name]!r}", str(exc))

    def values(self, table: Mapping[str, Any], items: Sequence[Declared], where: str) -> dict[str, Any]:
        """The declared keys of the usual form that `table` sets, by field name."""
        read = {item.field: self.value(table, item, where) for item in items if item.key.form is None}
        return {field: value for field, value in read.items() if value is not _MISSING}

    def read(self) -> Config:
        try:
            document = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the config file {self.path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: not valid TOML: {exc}") from exc
        self.table(document, "", TOP_KEYS)
        server = self.table(document.get("server", {}), "server", tuple(SERVER_KEYS))
        settings = {key: self.value(server, SERVER_KEYS[key], "server") for key in server}
        profiles = dict(BUILTIN_PROFILES)
        declared_profiles = document.get("profiles", {})
        if not isinstance(declared_profiles, dict):
            self.fail("profiles", "must be a table of profiles, [profiles.NAME]")
        for name, table in declared_profiles.items():
            if name in BUILTIN_PROFILES:
                self.fail(f"profiles.{name}", "is built in; give your profile another name")
            profiles[name] = self.profile(table, f"profiles.{name}")
        backends = self.backends(document.get("backends", _MISSING))
        models = self.models(document.get("models", _MISSING), backends, profiles)
        defaults = [m.name for m, table in models if table.get(MODEL_DEFAULT_KEY) is True]
        if len(defaults) > 1:
            self.fail("models", f"more than one model has default = true: {', '.join(defaults)}")
        config = Config(
            backends=tuple(backends.values()),
            models=tuple(m for m, _ in models),
            default_model=defaults[0] if defaults else models[0][0].name,
            source=str(self.path),
        )
        for key, value in settings.items():
            config = with_value(config, SERVER_KEYS[key], value)
        return config

    def profile(self, value: Any, where: str) -> Profile:
        table = self.table(value, where, tuple(PROFILE_KEYS))
        profile = replace(DEEPLAB_ZOO, **self.values(table, tuple(PROFILE_KEYS.values()), where))
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
        for i, table in enumerate(self.tables(value, "backends", tuple(BACKEND_KEYS))):
            where = f"backends[{i}]"
            fields = self.values(table, tuple(BACKEND_KEYS.values()), where)
            name = fields.get("name", _MISSING)
            if name is _MISSING:
                self.fail(where, "needs a name")
            if name in backends:
                self.fail(f"{where}.name = {name!r}", "another backend has this name; names must be unique")
            backends[name] = BackendConfig(**fields, targets=self.targets(table.get("targets", _MISSING), where))
        return backends

    def targets(self, targets: Any, where: str) -> tuple[str, ...]:
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
        return tuple(targets)

    def models(
        self, value: Any, backends: Mapping[str, BackendConfig], profiles: Mapping[str, Profile]
    ) -> list[tuple[ModelConfig, dict[str, Any]]]:
        if value is _MISSING:
            self.fail("models", "at least one [[models]] table is needed (name, backend, ...)")
        models: list[tuple[ModelConfig, dict[str, Any]]] = []
        for i, table in enumerate(self.tables(value, "models", MODEL_KEYS)):
            model = self.model(table, f"models[{i}]", backends, profiles)
            if any(m.name == model.name for m, _ in models):
                self.fail(f"models[{i}].name = {model.name!r}", "another model has this name; names must be unique")
            models.append((model, table))
        return models

    def model(
        self, table: dict[str, Any], where: str, backends: Mapping[str, BackendConfig], profiles: Mapping[str, Profile]
    ) -> ModelConfig:
        fields = self.values(table, tuple(item for item in _MODEL if not item.key.variant), where)
        if "name" not in fields:
            self.fail(where, "needs a name (the name clients put in ModelSelector.name)")
        default = table.get(MODEL_DEFAULT_KEY, False)
        if not isinstance(default, bool):
            self.fail(f"{where}.{MODEL_DEFAULT_KEY} = {default!r}", "must be true or false")
        if "backend" not in table and len(backends) != 1:
            self.fail(where, f"needs a backend; defined: {', '.join(backends)}")
        fields |= self.calling(table, where, backends, profiles)
        fields.setdefault("backend", next(iter(backends)))
        labels = table.get("labels", _MISSING)
        if labels is not _MISSING:
            if not isinstance(labels, str) or not labels:
                self.fail(f"{where}.labels = {labels!r}", "must be the path of a labels file")
            try:
                fields["labels"] = read_labels(pathlib.Path(labels), relative_to=self.path.parent)
            except ConfigError as exc:
                self.fail(f"{where}.labels = {labels!r}", str(exc))
        model = ModelConfig(**fields)
        variants = self.variants(table.get("variants", _MISSING), f"{where}.variants", model, backends, profiles)
        shadow = self.shadow(table.get("shadow", _MISSING), f"{where}.shadow", variants)
        return replace(model, variants=variants, shadow=shadow)

    def calling(
        self, table: dict[str, Any], where: str, backends: Mapping[str, BackendConfig], profiles: Mapping[str, Profile]
    ) -> dict[str, Any]:
        """The keys that say how a model (or a variant of it) is called at its backend, those that are set."""
        fields = self.values(table, _CALLING, where)
        if "backend" in fields and fields["backend"] not in backends:
            self.fail(f"{where}.backend = {fields['backend']!r}", f"no such backend; defined: {', '.join(backends)}")
        if "version" in fields and "version_label" in fields:
            self.fail(where, "version and version_label cannot both be set")
        profile = table.get("profile", _MISSING)
        if isinstance(profile, str) and profile not in profiles:
            self.fail(f"{where}.profile = {profile!r}", f"no such profile; defined: {', '.join(profiles)}")
        if isinstance(profile, str):
            fields["profile"] = profiles[profile]
        elif profile is not _MISSING:
            fields["profile"] = self.profile(profile, f"{where}.profile")
        return fields

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
        for i, table in enumerate(self.tables(value, where, VARIANT_KEYS)):
            here = f"{where}[{i}]"
            own = self.values(table, declared(Variant), here)
            if "name" not in own:
                self.fail(here, "needs a name (reported with every answer it serves)")
            if any(v.name == own["name"] for v in variants):
                self.fail(f"{here}.name = {own['name']!r}", "another variant of this model has this name")
            if "weight" not in own:
                self.fail(here, "needs a weight (an integer; its share is weight / the sum of the weights)")
            calling = self.calling(table, here, backends, profiles)
            if not calling.keys() & {"version", "version_label", "served_name", "backend"}:
                self.fail(here, "needs a version, version_label, served_name or backend of its own")
            # The variant's version choice is its own: none of its own means the latest version.
            base = replace(model, version=None, version_label="", variants=(), shadow=None)
            variants.append(Variant(**own, model=replace(base, **calling)))
        if not any(v.weight > 0 for v in variants):
            self.fail(where, "at least one variant needs a weight above 0")
        return tuple(variants)

    def shadow(self, value: Any, where: str, variants: tuple[Variant, ...]) -> Shadow | None:
        if value is _MISSING:
            return None
        table = self.table(value, where, tuple(SHADOW_KEYS))
        fields = self.values(table, tuple(SHADOW_KEYS.values()), where)
        names = ", ".join(v.name for v in variants) or "none ([[models.variants]] first)"
        if fields.get("variant") not in {v.name for v in variants}:
            self.fail(f"{where}.variant", f"must name one of the model's variants; defined: {names}")
        if "percent" not in fields:
            self.fail(where, "needs a percent (of the model's requests also sent to the shadow, 0 < percent <= 100)")
        return Shadow(**fields)


def read_config_file(path: pathlib.Path) -> Config:
    return _FileReader(path).read()
