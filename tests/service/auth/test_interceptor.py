"""service/auth/interceptor.py in-process: bearer tokens guard the API and leave health open."""

from __future__ import annotations

import pathlib
import time
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from tests import images
from tests.inprocess import running, two_model_config

IMAGE = images.png("chelsea.png")


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
