"""grpc.health.v1, following the models at their backends.

The service as a whole ("" and SegmentationService's full name) is SERVING while the default model has an
AVAILABLE version at its backend; each model also has its own name, `SegmentationService/<model>`, following
its own backend. Statuses come from GetModelStatus, polled.
"""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2

from service.backends import VersionState, VersionStatus
from service.config import ModelConfig
from service.errors import GatewayError
from service.metrics import Metrics
from service.routing import Router

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def model_health_name(service: str, model: str) -> str:
    """The health service name of one model, e.g. segmentation.v1.SegmentationService/deeplab-lite."""
    return f"{service}/{model}"


def serves(model: ModelConfig, versions: list[VersionStatus]) -> bool:
    """Whether the version the model is routed to by default is AVAILABLE."""
    available = [v.version for v in versions if v.state == VersionState.AVAILABLE]
    return model.version in available if model.version is not None else bool(available)


class HealthPoller:
    """Polls GetModelStatus for every model and publishes the results."""

    def __init__(self, router: Router, service: str, interval_s: float, metrics: Metrics) -> None:
        self.servicer = health.aio.HealthServicer()
        self.router = router
        self._metrics = metrics
        self._service = service
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._serving: dict[str, bool] = {}

    async def use(self, router: Router) -> None:
        """Follows the models of a new configuration; a removed model's name stays, NOT_SERVING."""
        self.router = router
        kept = {name for model in router.models.values() for name in self._names(model)}
        for name in [name for name in self._serving if name not in kept]:
            log.info("health of %r: NOT_SERVING (the model was removed from the configuration)", name)
            self._serving.pop(name)
            await self.servicer.set(name, NOT_SERVING)
        await self.check_once()

    def _names(self, model: ModelConfig) -> tuple[str, ...]:
        own = model_health_name(self._service, model.name)
        return ("", self._service, own) if model is self.router.default else (own,)

    async def _publish(self, model: ModelConfig, serving: bool, why: str) -> None:
        for name in self._names(model):
            if self._serving.get(name) != serving:
                log.info("health of %r: %s (%s)", name, "SERVING" if serving else "NOT_SERVING", why)
            self._serving[name] = serving
            await self.servicer.set(name, SERVING if serving else NOT_SERVING)

    async def _check(self, model: ModelConfig) -> bool:
        backend = self.router.backend_of(model)
        up = self._metrics.backend_up.labels(backend.name, backend.target)
        try:
            versions = await backend.model_status(model.name_at_backend, timeout=max(self._interval_s, 1.0))
        except GatewayError as exc:
            up.set(0)
            await self._publish(model, False, exc.message)
            return False
        up.set(1)
        serving = serves(model, versions)
        available = [v.version for v in versions if v.state == VersionState.AVAILABLE]
        await self._publish(model, serving, f"{model.name_at_backend!r} at {backend.name}: AVAILABLE {available}")
        return serving

    async def check_once(self) -> bool:
        """Checks every model; True when the default one serves."""
        models = list(self.router.models.values())
        results = await asyncio.gather(*(self._check(model) for model in models))
        return results[models.index(self.router.default)]

    async def start(self) -> None:
        for model in self.router.models.values():
            await self._publish(model, False, "starting")
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
            await asyncio.gather(self._task, return_exceptions=True)
