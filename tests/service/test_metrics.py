"""service/metrics.py in-process: what the Prometheus metrics count."""

from __future__ import annotations

import pathlib
import re
import time
from dataclasses import replace

import grpc
import pytest
import yaml

from segmentation.v1 import segmentation_service_pb2 as pb
from service.config import Shadow
from service.metrics import memory_limit_bytes
from tests import images
from tests.helpers import scrape
from tests.inprocess import running, split, two_model_config
from tests.paths import ROOT

IMAGE = images.png("chelsea.png")


def test_metrics_count_calls_stages_bytes_backends_and_shadows() -> None:
    config, backends = two_model_config(metrics_listen="127.0.0.1:0", health_poll_s=0.1)
    shadowed = replace(split(100, 0), shadow=Shadow("canary", 100.0))
    config = replace(config, models=(shadowed, *config.models[1:]))
    with running(config, backends) as served:
        for _ in range(3):
            served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=10)
        with pytest.raises(grpc.RpcError):
            served.stub.SegmentImage(pb.SegmentImageRequest(image=b"not an image"), timeout=10)
        with pytest.raises(grpc.RpcError):
            served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE, model=pb.ModelSelector(name="x")), timeout=10)
        items = [pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=IMAGE)) for _ in range(2)]
        assert len(list(served.stub.SegmentImageStream(iter(items), timeout=10))) == 2
        time.sleep(0.3)  # shadows end in the background; health polls every 0.1 s
        samples = scrape(served.gateway.metrics_port)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    requests = "segmentation_requests_total"
    assert value(requests, method="SegmentImage", code="OK", model="deeplab", variant="stable") == 3
    assert value(requests, method="SegmentImage", code="INVALID_ARGUMENT", model="deeplab", variant="stable") == 1
    # An unknown model name is not a label value: the call is counted without a model.
    assert value(requests, method="SegmentImage", code="NOT_FOUND", model="", variant="") == 1
    assert value(requests, method="SegmentImageStream", code="OK", model="deeplab", variant="stable") == 1
    assert value("segmentation_request_seconds_count", method="SegmentImage", model="deeplab") == 4
    for stage in ("probe", "decode", "resize", "pack", "predict", "unpack", "postprocess", "encode"):
        assert value("segmentation_stage_seconds_count", stage=stage) == 5  # 3 calls and 2 stream items
    assert value("segmentation_stage_seconds_bucket", stage="predict", le="10.0") == 5
    assert value("segmentation_image_bytes_count") == 7 and value("segmentation_image_bytes_sum") == 6 * len(IMAGE) + 12
    assert value("segmentation_in_flight") == 0 and value("segmentation_shed_total") == 0
    assert value("segmentation_backend_up", backend="a", target="fake:0", kind="fake") == 1
    assert value("segmentation_model_serving", model="deeplab") == 1
    assert value("process_resident_memory_bytes") > 0
    for kind in ("config", "tls", "tokens", "certificate identities", "JWKS"):
        assert value("segmentation_file_reload_failures_total", file=kind) >= 0
    assert value("segmentation_shadow_requests_total", model="deeplab", variant="canary", outcome="compared") >= 4
    assert value("segmentation_shadow_pixel_agreement", model="deeplab", variant="canary") == 1.0
    # The shipped Grafana dashboard and alert rules ask only for metrics the gateway has.
    names = {name for name, _ in samples}
    dashboard = (ROOT / "deploy" / "grafana" / "deeplab-gateway.json").read_text()
    asked = set(re.findall(r"segmentation_[a-z_]+", dashboard))
    assert asked and asked <= names, asked - names
    rules = (ROOT / "deploy" / "alerts" / "gateway.rules.yml").read_text()
    asked = set(re.findall(r"\b(?:segmentation|process)_[a-z_]+", rules))
    # The memory limit is there only where the gateway's cgroup has one (tested below with cgroup files).
    asked.discard("segmentation_memory_limit_bytes")
    assert {"segmentation_model_serving", "process_resident_memory_bytes"} <= asked <= names, asked - names


def test_every_alert_has_its_runbook_in_the_operations_page() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts" / "gateway.rules.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    headings = re.findall(r"^### (\w+)$", (ROOT / "docs" / "operations.md").read_text(), re.MULTILINE)
    for alert in alerts:
        page, _, anchor = alert["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor in {heading.lower() for heading in headings}, alert["alert"]
    assert len(alerts) >= 10


def test_the_memory_limit_is_the_cgroup_s_where_it_has_one(tmp_path: pathlib.Path) -> None:
    (tmp_path / "memory.max").write_text("268435456\n")
    assert memory_limit_bytes(tmp_path) == 256 << 20
    (tmp_path / "memory.max").write_text("max\n")
    assert memory_limit_bytes(tmp_path) is None
    (tmp_path / "memory.max").unlink()
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("536870912\n")
    assert memory_limit_bytes(tmp_path) == 512 << 20
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{(1 << 63) - 4096}\n")  # v1's "none"
    assert memory_limit_bytes(tmp_path) is None
    assert memory_limit_bytes(tmp_path / "absent") is None
