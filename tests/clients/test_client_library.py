"""clients/python without a server: the default port, and shares as the CLI prints them."""

from __future__ import annotations

import pytest

import segmentation_client.cli
import segmentation_client.client
from segmentation_client import (
    SegmentationClient,
)
from tests.helpers import ServerProcess


@pytest.fixture(scope="module")
def client(gateway: ServerProcess):  # type: ignore[no-untyped-def]
    with SegmentationClient(gateway.target, timeout=60) as c:
        yield c


def test_a_server_without_a_port_is_on_the_service_s_own() -> None:
    assert segmentation_client.client.with_default_port("localhost") == "localhost:50051"
    assert segmentation_client.client.with_default_port("[::1]") == "[::1]:50051"
    for kept in ("localhost:8500", "[::1]:8500", "dns:///gateway:50051", "unix:/run/gateway.sock"):
        assert segmentation_client.client.with_default_port(kept) == kept


def test_a_share_too_small_to_round_reads_as_such() -> None:
    percent = segmentation_client.cli.percent
    assert [percent(0.0004), percent(0.0), percent(0.001), percent(0.4567)] == ["< 0.1 %", "0.0 %", "0.1 %", "45.7 %"]
