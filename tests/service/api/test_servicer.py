"""The gRPC face in-process over fake backends: interceptors (request ids, call log, shedding), ListModels, health."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from tests import images
from tests.helpers import SERVICE, wait_for_health
from tests.inprocess import running, two_model_config


def test_request_id_is_the_caller_s_or_a_new_one_and_comes_back_in_the_metadata(caplog) -> None:
    config, backends = two_model_config()
    request = pb.SegmentImageRequest(image=images.png("chelsea.png"))
    with running(config, backends) as served, caplog.at_level(logging.INFO, logger="service"):
        stub = served.stub
        _, call = stub.SegmentImage.with_call(request, metadata=(("x-request-id", "abc-123"),), timeout=10)
        assert ("x-request-id", "abc-123") in call.initial_metadata()
        _, call = stub.SegmentImage.with_call(request, timeout=10)
        generated = dict(call.initial_metadata())["x-request-id"]
        assert len(generated) == 32 and int(generated, 16) >= 0
        with pytest.raises(grpc.RpcError) as error:
            stub.SegmentImage(pb.SegmentImageRequest(image=b"nope"), metadata=(("x-request-id", "bad-1"),), timeout=10)
        # An error is a trailers-only response: its one set of headers is what gRPC calls trailing metadata.
        assert ("x-request-id", "bad-1") in error.value.trailing_metadata()
        # The status reaches the client as the server's handler unwinds, just before its log line.
        deadline = time.monotonic() + 5
        while len(call_lines := [r for r in caplog.records if r.name == "service.api.interceptors"]) < 3:
            assert time.monotonic() < deadline, call_lines
            time.sleep(0.01)
    lines = [(r.request_id, r.getMessage()) for r in call_lines]
    assert [line[0] for line in lines] == ["abc-123", generated, "bad-1"]
    assert lines[0][1].startswith("SegmentImage OK bytes=") and lines[2][1].startswith("SegmentImage INVALID_ARGUMENT")


def test_a_stream_s_request_id_comes_back_and_its_items_reach_the_backend_with_it() -> None:
    config, backends = two_model_config()
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=images.png("chelsea.png")))
    with running(config, backends) as served:
        answers = served.stub.SegmentImageStream(iter([item, item]), metadata=(("x-request-id", "stream-7"),))
        assert ("x-request-id", "stream-7") in answers.initial_metadata()
        assert len(list(answers)) == 2
    assert [call.request_id for call in backends["a"].calls] == ["stream-7", "stream-7"]


def test_stream_items_wait_for_a_place_and_a_call_waits_at_most_max_queue_wait_then_gets_a_hint() -> None:
    config, backends = two_model_config(max_concurrent_calls=2, stream_window=4, max_queue_wait_s=0.2)
    backends["a"].delay_s = 0.5
    image = images.png("chelsea.png")
    items = [pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=image), id=str(i)) for i in range(4)]
    with running(config, backends) as served, ThreadPoolExecutor(1) as pool:
        stub = served.stub
        streamed = pool.submit(lambda: list(stub.SegmentImageStream(iter(items), timeout=30)))
        time.sleep(0.25)  # two items are at the backend, the others wait for a place
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            stub.SegmentImage(pb.SegmentImageRequest(image=image), timeout=10)
        assert 0.2 <= time.monotonic() - start < 2
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "places for images in progress stayed taken for 0.2 s (max_queue_wait)" in error.value.details()
        hint = dict(error.value.trailing_metadata())
        assert 100 <= int(hint["grpc-retry-pushback-ms"]) <= 10_000 and int(hint["retry-after"]) >= 1
        # The stream's items waited instead of failing.
        answers = streamed.result(30)
        assert [a.id for a in answers] == ["0", "1", "2", "3"] and all(a.HasField("result") for a in answers)
        # Every place was given back.
        backends["a"].delay_s = 0
        stub.SegmentImage(pb.SegmentImageRequest(image=image), timeout=10)
        stub.SegmentImage(pb.SegmentImageRequest(image=image), timeout=10)


def test_list_models_shows_every_model_with_its_backend_and_input() -> None:
    config, backends = two_model_config()
    with running(config, backends) as served:
        models = served.stub.ListModels(pb.ListModelsRequest(), timeout=10).models
    assert [(m.name, m.is_default, m.backend, m.served_name) for m in models] == [
        ("deeplab", True, "a", "deeplab"),
        ("deeplab-lite", False, "b", "lite"),
    ]
    assert (models[0].input_size, models[0].input_width, models[0].input_height) == (513, 0, 0)
    assert (models[1].input_size, models[1].input_width, models[1].input_height) == (257, 257, 257)
    assert [(v.version, v.state) for v in models[1].versions] == [(1, pb.MODEL_VERSION_STATE_AVAILABLE)]


def test_each_model_has_its_own_health_and_the_service_follows_the_default() -> None:
    config, backends = two_model_config(health_poll_s=0.1)
    backends["b"].down = True
    with running(config, backends) as served:
        target = served.target
        for name in ("", SERVICE, f"{SERVICE}/deeplab"):
            wait_for_health(target, health_pb2.HealthCheckResponse.SERVING, timeout=10, service=name)
        wait_for_health(
            target, health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10, service=f"{SERVICE}/deeplab-lite"
        )
        backends["b"].down = False
        wait_for_health(target, health_pb2.HealthCheckResponse.SERVING, timeout=10, service=f"{SERVICE}/deeplab-lite")
        backends["a"].down = True
        wait_for_health(target, health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10, service=SERVICE)
        wait_for_health(target, health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10, service="")


def test_calls_past_max_concurrent_rpcs_are_refused_and_health_is_still_answered() -> None:
    config, backends = two_model_config(max_concurrent_rpcs=2)
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=images.png("chelsea.png")))
    release = threading.Event()

    def held() -> Iterator[pb.SegmentImageStreamRequest]:
        yield item
        release.wait(30)

    with running(config, backends) as served:
        streams = [served.stub.SegmentImageStream(held(), timeout=30) for _ in range(2)]
        for stream in streams:
            next(stream)  # both open, each holding its place
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(pb.SegmentImageRequest(image=images.png("chelsea.png")), timeout=10)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "2 calls open, its limit" in error.value.details()
        with pytest.raises(grpc.RpcError) as error:
            list(served.stub.SegmentImageStream(iter([item]), timeout=10))
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with grpc.insecure_channel(served.target) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
        release.set()
        for stream in streams:
            assert list(stream) == []
        assert served.stub.SegmentImage(pb.SegmentImageRequest(image=images.png("chelsea.png")), timeout=10).classes


def test_a_caller_s_quota_holds_back_only_that_caller_and_a_trusted_proxy_s_tenant_header_names_a_caller() -> None:
    # The client here stands for a proxy on loopback that names the tenant of each call (test_security.py: a
    # header from anyone else names nobody).
    config, backends = two_model_config(
        max_calls_per_caller=2, stream_window=4, max_queue_wait_s=0.3, trusted_proxies="127.0.0.1"
    )
    backends["a"].delay_s = 1.5
    image = images.png("chelsea.png")
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=image))
    release = threading.Event()

    def held() -> Iterator[pb.SegmentImageStreamRequest]:
        yield from [item] * 3
        release.wait(30)

    with running(config, backends) as served:
        # Tenant "batch" holds its two images (the stream's third waits for its quota, reading no further).
        stream = served.stub.SegmentImageStream(held(), timeout=30, metadata=[("x-tenant", "batch")])
        time.sleep(0.2)
        request = pb.SegmentImageRequest(image=image)
        # The same tenant waits for its quota, at most max_queue_wait (its images take 1.5 s).
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(request, timeout=10, metadata=[("x-tenant", "batch")])
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this caller already has 2 images in progress or unread (max_calls_per_caller)" in error.value.details()
        # On the same connection, another tenant is not held back.
        assert served.stub.SegmentImage(request, timeout=10, metadata=[("x-tenant", "polite")]).classes
        release.set()
        assert len(list(stream)) == 3
