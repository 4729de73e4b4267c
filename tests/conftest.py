"""Session-wide fixtures and the rule that keeps TensorFlow out of the pytest process."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.paths import FROZEN_GRAPH, SHARED

# TensorFlow's C++ start-up chatter would drown the output of failing subprocesses.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not SHARED.is_dir():
        raise pytest.UsageError(f"the shared data folder is missing: expected {SHARED} beside the checkout")


@pytest.fixture(autouse=True, scope="session")
def _no_tensorflow_in_pytest() -> Iterator[None]:
    # The gateway-side stubs and TensorFlow register the same protobuf names; TensorFlow work runs in
    # subprocesses (tests/tf_side, modelserver, exporter), and this proves nothing slipped in.
    yield
    assert "tensorflow" not in sys.modules, "a test imported TensorFlow into the pytest process"


def run_exporter(*args: str | os.PathLike[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def servable_base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A model base path holding version 1 exported from the shared frozen graph, made once per session."""
    base = tmp_path_factory.mktemp("models") / "deeplab"
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--version", "1")
    assert result.returncode == 0, result.stderr
    return base
