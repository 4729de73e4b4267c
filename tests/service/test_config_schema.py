"""service/config_schema.py and service/settings.py: the declarations are the one list of keys, and the schema, the
flags and docs/configuration.md are held to them.
"""

from __future__ import annotations

import json
import pathlib
import re
import tomllib

from service.config import BackendConfig, Config, ModelConfig, Shadow, Variant
from service.config_schema import schema_text
from service.flags import FLAGS
from service.profiles import Profile
from service.settings import declared, shown
from tests.paths import ROOT

SCHEMA_PATH = ROOT / "docs" / "config.schema.json"


CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text()


def _docs_toml_sample() -> str:
    section = CONFIG_DOC.split("## Configuration file", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_published_schema_is_the_one_the_declarations_make() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "run make schema"


def test_every_shipped_config_and_the_docs_sample_meet_the_schema_and_a_mistake_does_not() -> None:
    import jsonschema  # noqa: PLC0415 (three seconds to import: only for this test)

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    shipped = sorted([*(ROOT / "deploy").rglob("*.toml"), *(ROOT / "examples").glob("*.toml")])
    assert len(shipped) >= 6, shipped
    for path in shipped:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_toml(path))]
        assert not errors, (path, errors)
    sample = tomllib.loads(_docs_toml_sample())
    assert not list(validator.iter_errors(sample))
    # Each of these is a mistake the gateway refuses at start; an editor with the schema marks it as it is typed.
    mistakes = [
        {"server": {"listn": "x"}},
        {"server": {"predict_timeout": "soon"}},
        {"server": {"max_image_bytes": 0}},
        {"server": {"log_format": "xml"}},
        {"backends": [{"name": "a"}]},
        {"models": [{"backend": "a"}]},
        {"models": [{"name": "m", "profile": {"upscale": "bicubic"}}]},
        {"models": [{"name": "m", "profile": {"longest_side": 100000}}]},
        {"models": [{"name": "m", "variants": [{"name": "v"}]}]},
        {"models": [{"name": "m", "shadow": {"variant": "v", "percent": 0}}]},
        {"profiles": {"p": {"width": "wide"}}},
    ]
    for mistake in mistakes:
        assert list(validator.iter_errors(mistake)), mistake


def _toml(path: pathlib.Path) -> dict[str, object]:
    return tomllib.loads(path.read_text())


def test_every_flag_is_in_the_docs_table_with_its_default_and_every_key_in_the_docs_sample() -> None:
    rows = [line for line in CONFIG_DOC.split("## Configuration file", 1)[0].splitlines() if line.startswith("| `--")]
    documented = {}
    for row in rows:
        names, default = row.split("|")[1], row.split("|")[2].replace("`", "")
        for name in re.findall(r"`--([a-z-]+)`", names):
            documented[name] = default
    flags = {flag.name: flag for flag in FLAGS}
    assert set(documented) == {*flags, "config"}, set(documented) ^ {*flags, "config"}
    for name, flag in flags.items():
        told = shown(flag.item)
        assert told in documented[name], (name, told, documented[name])
        assert (flag.item.key.flag != "") == (flag.owner is not Config), name
    sample = _docs_toml_sample()
    for cls in (Config, BackendConfig, ModelConfig, Variant, Shadow, Profile):
        missing = [item.name for item in declared(cls) if not re.search(rf"\b{item.name}\b", sample)]
        assert not missing, (cls.__name__, missing)
