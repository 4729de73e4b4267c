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


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "1e10", "1e12", "soon"])
@pytest.mark.parametrize("command", [[], ["models"], ["health"]])
def test_a_timeout_no_call_could_keep_is_a_usage_error(
    command: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # gRPC would fail each call at once with DEADLINE_EXCEEDED (exit 1) on such a deadline, or say so instead of
    # "cannot reach": the CLI refuses them as a usage error.
    with pytest.raises(SystemExit) as exit_info:
        image = [] if command else ["photo.jpg"]
        segmentation_client.cli.main([*command, "--server", "localhost:1", "--timeout", value, *image])
    assert exit_info.value.code == 2
    assert "argument --timeout" in capsys.readouterr().err


def test_the_largest_timeout_still_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert segmentation_client.cli.main(["models", "--server", "localhost:1", "--timeout", "86400"]) == 2
    assert "cannot reach the service at localhost:1" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf"), 1e10, "60", True])
def test_the_library_refuses_a_timeout_no_call_could_keep(seconds: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        SegmentationClient("localhost:1", timeout=seconds)  # type: ignore[arg-type]
    with SegmentationClient("localhost:1") as client, pytest.raises(ValueError, match="timeout"):
        client.models(timeout=seconds)  # type: ignore[arg-type]
