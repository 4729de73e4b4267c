"""The gateway when things go wrong around it: backend down and back, shutdown, overload."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests import images
from tests.helpers import SERVICE, ServerProcess, free_port, start_gateway, start_modelserver, wait_for_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_backend_down_gives_unavailable_fast_and_recovers_without_a_gateway_restart(
    servable_base: pathlib.Path,
) -> None:
    port = free_port()
    flags = ("--model_name=deeplab", f"--model_base_path={servable_base}")
    backend = start_modelserver(*flags, port=port)
    gateway = start_gateway(backend.target)
    try:
        wait_for_health(gateway.target, SERVING)
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            data = images.jpeg("chelsea.png")
            assert stub.SegmentImage(pb.SegmentImageRequest(image=data), timeout=30).classes

            assert backend.stop() == 0
            start = time.perf_counter()
            with pytest.raises(grpc.RpcError) as info:
                stub.SegmentImage(pb.SegmentImageRequest(image=data), timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "model backend" in info.value.details() and "unavailable" in info.value.details()
            assert time.perf_counter() - start < 2.0
            assert wait_for_health(gateway.target, NOT_SERVING, timeout=5) < 5
            models = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
            assert models[0].backend_error and not models[0].versions

            backend = start_modelserver(*flags, port=port)
            assert wait_for_health(gateway.target, SERVING, timeout=10) < 10
            assert stub.SegmentImage(pb.SegmentImageRequest(image=data), timeout=30).classes
    finally:
        backend.stop()
        assert gateway.stop() == 0, gateway.output()


@pytest.fixture
def private_gateway(modelserver: ServerProcess) -> ServerProcess:
    gateway = start_gateway(modelserver.target, "--shutdown-grace=20")
    wait_for_health(gateway.target, SERVING)
    return gateway


def test_sigterm_flips_health_then_drains_in_flight_calls(private_gateway: ServerProcess) -> None:
    gateway = private_gateway
    seen: list[int] = []
    with grpc.insecure_channel(gateway.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=60)

        def follow() -> None:
            try:
                for update in watch:
                    seen.append(update.status)
            except grpc.RpcError:
                pass

        watcher = threading.Thread(target=follow)
        watcher.start()
        stub = pb_grpc.SegmentationServiceStub(channel)
        slow = images.large_jpeg("astronaut.png", 4000, 3000)
        with ThreadPoolExecutor(max_workers=4) as pool:
            calls = [
                pool.submit(stub.SegmentImage, pb.SegmentImageRequest(image=slow, mask_format=pb.MASK_FORMAT_RLE), 60)
                for _ in range(4)
            ]
            time.sleep(0.3)  # the calls are in flight
            gateway.process.send_signal(signal.SIGTERM)
            results = [call.result() for call in calls]
        assert all(r.mask.width == 4000 for r in results)
        assert gateway.process.wait(timeout=30) == 0
        watcher.join(timeout=10)
    assert seen[0] == SERVING and NOT_SERVING in seen, seen
    gateway.stop()


def test_overload_is_resource_exhausted(modelserver: ServerProcess) -> None:
    gateway = start_gateway(modelserver.target, "--max-concurrent-calls=1", "--max-queue-wait=0.05")
    try:
        wait_for_health(gateway.target, SERVING)
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            data = images.large_jpeg("chelsea.png", 2000, 1500)

            def call(_: int) -> grpc.StatusCode:
                try:
                    stub.SegmentImage(pb.SegmentImageRequest(image=data), timeout=60)
                    return grpc.StatusCode.OK
                except grpc.RpcError as error:
                    assert "1 places for images in progress stayed taken for 0.05 s" in error.details()
                    return error.code()

            with ThreadPoolExecutor(max_workers=6) as pool:
                codes = list(pool.map(call, range(6)))
        assert grpc.StatusCode.OK in codes
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    finally:
        assert gateway.stop() == 0


def test_bad_configuration_fails_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--stream-window=0"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "service: error: --stream-window='0': must be positive"
