"""bench/instant.py, the capacity scenario's model server: the real model server's answers, recorded once per request
and sent back with no model time; a request it has not seen goes upstream."""

from __future__ import annotations

import pathlib
import re

import grpc
import pytest
from grpc_health.v1 import health_pb2

from deploy.local import start_process
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests.helpers import start_gateway, start_modelserver, wait_for_health
from tests.paths import IMAGES, LABELS

INSTANT_READY = re.compile(r"instant model server on [\d.]+:(\d+)")


def test_the_instant_model_server_answers_what_the_model_answered_without_it(servable_base: pathlib.Path) -> None:
    model = start_modelserver("--model_name=deeplab", f"--model_base_path={servable_base}")
    instant = start_process("instant", ["bench.instant", f"--upstream={model.target}"], INSTANT_READY)
    direct = start_gateway(model.target, "--profile=deeplab-257", f"--labels={LABELS}")
    gateway = start_gateway(instant.target, "--profile=deeplab-257", f"--labels={LABELS}")
    try:
        wait_for_health(gateway.target, health_pb2.HealthCheckResponse.SERVING)
        wait_for_health(direct.target, health_pb2.HealthCheckResponse.SERVING)
        photos = sorted(IMAGES.glob("*.png"))[:2]
        requests = [pb.SegmentImageRequest(image=p.read_bytes(), mask_format=pb.MASK_FORMAT_RAW) for p in photos]
        with grpc.insecure_channel(gateway.target) as via, grpc.insecure_channel(direct.target) as straight:
            instant_stub, direct_stub = pb_grpc.SegmentationServiceStub(via), pb_grpc.SegmentationServiceStub(straight)
            expected = direct_stub.SegmentImage(requests[0], timeout=60)
            recorded = instant_stub.SegmentImage(requests[0], timeout=60)
            assert recorded.mask.data == expected.mask.data and len(expected.mask.data) > 0
            model.stop()
            # The model server gone: the recorded answer still comes back, bit for bit; an unseen tensor cannot.
            again = instant_stub.SegmentImage(requests[0], timeout=60)
            assert again.mask.data == expected.mask.data and again.classes == expected.classes
            with pytest.raises(grpc.RpcError) as refused:
                instant_stub.SegmentImage(requests[1], timeout=60)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        for server in (gateway, direct, instant, model):
            server.stop()
