"""How a configuration key is declared, once, on the field of the domain type that holds it, and the checks of values.

`setting()` makes a dataclass field that is also a key: its type is the field's annotation, its default the field's,
and the field's metadata holds what no annotation says (the check, the help, the flag). The config file's reader
(service/config_file.py), the flags and variables (service/flags.py), the JSON Schema (service/config_schema.py)
and the tests that hold docs/configuration.md to the code all read these declarations; nothing lists the keys again.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_METADATA = "setting"
_NESTED = "settings within"
KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}


@dataclass(frozen=True)
class Key:
    """What a key's field does not say by itself."""

    help: str
    # Takes a value already of the key's type; raises ValueError saying what is accepted.
    check: Callable[[Any], Any]
    name: str  # in the config file; as a flag with dashes, as a variable upper case after SEGMENTATION_
    # The flag (and variable) of a model, backend or profile key when the flags describe the one model; server keys
    # all have theirs, named after them.
    flag: str
    shown: str  # the default as told to people, where its value alone would mislead ("one per core"); else derived
    path: bool  # a file: in the config file, relative to the file's folder
    variant: bool  # a model key a traffic split's variant may set as well
    # How the key is written in the file, as JSON Schema, when it is not a value of the field's type: such keys are
    # read by hand (a labels file's path, a profile's name or table, a list of targets).
    form: Mapping[str, Any] | None


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    check: Callable[[Any], Any] | None = None,
    *,
    factory: Callable[[], Any] | None = None,
    name: str = "",
    flag: str = "",
    shown: str = "",
    path: bool = False,
    variant: bool = False,
    form: Mapping[str, Any] | None = None,
) -> Any:
    """A dataclass field that is a configuration key; `name` defaults to the field's."""
    key = Key(help, check or same, name, flag, shown, path, variant, form)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={_METADATA: key})
    return dataclasses.field(default=default, metadata={_METADATA: key})


def nested(default: Any) -> Any:
    """A dataclass field holding another dataclass whose keys are keys of this one's table (Config.limits)."""
    return dataclasses.field(default=default, metadata={_NESTED: True})


@dataclass(frozen=True)
class Declared:
    """A key as declared on its field."""

    field: str  # the field's name
    key: Key
    kind: type  # int, float, str, bool or an enum.StrEnum; str for keys of another form
    optional: bool  # the field may hold None (not set)
    default: Any
    within: tuple[str, ...] = ()  # the nested fields that hold the field, outermost first

    @property
    def name(self) -> str:
        return self.key.name or self.field


def declared(cls: type) -> tuple[Declared, ...]:
    """The keys declared on `cls`'s fields, in the order of its fields."""
    hints = typing.get_type_hints(cls)
    keys = []
    for item in dataclasses.fields(cls):
        if item.metadata.get(_NESTED):
            for inner in declared(hints[item.name]):
                keys.append(dataclasses.replace(inner, within=(item.name, *inner.within)))
            continue
        key = item.metadata.get(_METADATA)
        if key is None:
            continue
        kind, optional = _kind(hints[item.name]) if key.form is None else (str, False)
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = dataclasses.MISSING
        renamed = key if key.name else dataclasses.replace(key, name=item.name)
        keys.append(Declared(item.name, renamed, kind, optional, default))
    return tuple(keys)


def with_value(holder: Any, item: Declared, value: Any) -> Any:
    """`holder` (an instance of the class `item` was declared on) with the key's field set to `value`."""
    if not item.within:
        return dataclasses.replace(holder, **{item.field: value})
    inner = dataclasses.replace(item, within=item.within[1:])
    return dataclasses.replace(holder, **{item.within[0]: with_value(getattr(holder, item.within[0]), inner, value)})


