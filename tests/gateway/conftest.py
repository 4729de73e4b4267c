"""Fixtures of the gateway-side suite: everything here runs without TensorFlow in the process."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests.helpers import ServerProcess, start_gateway, start_modelserver, wait_for_health


@pytest.fixture(autouse=True, scope="session")
def _no_tensorflow_in_this_process() -> Iterator[None]:
    # The gateway's wire-compatible stubs and TensorFlow register the same protobuf names; anything that needs
    # TensorFlow runs in a subprocess, and this proves nothing slipped in.
    yield
    assert "tensorflow" not in sys.modules, "a gateway-side test imported TensorFlow"


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
