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


import pathlib  # noqa: E402
import time  # noqa: E402

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc  # noqa: E402
from tests.servers import ServerProcess, start_gateway, start_modelserver  # noqa: E402

SERVICE = "segmentation.v1.SegmentationService"


def wait_for_health(target: str, want: int, timeout: float = 60) -> float:
    """Seconds until the gateway's health for the service is `want`."""
    start = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - start < timeout:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1).status
                if status == want:
                    return time.monotonic() - start
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"health of {target} did not become {want} within {timeout}s")


@pytest.fixture(scope="session")
def modelserver(servable_base: pathlib.Path) -> Iterator[ServerProcess]:
    server = start_modelserver("--model_name=deeplab", f"--model_base_path={servable_base}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(modelserver: ServerProcess) -> Iterator[ServerProcess]:
    server = start_gateway(modelserver.target)
    wait_for_health(server.target, health_pb2.HealthCheckResponse.SERVING)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def channel(gateway: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        gateway.target,
        options=[("grpc.max_receive_message_length", 1 << 28), ("grpc.max_send_message_length", 1 << 28)],
    ) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> pb_grpc.SegmentationServiceStub:
    return pb_grpc.SegmentationServiceStub(channel)
