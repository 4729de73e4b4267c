"""Fixtures of the end-to-end suite: a real modelserver and gateway on loopback, and clients of them."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests.helpers import ServerProcess, http_base, start_gateway, start_modelserver, wait_for_health
from tests.paths import ROOT

# Files the tests make for people to look at (the web page's screenshots), listed at the end of the run.
ARTEFACTS_DIR = ROOT / "test-artifacts"
_ARTEFACTS = pytest.StashKey[list[pathlib.Path]]()


@pytest.fixture(scope="session")
def modelserver(servable_base: pathlib.Path) -> Iterator[ServerProcess]:
    server = start_modelserver("--model_name=deeplab", f"--model_base_path={servable_base}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(modelserver: ServerProcess) -> Iterator[ServerProcess]:
    # The model-zoo profile, named: class ids only, answers at the photo's size enlarged by nearest neighbour.
    server = start_gateway(modelserver.target, "--profile=deeplab-zoo", "--http-listen=127.0.0.1:0")
    wait_for_health(server.target, health_pb2.HealthCheckResponse.SERVING)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scores_gateway(modelserver: ServerProcess) -> Iterator[ServerProcess]:
    """A gateway started as by hand, with no profile: it reads the servable's serving_scores and answers exactly (as
    make run's does), with its HTTP side."""
    server = start_gateway(modelserver.target, "--http-listen=127.0.0.1:0")
    wait_for_health(server.target, health_pb2.HealthCheckResponse.SERVING)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scores_stub(scores_gateway: ServerProcess) -> Iterator[pb_grpc.SegmentationServiceStub]:
    with grpc.insecure_channel(
        scores_gateway.target, options=[("grpc.max_receive_message_length", 1 << 28)]
    ) as channel:
        yield pb_grpc.SegmentationServiceStub(channel)


@pytest.fixture(scope="session")
def http_url(gateway: ServerProcess) -> str:
    """The `gateway` fixture's HTTP side (Connect, gRPC-Web, the web page): http://127.0.0.1:PORT."""
    return http_base(gateway)


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


@pytest.fixture
def keep_artefact(request: pytest.FixtureRequest) -> Callable[[pathlib.Path], pathlib.Path]:
    """Copies a file a test made (under its tmp_path) to test-artifacts/, where it outlives pytest's temp dirs."""

    def keep(path: pathlib.Path) -> pathlib.Path:
        ARTEFACTS_DIR.mkdir(exist_ok=True)
        kept = ARTEFACTS_DIR / path.name
        shutil.copyfile(path, kept)
        request.config.stash.setdefault(_ARTEFACTS, []).append(kept)
        return kept

    return keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    kept = config.stash.get(_ARTEFACTS, [])
    if kept:
        terminalreporter.section("artefacts")
        for path in kept:
            terminalreporter.write_line(str(path))
