"""Operations in-process: metrics, request ids to the backend, JSON logs, TLS and mutual TLS, bearer tokens."""

from __future__ import annotations

import itertools
import json
import logging
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service import tracing
from service.config import BackendConfig, Config, ConfigError, Shadow
from service.flags import load_config
from tests import images
from tests.fakes import FakeTFServing, serving
from tests.gateway.inprocess import running, split, two_model_config
from tests.helpers import free_port, scrape, start_gateway, wait_for_health
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
    assert value("segmentation_shadow_requests_total", model="deeplab", variant="canary", outcome="compared") >= 4
    assert value("segmentation_shadow_pixel_agreement", model="deeplab", variant="canary") == 1.0
    # The shipped Grafana dashboard asks only for metrics the gateway has.
    dashboard = (ROOT / "deploy" / "grafana" / "deeplab-gateway.json").read_text()
    asked = set(re.findall(r"segmentation_[a-z_]+", dashboard))
    assert asked and asked <= {name for name, _ in samples}, asked - {name for name, _ in samples}


@pytest.fixture
def fake_tf_serving() -> Iterator[tuple[str, FakeTFServing]]:
    tf_serving = FakeTFServing()
    with serving(tf_serving) as target:
        yield target, tf_serving


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


def _secure_stub(target: str, pki: dict[str, pathlib.Path], client: str = "") -> pb_grpc.SegmentationServiceStub:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=pki[f"{client}.key"].read_bytes() if client else None,
        certificate_chain=pki[f"{client}.crt"].read_bytes() if client else None,
    )
    return pb_grpc.SegmentationServiceStub(grpc.secure_channel(target, credentials))


def test_tls_and_mutual_tls_on_the_gateway(pki: dict[str, pathlib.Path]) -> None:
    config, backends = two_model_config(tls_cert=str(pki["server.crt"]), tls_key=str(pki["server.key"]))
    request = pb.SegmentImageRequest(image=IMAGE)
    with running(config, backends) as served:
        assert _secure_stub(served.target, pki).SegmentImage(request, timeout=10).classes
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(request, timeout=5)  # plaintext to a TLS port
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    config = replace(config, tls_client_ca=str(pki["ca"]))
    with running(config, backends) as served:
        assert _secure_stub(served.target, pki, client="client").SegmentImage(request, timeout=10).classes
        for client in ("", "stranger"):  # no certificate, or one a CA the gateway does not trust signed
            with pytest.raises(grpc.RpcError) as error:
                _secure_stub(served.target, pki, client=client).SegmentImage(request, timeout=5)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_renewed_certificate_files_are_used_by_new_connections(
    pki: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(pki["server.crt"].read_bytes())
    key.write_bytes(pki["server.key"].read_bytes())
    config, backends = two_model_config(tls_cert=str(cert), tls_key=str(key))
    request = pb.SegmentImageRequest(image=IMAGE)
    renewed_ca = trustme.CA()
    with running(config, backends) as served:
        assert _secure_stub(served.target, pki).SegmentImage(request, timeout=10).classes
        renewed = renewed_ca.issue_cert("127.0.0.1")
        renewed.private_key_pem.write_to_path(str(key))
        renewed.cert_chain_pems[0].write_to_path(str(cert))
        renewed_ca.cert_pem.write_to_path(str(tmp_path / "renewed-ca"))
        trusting_renewed = {"ca": tmp_path / "renewed-ca"}
        assert _secure_stub(served.target, trusting_renewed).SegmentImage(request, timeout=10).classes
        with pytest.raises(grpc.RpcError):
            _secure_stub(served.target, pki).SegmentImage(request, timeout=5)


def test_bearer_tokens_guard_the_api_and_leave_health_open(tmp_path: pathlib.Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# production\ns3cret-one\n\nsecond-token  \n")
    config, backends = two_model_config(auth_tokens=str(tokens))
    request = pb.SegmentImageRequest(image=IMAGE)
    with running(config, backends) as served:
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "s3cret-one"),)):
            with pytest.raises(grpc.RpcError) as error:
                served.stub.SegmentImage(request, metadata=metadata, timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error.value.details() == "missing or invalid bearer token"
        for value in ("Bearer s3cret-one", "Bearer second-token", "bearer s3cret-one"):  # the scheme's case is free
            served.stub.SegmentImage(request, metadata=(("authorization", value),), timeout=10)
        with grpc.insecure_channel(served.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5) is not None
            assert "segmentation.v1.SegmentationService" in _reflected_services(channel)
        # Tokens rotate without a restart (the file is checked at most once a second).
        tokens.write_text("rotated\n")
        time.sleep(1.1)
        served.stub.SegmentImage(request, metadata=(("authorization", "Bearer rotated"),), timeout=10)
        with pytest.raises(grpc.RpcError):
            served.stub.SegmentImage(request, metadata=(("authorization", "Bearer s3cret-one"),), timeout=10)
    with running(replace(config, auth_health=True), backends) as served, grpc.insecure_channel(served.target) as ch:
        with pytest.raises(grpc.RpcError) as error:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as error:
            _reflected_services(ch)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _reflected_services(channel: grpc.Channel) -> list[str]:
    """The services the server's reflection lists."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    return [service.name for service in answer.list_services_response.service]


def test_tls_and_mutual_tls_to_the_backend(pki: dict[str, pathlib.Path], caplog: pytest.LogCaptureFixture) -> None:
    tf_serving = FakeTFServing()
    credentials = grpc.ssl_server_credentials(
        [(pki["server.key"].read_bytes(), pki["server.crt"].read_bytes())],
        root_certificates=pki["ca"].read_bytes(),
        require_client_auth=True,
    )
    request = pb.SegmentImageRequest(image=IMAGE)
    with serving(tf_serving, credentials) as target:
        mutual = BackendConfig(
            targets=(target,), ca=str(pki["ca"]), cert=str(pki["client.crt"]), key=str(pki["client.key"])
        )
        with running(Config(listen="127.0.0.1:0", backends=(mutual,))) as served:
            assert served.stub.SegmentImage(request, timeout=10).model.version == 1
        # The backend requires a client certificate: without one the handshake fails, and the caller is told.
        one_way = replace(mutual, cert="", key="")
        with running(Config(listen="127.0.0.1:0", backends=(one_way,))) as served:
            with pytest.raises(grpc.RpcError) as error:
                served.stub.SegmentImage(request, timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE and target not in error.value.details()
        # The log has where the backend is and what the channel said; the caller, the request id that finds them.
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(target in line and "unavailable" in line for line in warnings), warnings

    assert len(tf_serving.metadata) == 1


def _healthcheck(*flags: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTATION_")}
    command = [sys.executable, "-m", "service.healthcheck", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environ, check=False)


def test_the_health_port_answers_probes_in_plaintext_beside_a_tls_port(
    pki: dict[str, pathlib.Path], fake_tf_serving: tuple[str, FakeTFServing], tmp_path: pathlib.Path
) -> None:
    # Kubernetes' gRPC probes and container health checks speak no TLS: they ask health_listen.
    target, _ = fake_tf_serving
    health_port = free_port()
    (tmp_path / "tokens").write_text("s3cret\n")
    tls = (f"--tls-cert={pki['server.crt']}", f"--tls-key={pki['server.key']}", f"--auth-tokens={tmp_path / 'tokens'}")
    gateway = start_gateway(target, "--listen=127.0.0.1:0", f"--health-listen=127.0.0.1:{health_port}", *tls)
    try:
        assert f"health on 127.0.0.1:{health_port} (plaintext)" in gateway.output()
        wait_for_health(f"127.0.0.1:{health_port}", health_pb2.HealthCheckResponse.SERVING, service="")
        ok = _healthcheck(f"--health-listen=127.0.0.1:{health_port}", *tls)
        assert (ok.returncode, ok.stdout) == (0, f"127.0.0.1:{health_port}: SERVING\n"), ok.stderr
        refused = _healthcheck(f"--listen={gateway.target}", *tls)  # no health port: it will not guess
        assert refused.returncode == 1 and "set health_listen" in refused.stderr
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:  # health alone, nothing else
            with pytest.raises(grpc.RpcError) as error:
                pb_grpc.SegmentationServiceStub(channel).SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=5)
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        gateway.stop()
    down = _healthcheck(f"--health-listen=127.0.0.1:{health_port}")
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr
