"""Fixtures of the unit tests of service/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import FakeTFServing, serving


@pytest.fixture
def fake_tf_serving() -> Iterator[tuple[str, FakeTFServing]]:
    """A fake TF Serving on loopback, in this process: its target, and what it was asked."""
    tf_serving = FakeTFServing()
    with serving(tf_serving) as target:
        yield target, tf_serving
