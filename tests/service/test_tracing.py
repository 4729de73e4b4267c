"""service/tracing.py in-process: a span per call and stage, continued into the backend."""

from __future__ import annotations

import itertools
import subprocess
import sys

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from segmentation.v1 import segmentation_service_pb2 as pb
from service import tracing
from service.config import BackendConfig, Config, ConfigError
from service.flags import load_config
from tests import images
from tests.fakes import FakeTFServing
from tests.inprocess import running

IMAGE = images.png("chelsea.png")


def test_traces_have_a_span_per_call_and_stage_and_continue_into_the_backend(
    fake_tf_serving: tuple[str, FakeTFServing],
) -> None:
    target, tf_serving = fake_tf_serving
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = Config(listen="127.0.0.1:0", backends=(BackendConfig(targets=(target,)),))
    caller_trace, caller_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    tracing.use(provider)
    try:
        with running(config) as served:
            served.stub.SegmentImage(
                pb.SegmentImageRequest(image=IMAGE),
                metadata=(("traceparent", f"00-{caller_trace}-{caller_span}-01"),),
                timeout=10,
            )
            with pytest.raises(grpc.RpcError):
                served.stub.SegmentImage(pb.SegmentImageRequest(image=b"not an image"), timeout=10)
    finally:
        tracing.use(None)
    spans = exporter.get_finished_spans()
    by_name = {span.name: span for span in spans if span.context.trace_id == int(caller_trace, 16)}
    call = by_name["segmentation.v1.SegmentationService/SegmentImage"]
    # The caller's trace continues through the gateway.
    assert call.parent is not None and call.parent.span_id == int(caller_span, 16)
    assert call.kind == SpanKind.SERVER and call.attributes["rpc.grpc.status_code"] == 0
    segment = by_name["segment"]
    assert segment.parent.span_id == call.context.span_id and segment.attributes["model"] == "deeplab"
    stages = ("probe", "decode", "resize", "pack", "predict", "unpack", "postprocess", "encode")
    for stage in stages:
        assert by_name[stage].parent.span_id == segment.context.span_id, stage
        assert call.start_time <= by_name[stage].start_time <= by_name[stage].end_time <= call.end_time, stage
    # Each stage starts where the one before it ended, or later.
    for before, after in itertools.pairwise(stages):
        assert by_name[before].end_time <= by_name[after].start_time, (before, after)
    # The backend got the predict span's context.
    predict = by_name["predict"]
    assert predict.kind == SpanKind.CLIENT
    sent = tf_serving.metadata[0]["traceparent"]
    assert sent == f"00-{caller_trace}-{predict.context.span_id:016x}-01"
    # A refused call is a trace of its own, marked as an error.
    (refused,) = [s for s in spans if s.context.trace_id != int(caller_trace, 16) and s.parent is None]
    assert refused.status.status_code == StatusCode.ERROR and refused.attributes["rpc.grpc.status_code"] == 3


def test_tracing_is_a_setting_and_needs_nothing_when_off() -> None:
    config = load_config(["--tracing=console", "--tracing-sample-ratio=0.25", "--backend=localhost:8500"])
    assert (config.tracing, config.tracing_sample_ratio) == ("console", 0.25)
    with pytest.raises(ConfigError, match="tracing"):
        load_config(["--tracing=zipkin"])
    # Off by default, and then the gateway never imports OpenTelemetry's SDK.
    code = "import sys, service.app, service.pipeline; print('opentelemetry.sdk' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
