"""service/backends/kinds.py: the kinds of backend, as the configuration names them."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

from service.backends.kinds import KINDS
from service.config import ConfigError
from service.flags import load_config
from tests.paths import ROOT

KIND_FILE = """
[[backends]]
name = "triton"
kind = "{kind}"
targets = ["127.0.0.1:8001"]

[[models]]
name = "deeplab"
profile = "deeplab-257"
{extra}
"""


def test_kind_in_the_file_the_flag_and_the_variable(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(KIND_FILE.format(kind="kserve-v2", extra=""))
    (backend,) = load_config(["--config", str(path)], {}).backends
    assert backend.kind == "kserve-v2" and set(KINDS) == {"tfserving", "kserve-v2"}
    assert load_config([], {}).backends[0].kind == "tfserving"
    assert load_config(["--backend-kind=kserve-v2"], {}).backends[0].kind == "kserve-v2"
    assert load_config([], {"SEGMENTATION_BACKEND_KIND": "kserve-v2"}).backends[0].kind == "kserve-v2"


@pytest.mark.parametrize(
    ("args", "file", "message"),
    [
        (["--backend-kind=triton"], None, "--backend-kind='triton': use tfserving or kserve-v2"),
        ([], KIND_FILE.format(kind="grpc", extra=""), "backends[0].kind = 'grpc': use tfserving or kserve-v2"),
        (
            [],
            KIND_FILE.format(kind="kserve-v2", extra='version_label = "stable"'),
            "models[0].version_label = 'stable': backend 'triton' speaks kserve-v2, which has no version labels",
        ),
    ],
)
def test_a_bad_kind_or_a_version_label_on_kserve_v2_is_one_line(
    tmp_path: pathlib.Path, args: list[str], file: str | None, message: str
) -> None:
    if file is not None:
        path = tmp_path / "gateway.toml"
        path.write_text(file)
        args = ["--config", str(path)]
    with pytest.raises(ConfigError) as error:
        load_config(args, {})
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_every_kind_names_a_class_of_that_kind() -> None:
    for name, kind in KINDS.items():
        assert getattr(importlib.import_module(kind.module), kind.cls).kind == name


def test_the_configuration_loads_no_protocol_stubs() -> None:
    """bench/fidelity.py loads the configuration beside TensorFlow, whose protobuf names the stubs also register."""
    code = "import sys, service.flags, service.routing; print(sorted(m for m in sys.modules if m.endswith('_subset')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout
