"""service/logs.py in-process: the request id in the log lines and sent on to the backend."""

from __future__ import annotations

import json
import time

import grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.config import BackendConfig, Config
from tests import images
from tests.fakes import FakeTFServing
from tests.helpers import start_gateway
from tests.inprocess import running

IMAGE = images.png("chelsea.png")


def test_the_request_id_is_sent_on_to_the_backend(fake_tf_serving: tuple[str, FakeTFServing]) -> None:
    target, tf_serving = fake_tf_serving
    config = Config(listen="127.0.0.1:0", backends=(BackendConfig(targets=(target,)),))
    with running(config) as served:
        served.stub.SegmentImage(
            pb.SegmentImageRequest(image=IMAGE), metadata=(("x-request-id", "trace-me-42"),), timeout=10
        )
        served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=10)
    assert tf_serving.metadata[0]["x-request-id"] == "trace-me-42"
    assert (
        tf_serving.metadata[1]["x-request-id"] not in ("trace-me-42", "-")
        and len(tf_serving.metadata[1]["x-request-id"]) == 32
    )


def test_json_logs_carry_the_request_id(fake_tf_serving: tuple[str, FakeTFServing]) -> None:
    target, _ = fake_tf_serving
    gateway = start_gateway(target, "--log-format=json")
    try:
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), metadata=(("x-request-id", "json-1"),), timeout=30)
        deadline = time.monotonic() + 5
        while '"json-1"' not in gateway.output():
            assert time.monotonic() < deadline, gateway.output()
            time.sleep(0.05)
    finally:
        assert gateway.stop() == 0
    records = [json.loads(line) for line in gateway.lines if line.startswith("{")]
    (call,) = [r for r in records if r.get("request_id") == "json-1"]
    assert call["level"] == "INFO" and call["name"] == "service.api.interceptors"
    assert call["message"].startswith("SegmentImage OK bytes=")
    assert any(r["request_id"] == "-" and "health of" in r["message"] for r in records)
