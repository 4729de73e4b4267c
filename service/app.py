"""Assembling the gateway: backends and router, servicer behind its interceptors, health, reflection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import cv2
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.api.interceptors import CallLog, ErrorStatus, InFlight, LoadShedding, RequestIds, log_request_ids
from service.api.servicer import SegmentationServicer
from service.backends.tfserving import TFServingBackend
from service.config import Config
from service.health import HealthPoller
from service.pipeline import Pipeline
from service.routing import Router, connect

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SegmentationService"].full_name
# Room for an image at the byte limit plus the request's other fields; the limit itself is checked by the
# pipeline so that the caller gets INVALID_ARGUMENT naming it. Far larger messages are cut off by gRPC.
_MESSAGE_SLACK = 1 << 20


@dataclass
class Gateway:
    server: grpc.aio.Server
    port: int
    router: Router
    health: HealthPoller

    async def start(self) -> None:
        await self.server.start()
        await self.health.start()

    async def stop(self, grace_s: float) -> None:
        await self.health.shutdown()
        await self.server.stop(grace_s)
        await asyncio.gather(*(backend.close() for backend in self.router.backends.values()))


def create_gateway(config: Config, router: Router | None = None) -> Gateway:
    """A bound, not yet started gateway; `port` is the one bound (useful with port 0).

    `router` replaces the TF Serving backends the config names (tests pass one over fake backends).
    """
    # Each image is small work; OpenCV's worker threads would only spin on cores the model server needs.
    cv2.setNumThreads(0)
    log_request_ids()
    router = router or connect(config, TFServingBackend)
    receive_limit = 2 * config.limits.max_image_bytes + _MESSAGE_SLACK
    server = grpc.aio.server(
        # Outermost first: the request id is set before anything logs; the log line sees the final status.
        interceptors=[RequestIds(), CallLog(), ErrorStatus(), LoadShedding(InFlight(config.max_concurrent_calls))],
        options=[
            ("grpc.max_receive_message_length", receive_limit),
            ("grpc.max_send_message_length", 1 << 30),
        ],
    )
    pipeline = Pipeline(config.limits, config.predict_timeout_s)
    servicer = SegmentationServicer(router, pipeline, config.stream_window)
    pb_grpc.add_SegmentationServiceServicer_to_server(servicer, server)
    health = HealthPoller(router, SERVICE_NAME, config.health_poll_s)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(config.listen)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    return Gateway(server, port, router, health)
