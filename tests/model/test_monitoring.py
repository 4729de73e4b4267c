"""--monitoring_config_file: TF Serving's Prometheus page on the REST port, counting Predicts over gRPC and REST as
TF Serving does (see modelserver/monitoring.py)."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from modelserver.monitoring import DEFAULT_PATH, prometheus_path
from modelserver.options import OptionsError, parse_options
from tests.model.client import Client
from tests.model.processes import RestServer, run_modelserver, start_with_rest

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
IMAGE = np.zeros((8, 8, 3), np.uint8)


@pytest.fixture(scope="module")
def monitored(servable_base: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    config = tmp_path_factory.mktemp("monitoring") / "monitoring.config"
    config.write_text("prometheus_config { enable: true }\n")  # no path: the default
    server = start_with_rest(
        "--model_name=deeplab", f"--model_base_path={servable_base}", f"--monitoring_config_file={config}"
    )
    yield server
    server.stop()


def _samples(page: str) -> list[tuple[str, dict[str, str], str]]:
    """(name, labels, value) of each sample line."""
    samples = []
    for line in page.splitlines():
        if not line.startswith("#"):
            match = re.fullmatch(r"(\S+?)\{(.*)\} (\S+)", line)
            assert match, line
            samples.append((match[1], dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2])), match[3]))
    return samples


def _value(page: str, name: str, **labels: str) -> str | None:
    found = [value for sample, sample_labels, value in _samples(page) if (sample, sample_labels) == (name, labels)]
    assert len(found) <= 1
    return found[0] if found else None


def test_predicts_are_counted_by_model_and_status(monitored: RestServer) -> None:
    client = Client(monitored.target)
    client.predict(IMAGE)
    with pytest.raises(grpc.RpcError) as info:
        client.predict(IMAGE, model="nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        client.predict(IMAGE, key="wrong")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert monitored.json("POST", "/v1/models/deeplab:predict", {"instances": [IMAGE.tolist()]})[0] == 200
    assert monitored.json("POST", "/v1/models/nope:predict", {"instances": [IMAGE.tolist()]})[0] == 404
    assert monitored.json("GET", "/v1/models/deeplab")[0] == 200  # every REST call under /v1/ counts

    status, content_type, page = monitored.request("GET", DEFAULT_PATH)
    assert (status, content_type) == (200, "text/plain")
    assert [line for line in page.splitlines() if line.startswith("#")] == [
        f"# TYPE {REQUEST_COUNT} counter",
        "# TYPE :tensorflow:serving:request_example_count_total counter",
        "# TYPE :tensorflow:serving:request_example_counts histogram",
        f"# TYPE {REQUEST_LATENCY} histogram",
        "# TYPE :tensorflow:serving:runtime_latency histogram",
    ]
    assert {(tuple(labels.values()), value) for name, labels, value in _samples(page) if name == REQUEST_COUNT} == {
        (("deeplab", "OK"), "3"),
        (("deeplab", "INVALID_ARGUMENT"), "1"),
        (("nope", "NOT_FOUND"), "2"),
    }
    # Latency only for what succeeded: API "Predict" over gRPC, the path's "predict" over REST, "" for a GET.
    latencies = {tuple(labels.values()) for name, labels, _ in _samples(page) if name == f"{REQUEST_LATENCY}_count"}
    assert latencies == {("deeplab", "Predict", "GRPC"), ("deeplab", "predict", "REST"), ("deeplab", "", "REST")}
    labels = {"model_name": "deeplab", "API": "Predict", "entrypoint": "GRPC"}
    buckets = [
        (bucket.pop("le"), int(count))
        for name, bucket, count in _samples(page)
        if name == f"{REQUEST_LATENCY}_bucket" and {**bucket, "le": ""} == {**labels, "le": ""}
    ]
    # Microseconds in 33 exponential buckets (10 * 1.8^i) and the rest, cumulative.
    assert [le for le, _ in buckets[:4]] == ["10", "18", "32.4", "58.32"] and buckets[-1][0] == "+Inf"
    assert len(buckets) == 34 and buckets[-1][1] == 1
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    assert _value(page, f"{REQUEST_LATENCY}_count", **labels) == "1"
    assert float(_value(page, f"{REQUEST_LATENCY}_sum", **labels) or 0) > 100  # an inference takes >0.1 ms


def test_metrics_path_is_exact(monitored: RestServer) -> None:
    # TF Serving compares the path and its query string with the configured path.
    status, content_type, body = monitored.request("GET", f"{DEFAULT_PATH}?x=1")
    assert (status, content_type) == (400, "text/plain")
    assert body == f"Unexpected path: {DEFAULT_PATH}?x=1. Should be {DEFAULT_PATH}"
    assert monitored.request("GET", "/monitoring/prometheus")[0] == 404
    assert monitored.request("POST", DEFAULT_PATH)[0] == 200  # any method, as TF Serving's handler


@pytest.mark.parametrize(
    ("text", "rest_port", "expected"),
    [
        ('prometheus_config { enable: true, path: "/metrics" }', 8501, "/metrics"),
        ("prometheus_config { enable: true }", 8501, DEFAULT_PATH),
        ("prometheus_config { enable: false }", 8501, None),
        ("", 8501, None),
        # Without a REST port TF Serving never reads the file (server.cc:437-452), nor with the gRPC port's.
        ("not a MonitoringConfig", 0, None),
        ("not a MonitoringConfig", 8500, None),
    ],
)
def test_config_gives_the_path(tmp_path: pathlib.Path, text: str, rest_port: int, expected: str | None) -> None:
    config = tmp_path / "monitoring.config"
    config.write_text(text)
    options = parse_options(
        ["--model_base_path=/m", "--port=8500", f"--rest_api_port={rest_port}", f"--monitoring_config_file={config}"]
    )
    assert prometheus_path(options) == expected


def test_missing_file_is_an_options_error() -> None:
    options = parse_options(["--model_base_path=/m", "--rest_api_port=8501", "--monitoring_config_file=/nonexistent"])
    with pytest.raises(OptionsError, match="cannot read --monitoring_config_file /nonexistent: No such file"):
        prometheus_path(options)


def test_bad_file_fails_at_start_naming_it(servable_base: pathlib.Path, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "monitoring.config"
    config.write_text("prometheus_config { enable: yes please }\n")
    result = run_modelserver(
        "--model_name=deeplab",
        f"--model_base_path={servable_base}",
        "--rest_api_port=1",  # never bound: the file is read before anything starts
        f"--monitoring_config_file={config}",
    )
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"modelserver: error: --monitoring_config_file {config}: 1:"), last
