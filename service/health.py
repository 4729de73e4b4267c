"""grpc.health.v1: SERVING only while the backend reports the default model AVAILABLE."""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2

from service.errors import GatewayError
from service.predict import Backend

log = logging.getLogger("service")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
AVAILABLE = 30  # tensorflow.serving.ModelVersionStatus.State.AVAILABLE


class HealthPoller:
    """Polls GetModelStatus for the default model and publishes the result for every service name."""

    def __init__(self, backend: Backend, model_name: str, services: tuple[str, ...], interval_s: float) -> None:
        self.servicer = health.aio.HealthServicer()
        self._backend = backend
        self._model_name = model_name
        self._services = ("", *services)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._serving: bool | None = None

    async def _publish(self, serving: bool, why: str) -> None:
        if serving != self._serving:
            log.info("health: %s (%s)", "SERVING" if serving else "NOT_SERVING", why)
        self._serving = serving
        for service in self._services:
            await self.servicer.set(service, SERVING if serving else NOT_SERVING)

    async def check_once(self) -> bool:
        try:
            status = await self._backend.model_status(self._model_name, timeout=max(self._interval_s, 1.0))
        except GatewayError as exc:
            await self._publish(False, exc.message)
            return False
        available = [s.version for s in status.model_version_status if s.state == AVAILABLE]
        why = f"model {self._model_name!r} versions {available} AVAILABLE" if available else "no version AVAILABLE"
        await self._publish(bool(available), why)
        return bool(available)

    async def start(self) -> None:
        await self._publish(False, "starting")
        self._task = asyncio.create_task(self._run(), name="health-poller")

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:  # the poller must outlive any surprise; the log has the details
                log.exception("health check failed unexpectedly")
            await asyncio.sleep(self._interval_s)

    async def shutdown(self) -> None:
        """NOT_SERVING for good: load balancers stop sending calls while the in-flight ones drain."""
        await self.servicer.enter_graceful_shutdown()
        if self._task is not None:
            self._task.cancel()
