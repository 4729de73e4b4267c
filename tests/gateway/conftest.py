"""The gateway-side suite: everything here runs without TensorFlow in the process."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _no_tensorflow_in_this_process() -> Iterator[None]:
    # The gateway's wire-compatible stubs and TensorFlow register the same protobuf names; anything that needs
    # TensorFlow runs in a subprocess, and this proves nothing slipped in.
    yield
    assert "tensorflow" not in sys.modules, "a gateway-side test imported TensorFlow"
