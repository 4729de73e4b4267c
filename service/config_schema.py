"""The config file's JSON Schema, made from the keys' declarations, for editors (Taplo, VS Code's Even Better TOML).

`python -m service.config_schema` prints it; `make schema` writes it to docs/config.schema.json, which a test holds
to this. The schema says what an editor can check as you type: the tables, the keys, their types, choices and
bounds; the reader (service/config_file.py) checks the rest (a labels file, names that must name something).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from service.config import MODEL_DEFAULT_HELP, MODEL_DEFAULT_KEY, BackendConfig, Config, ModelConfig, Shadow, Variant
from service.profiles import Profile
from service.settings import Declared, declared

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _key(item: Declared) -> dict[str, Any]:
    described = {"description": item.key.help}
    if item.key.form is not None:
        return {**described, **item.key.form}
    if issubclass(item.kind, enum.StrEnum):
        words: dict[str, Any] = {"enum": [member.value for member in item.kind]}
    else:
        words = {"type": _JSON_TYPES[item.kind], **getattr(item.key.check, "schema", {})}
    if item.key.shown:
        # A default that depends on the machine, or that its value would misstate: told, not given.
        described["description"] += f" (default: {item.key.shown})"
    elif item.default not in (None, (), dataclasses.MISSING):
        default = item.default.value if isinstance(item.default, enum.Enum) else item.default
        words["default"] = default
    return {**described, **words}


def _table(items: tuple[Declared, ...], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "type": "object",
        "properties": {item.name: _key(item) for item in items},
        "additionalProperties": False,
    }
    if required:
        table["required"] = list(required)
    table["properties"] |= extra
    return table


def config_schema() -> dict[str, Any]:
    models = declared(ModelConfig)
    calling = tuple(item for item in models if item.key.variant)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "deeplab-gateway configuration file (TOML)",
        "description": "docs/configuration.md; made by `make schema` from service/config.py and service/profiles.py",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "server": {
                **_table(declared(Config)),
                "description": "server settings, each also a flag (--name-with-dashes) and a SEGMENTATION_* variable",
            },
            "backends": {
                "type": "array",
                "minItems": 1,
                "items": _table(declared(BackendConfig), ("name", "targets")),
            },
            "models": {
                "type": "array",
                "minItems": 1,
                "items": _table(
                    models,
                    ("name",),
                    **{MODEL_DEFAULT_KEY: {"description": MODEL_DEFAULT_HELP, "type": "boolean", "default": False}},
                ),
            },
            "profiles": {"type": "object", "additionalProperties": {"$ref": "#/$defs/profile"}},
        },
        "$defs": {
            "profile": _table(declared(Profile)),
            "variant": _table((*declared(Variant), *calling), ("name", "weight")),
            "shadow": _table(declared(Shadow), ("variant", "percent")),
        },
    }


def schema_text() -> str:
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
