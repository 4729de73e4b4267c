"""Cold start as TF Serving's: the gRPC port opens only once the configured models are loaded, and a model that
cannot be served ends the server with TF Serving's error (see modelserver/registry.py for the sources)."""

from __future__ import annotations

import pathlib
import signal
import time

import grpc
import pytest
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tests.helpers import copy_version
from tests.model.client import Client
from tests.model.processes import STARTUP_FAILED, WatchedStart, connectable, run_modelserver

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END
READY = "Running gRPC ModelServer"


def _publish(source: pathlib.Path, version_dir: pathlib.Path) -> None:
    """A complete version appears at once, as an exporter's rename makes it appear."""
    staging = version_dir.parent / f".{version_dir.name}.tmp"
    copy_version(source, staging)
    staging.rename(version_dir)


def _refused_throughout(port: int, seconds: float) -> int:
    """Connects to the port again and again for `seconds`; every attempt must be refused. Returns the count."""
    attempts = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not connectable(port), f"port {port} accepted a connection while the model was not loaded"
        attempts += 1
        time.sleep(0.05)
    return attempts


def test_the_port_stays_closed_while_the_model_loads(servable_base: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """A version whose first load fails is LOADING until a retry succeeds; all that time the port is closed."""
    version = tmp_path / "deeplab" / "1"
    version.mkdir(parents=True)  # no saved_model.pb yet: the first attempt fails, the retry 3 s later succeeds
    server = WatchedStart.begin(
        "--model_name=deeplab",
        f"--model_base_path={version.parent}",
        "--max_num_load_retries=5",
        "--load_retry_interval_micros=3000000",
    )
    try:
        server.wait_for_line("Loading servable: {name: deeplab version: 1} failed: NOT_FOUND")
        assert _refused_throughout(server.port, 1.0) >= 10
        assert READY not in server.output()
        # The model's files arrive; the saved_model.pb last, so that a retry sees all or nothing.
        staging = tmp_path / "staging"
        copy_version(servable_base / "1", staging)
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == "saved_model.pb"):
            entry.rename(version / entry.name)
        server.wait_for_line(READY, timeout=60)
        output = server.output()
        assert output.index("Successfully loaded servable version {name: deeplab version: 1}") < output.index(READY)
        assert "Retrying of Loading servable: {name: deeplab version: 1} retry: 1" in output
        assert connectable(server.port)
        assert Client(f"127.0.0.1:{server.port}").status()[1].state == AVAILABLE
    finally:
        assert server.stop() == 0, server.output()


def test_a_model_without_versions_keeps_the_port_closed_until_one_appears(
    servable_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    base = tmp_path / "deeplab"
    base.mkdir()
    server = WatchedStart.begin(
        "--model_name=deeplab", f"--model_base_path={base}", "--file_system_poll_wait_seconds=0.3"
    )
    try:
        server.wait_for_line("No versions of servable deeplab found under base path")
        _refused_throughout(server.port, 1.0)
        _publish(servable_base / "1", base / "1")
        server.wait_for_line(READY, timeout=60)
        assert Client(f"127.0.0.1:{server.port}").status()[1].state == AVAILABLE
    finally:
        assert server.stop() == 0, server.output()


def test_sigterm_while_waiting_for_a_model_stops_the_server_cleanly(tmp_path: pathlib.Path) -> None:
    base = tmp_path / "deeplab"
    base.mkdir()
    # Polled once (0): TF Serving then waits for the model forever; only a signal ends the wait.
    server = WatchedStart.begin(
        "--model_name=deeplab", f"--model_base_path={base}", "--file_system_poll_wait_seconds=0"
    )
    try:
        server.wait_for_line("No versions of servable deeplab found under base path")
        server.process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        assert server.process.wait(timeout=30) == 0, server.output()
        assert time.monotonic() - start < 10
        assert READY not in server.output()
    finally:
        server.stop()


def _broken(version_dir: pathlib.Path) -> None:
    version_dir.mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"this is not a SavedModel")