def _kind(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return inner, True
    if hint in KIND_NAMES or (isinstance(hint, type) and issubclass(hint, enum.StrEnum)):
        return hint, False
    raise TypeError(f"a setting of type {hint} needs a form= saying how it is written")


def typed(value: Any, kind: type) -> Any:
    """A value read from TOML as `kind` (an integer is a number too); ValueError says what is accepted."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type) and issubclass(kind, enum.StrEnum):
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
        raise ValueError("use " + " or ".join(f'"{member.value}"' for member in kind))
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"must be {KIND_NAMES[kind]}")
    return value


def parsed(text: str, kind: type) -> Any:
    """A flag's or variable's text as `kind`."""
    try:
        if kind is bool:
            return _parse_bool(text)
        return kind(text)
    except ValueError:
        raise ValueError(f"must be {KIND_NAMES.get(kind, 'one of ' + ', '.join(kind))}") from None


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError(text)


def shown(item: Declared) -> str:
    """The key's default as people read it; empty when there is none worth telling."""
    if item.key.shown:
        return item.key.shown
    value = item.default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | enum.Enum) and value is not None:
        return str(value.value if isinstance(value, enum.Enum) else value)
    if isinstance(value, str):
        return value
    return ""


# Checks of values: each takes a value already of the key's type and raises ValueError saying what is accepted.
# A check may carry `schema`, the JSON Schema words that say the same to an editor.


def with_schema(**words: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a check with the JSON Schema words that tell an editor the same."""

    def mark(check: Callable[..., Any]) -> Callable[..., Any]:
        check.schema = words  # type: ignore[attr-defined]
        return check

    return mark


def same(value: Any) -> Any:
    return value


@with_schema()
def finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


@with_schema(exclusiveMinimum=0)
def positive(value: int | float) -> int | float:
    if not value > 0 or not math.isfinite(value):
        raise ValueError("must be positive")
    return value


@with_schema(minimum=0)
def not_negative(value: int | float) -> int | float:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def at_most(limit: int, unit: str = "") -> Callable[[int], int]:
    @with_schema(exclusiveMinimum=0, maximum=limit)
    def check(value: int) -> int:
        if not 0 < value <= limit:
            raise ValueError(f"must be positive and at most {limit}{unit}")
        return value

    return check


@with_schema(minimum=0, maximum=1)
def ratio(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be from 0 to 1")
    return value


@with_schema(exclusiveMinimum=0, maximum=100)
def percentage(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError("must be above 0 and at most 100")
    return value


@with_schema(minLength=1)
def nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def one_of(*choices: str, off: bool = False) -> Callable[[str], str]:
    """One of `choices`; with `off`, also "" (the feature is off)."""

    @with_schema(enum=[*choices, ""] if off else list(choices))
    def check(value: str) -> str:
        if value not in choices and not (off and value == ""):
            raise ValueError("use " + " or ".join(choices))
        return value

    return check


def readable(path: str) -> str:
    """A file that can be read now, or "" for none."""
    if path:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ValueError(f"cannot read it: {exc.strerror}") from None
    return path


TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def _check_address(target: str, lowest_port: int) -> str:
    if target.startswith(TARGET_SCHEMES):
        if not target.split(":", 1)[1].strip("/"):
            raise ValueError("a target URI needs an address after its scheme, e.g. dns:///tfserving:8500")
        return target
    host, _, port = target.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not host or (":" in host and not bracketed) or target != target.strip() or " " in target:
        raise ValueError("use host:port ([v6 address]:port), or dns:///host:port for a name gRPC re-resolves")
    if not port.isdigit() or not lowest_port <= int(port) < 65536:
        raise ValueError(f"the port must be a number from {lowest_port} to 65535")
    return target


def check_target(target: str) -> str:
    """A backend's host:port ([v6]:port for IPv6) or gRPC target URI; ValueError says what is accepted."""
    return _check_address(target, lowest_port=1)


def check_listen(address: str) -> str:
    """An address to listen on; port 0 picks a free port."""
    return _check_address(address, lowest_port=0)


def check_listen_or_off(address: str) -> str:
    return check_listen(address) if address else address
