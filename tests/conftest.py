"""Fixtures shared by both test suites.

The tests are two suites run as two pytest processes (see the Makefile's `test` target):
- tests/gateway: the gateway side. It imports the wire-compatible TF Serving stubs and never TensorFlow.
- tests/model: the TensorFlow side: exporter and modelserver, driven by the official tensorflow-serving-api.
Both sides register the same protobuf names, so they cannot share a process.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.helpers import run_exporter
from tests.paths import FROZEN_GRAPH, ROOT, SHARED, TFLITE

# TensorFlow's C++ start-up chatter would drown the output of failing subprocesses.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SUITES = ("gateway", "model")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not SHARED.is_dir():
        raise pytest.UsageError(f"the shared data folder is missing: expected {SHARED} beside the checkout")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suites = {pathlib.Path(item.path).relative_to(ROOT / "tests").parts[0] for item in items}
    if set(SUITES) <= suites:
        raise pytest.UsageError(
            "tests/gateway and tests/model cannot run in one process (they register the same protobuf names); "
            "run `make test`, or pytest on one of them"
        )


@pytest.fixture(scope="session")
def servable_base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A model base path holding version 1 exported from the shared frozen graph, made once per session."""
    base = tmp_path_factory.mktemp("models") / "deeplab"
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--version", "1")
    assert result.returncode == 0, result.stderr
    return base


@pytest.fixture(scope="session")
def lite_base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A model base path holding the shared TFLite model as version 1 (`1/model.tflite`, a link to the shared file,
    which is never copied into the project), as TF Serving serves it with --prefer_tflite_model."""
    version = tmp_path_factory.mktemp("lite") / "deeplab-lite" / "1"
    version.mkdir(parents=True)
    (version / "model.tflite").symlink_to(TFLITE)
    return version.parent