def test_the_only_model_failing_to_load_ends_the_server_with_tf_servings_error(tmp_path: pathlib.Path) -> None:
    _broken(tmp_path / "deeplab" / "1")
    start = time.monotonic()
    result = run_modelserver(
        "--model_name=deeplab", f"--model_base_path={tmp_path / 'deeplab'}", "--max_num_load_retries=0"
    )
    assert result.returncode == STARTUP_FAILED, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available: "
        "{{{name: deeplab version: 1} due to error: "
    ), last
    assert last.endswith("}, }"), last
    assert READY not in result.stdout + result.stderr
    assert time.monotonic() - start < 60


def test_retries_of_a_failing_model_come_before_the_failure(tmp_path: pathlib.Path) -> None:
    _broken(tmp_path / "deeplab" / "1")
    result = run_modelserver(
        "--model_name=deeplab",
        f"--model_base_path={tmp_path / 'deeplab'}",
        "--max_num_load_retries=2",
        "--load_retry_interval_micros=100000",
    )
    assert result.returncode == STARTUP_FAILED
    assert result.stderr.count("Loading servable: {name: deeplab version: 1} failed") == 3
    assert "Retrying of Loading servable: {name: deeplab version: 1} retry: 2" in result.stderr


@pytest.mark.parametrize(("broken_version", "starts"), [(2, False), (1, True)], ids=["highest-broken", "lower-broken"])
def test_the_highest_version_decides_a_model_with_several(
    servable_base: pathlib.Path, tmp_path: pathlib.Path, broken_version: int, starts: bool
) -> None:
    """TF Serving loads the highest aspired version first and its outcome (AVAILABLE or END) decides start-up."""
    base = tmp_path / "deeplab"
    good = 3 - broken_version
    copy_version(servable_base / "1", base / str(good))
    _broken(base / str(broken_version))
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "deeplab" base_path: "{base}" model_platform: "tensorflow" '
        "model_version_policy { all {} } } }"
    )
    if not starts:
        result = run_modelserver(f"--model_config_file={config}", "--max_num_load_retries=0")
        assert result.returncode == STARTUP_FAILED
        assert "{{{name: deeplab version: 2} due to error: " in result.stderr
        return
    server = WatchedStart.begin(f"--model_config_file={config}", "--max_num_load_retries=0")
    try:
        server.wait_for_line(READY)
        status = Client(f"127.0.0.1:{server.port}").status()
        assert status[good].state == AVAILABLE
        assert status[broken_version].state == END and status[broken_version].status.error_message
    finally:
        assert server.stop() == 0, server.output()


def test_a_version_label_in_the_first_config_needs_the_flag(
    servable_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "deeplab" base_path: "{servable_base}" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } } }'
    )
    result = run_modelserver(f"--model_config_file={config}")
    assert result.returncode == STARTUP_FAILED
    assert result.stderr.strip().splitlines()[-1] == (
        "Failed to start server. Error: FAILED_PRECONDITION: Request to assign label to version 1 of model "
        "deeplab, which is not currently available for inference"
    )
    # Refused before anything loads, as UpdateModelVersionLabelMap runs before the models are added.
    assert "Loading servable version" not in result.stderr


def test_with_the_flag_the_label_serves_from_the_start(servable_base: pathlib.Path, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "deeplab" base_path: "{servable_base}" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } } }'
    )
    server = WatchedStart.begin(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models")
    try:
        server.wait_for_line(READY)
        client = Client(f"127.0.0.1:{server.port}")
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "deeplab"
        assert client.models.GetModelStatus(request, timeout=10).model_version_status[0].state == AVAILABLE
        with pytest.raises(grpc.RpcError) as info:
            client.predictions.GetModelMetadata(_metadata_request("nightly"), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            client.predictions.GetModelMetadata(_metadata_request("stable"), timeout=10).model_spec.version.value == 1
        )
    finally:
        assert server.stop() == 0, server.output()


def _metadata_request(label: str) -> get_model_metadata_pb2.GetModelMetadataRequest:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "deeplab"
    request.model_spec.version_label = label
    return request
