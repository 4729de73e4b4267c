"""`make compose-test`: deploy/compose/ brought up with podman-compose, a real SegmentImage through it, metrics
read from the gateway, TF Serving's stand-in and Prometheus, then the stack taken down.

Uses the images `make image` built (localhost/deeplab-*) and compose.local.yaml, since tensorflow/serving and
prom/prometheus cannot be pulled here. Host ports are free ones picked now, published on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port
from tests.paths import IMAGES, ROOT, SHARED

COMPOSE_DIR = ROOT / "deploy" / "compose"
PROJECT = "deeplab-compose-test"
BIN = ROOT / ".venv" / "bin"
PORTS = ("GATEWAY_GRPC_PORT", "GATEWAY_HTTP_PORT", "GATEWAY_METRICS_PORT", "TFSERVING_GRPC_PORT")
PORTS += ("TFSERVING_REST_PORT", "PROMETHEUS_PORT")


def _compose(environ: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    files = ("-f", "compose.yaml", "-f", "compose.local.yaml")
    command = [str(BIN / "podman-compose"), *files, "-p", PROJECT, *args]
    return subprocess.run(
        command, cwd=COMPOSE_DIR, env=environ, capture_output=True, text=True, timeout=timeout, check=False
    )


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last error: {last})")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    environ = {**os.environ, "SHARED": str(SHARED)}
    environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "containers" / "containers.conf"))
    ports = {name: str(free_port()) for name in PORTS}
    environ.update(ports)
    _compose(environ, "down", "-v")  # what an interrupted run left
    failed_before = request.session.testsfailed
    up = _compose(environ, "up", "-d")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield ports
    finally:
        if request.session.testsfailed > failed_before or up.returncode != 0:
            print(f"--- compose logs (tail)\n{_compose(environ, 'logs', timeout=60).stdout[-6000:]}")
        down = _compose(environ, "down", "-v")
        assert down.returncode == 0, down.stderr[-2000:]


def _grpcurl(port: str, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    command = [str(BIN / "grpcurl"), "-plaintext", "-max-time", "60"]
    if body is not None:
        command += ["-d", "@"]
    command += [f"127.0.0.1:{port}", method]
    data = json.dumps(body) if body is not None else None
    result = subprocess.run(command, input=data, capture_output=True, text=True, timeout=90, check=True)
    return json.loads(result.stdout)


def test_a_photo_goes_through_the_composed_stack_and_is_seen_in_metrics(stack: dict[str, str]) -> None:
    grpc_port = stack["GATEWAY_GRPC_PORT"]
    health = "grpc.health.v1.Health/Check"
    _until("the gateway SERVING", lambda: _grpcurl(grpc_port, health).get("status") == "SERVING", timeout=300)

    image = base64.b64encode((IMAGES / "chelsea.png").read_bytes()).decode()
    request = {"image": image, "maskFormat": "MASK_FORMAT_RLE", "maskSize": "MASK_SIZE_MODEL"}
    answer = _grpcurl(grpc_port, "segmentation.v1.SegmentationService/SegmentImage", request)
    print("SegmentImage:", json.dumps({k: v for k, v in answer.items() if k != "mask"}))
    assert answer["classes"][0]["label"] == "cat" and answer["classes"][0]["fraction"] > 0.5
    assert answer["model"]["name"] == "deeplab"

    gateway = _samples(_get(f"http://127.0.0.1:{stack['GATEWAY_METRICS_PORT']}/metrics"))
    key = ("segmentation_requests_total", frozenset({"code": "OK", "method": "SegmentImage"}.items()))
    calls = [v for (name, labels), v in gateway.items() if name == key[0] and key[1] <= labels]
    assert calls == [1.0], calls

    rest = stack["TFSERVING_REST_PORT"]
    served = _get(f"http://127.0.0.1:{rest}/monitoring/prometheus/metrics")
    assert ':tensorflow:serving:request_count{model_name="deeplab",status="OK"} 1' in served

    def scraped() -> dict[str, str]:
        answer = json.loads(_get(f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}/api/v1/query?query=up"))
        up = {r["metric"]["job"]: r["value"][1] for r in answer["data"]["result"]}
        return up if up == {"deeplab-gateway": "1", "tfserving": "1"} else {}

    print("Prometheus up:", _until("Prometheus scraping both", scraped, timeout=60))

    # The gateway's alert rules are loaded, and once the stack serves, none is pending or firing (while the model
    # loaded, BackendDown or ModelNotServing may have been pending for a few evaluations).
    def quiet() -> list[dict[str, Any]]:
        rules = json.loads(_get(f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}/api/v1/rules?type=alert"))
        alerts = [rule for group in rules["data"]["groups"] for rule in group["rules"]]
        loud = [rule["name"] for rule in alerts if rule["state"] != "inactive"]
        return [] if loud else alerts

    alerts = _until("the alert rules loaded and quiet", quiet, timeout=60)
    assert {"SegmentationBackendDown", "SegmentationErrorBudgetBurn"} <= {rule["name"] for rule in alerts}

    # The image's HEALTHCHECK (python -m service.healthcheck), run as the engine runs it.
    check = subprocess.run(
        ["podman", "healthcheck", "run", f"{PROJECT}_gateway_1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
