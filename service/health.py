"""grpc.health.v1, following the models at their backends.

The service as a whole ("" and SegmentationService's full name) is SERVING while the default model has an
AVAILABLE version at its backend; each model also has its own name, `SegmentationService/<model>`, following
its own backend. Statuses come from the backend's model status (GetModelStatus, ModelReady), polled. Where the
backend describes the model's tensors (the Open Inference Protocol's ModelMetadata), they are checked against the
model's profile whenever its available versions change: a model that does not fit stays NOT_SERVING, and the log
says why in one line. A model that leaves its profile to the gateway (`auto`) has it read from the same description
(service/profile_detection.py) as its versions become available, and stays NOT_SERVING until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2

from service.backends import VersionState, VersionStatus
from service.config import ModelConfig
from service.errors import BackendUnavailable, DeadlineExceeded, GatewayError
from service.metrics import Metrics
from service.model_check import mismatch
from service.profile_detection import read_profile
from service.profiles import Profile
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


Status = list[VersionStatus] | GatewayError


def reachable(status: Status) -> bool:
    """Whether the backend answered: an error about the model (not served, say) still means it is up."""
    return not isinstance(status, BackendUnavailable | DeadlineExceeded)


class HealthServicer(health.aio.HealthServicer):
    """grpc-health's servicer, but a check of a service it has no status for says how the names go: its own answer
    is NOT_FOUND with no message, which leaves a caller guessing at a typo. The models' names are not listed: health
    answers callers who may not list the models."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service
        self._names = {""}

    async def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        self._names.add(service)
        await super().set(service, status)

    async def Check(  # noqa: N802 (the generated servicer's name)
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in self._names:
            names = f"'' and {self._service!r} (the service), {model_health_name(self._service, '<model>')!r}"
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no health status for service {request.service!r}; there is one for {names}"
            )
        return await super().Check(request, context)


class HealthPoller:
    """Polls GetModelStatus for every model (and its variants) and publishes the results and backend_up."""

    def __init__(
        self,
        router: Router,
        service: str,
        interval_s: float,
        metrics: Metrics,
    ) -> None:
        self.servicer = HealthServicer(service)
        self.router = router
        self._metrics = metrics
        self._service = service
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._serving: dict[str, bool] = {}
        self._backends_seen: set[tuple[str, str, str]] = set()  # backend_up's label values
        self._models_published: set[str] = set()  # model_serving's
        # The tensor check's verdict (None: the model fits) for a model as configured, by its available versions.
        self._checked: dict[tuple[ModelConfig, tuple[int, ...]], str | None] = {}
        # Profiles read from servables (routing.ReadProfiles), the available versions each was read at, and what
        # to call when one changes (the gateway routes by them from then on).
        self.read_profiles: dict[tuple[str, str], Profile] = {}
        self._profiles_read_at: dict[tuple[str, str], tuple[int, ...]] = {}
        self.on_profiles_read: Callable[[], Awaitable[None]] | None = None

    async def use(self, router: Router) -> None:
        """Follows the models of a new configuration; a removed model's name stays, NOT_SERVING."""
        self.router = router
        kept = {name for model in router.models.values() for name in self._names(router, model)}
        for name in [name for name in self._serving if name not in kept]:
            log.info("health of %r: NOT_SERVING (the model was removed from the configuration)", name)
            self._serving.pop(name)
            await self.servicer.set(name, NOT_SERVING)
        for removed in self._models_published - set(router.models):
            self._metrics.model_serving.remove(removed)
        self._models_published &= set(router.models)
        configured = {(backend.name, backend.target, backend.kind) for backend in router.backends.values()}
        for labels in self._backends_seen - configured:
            self._metrics.backend_up.remove(*labels)
        self._backends_seen &= configured
        await self.check_once()

    def _names(self, router: Router, model: ModelConfig) -> tuple[str, ...]:
        own = model_health_name(self._service, model.name)
        return ("", self._service, own) if model is router.default else (own,)

    async def _publish(self, router: Router, model: ModelConfig, serving: bool, why: str) -> None:
        for name in self._names(router, model):
            if self._serving.get(name) != serving:
                log.info("health of %r: %s (%s)", name, "SERVING" if serving else "NOT_SERVING", why)
            self._serving[name] = serving
            await self.servicer.set(name, SERVING if serving else NOT_SERVING)
        self._metrics.model_serving.labels(model.name).set(1 if serving else 0)
        self._models_published.add(model.name)

    async def _status(self, router: Router, backend: str, served_name: str) -> Status:
        try:
            return await router.backends[backend].model_status(served_name, timeout=max(self._interval_s, 1.0))
        except GatewayError as exc:
            return exc

    async def check_once(self) -> bool:
        """Checks every model; True when the default one serves."""
        router = self.router
        models = list(router.models.values())
        # Each (backend, served model) once: the models, and the variants' own backends and served models.
        asked = list(
            dict.fromkeys((m.backend, m.name_at_backend) for model in models for m in (model, *model.variant_models))
        )
        answers = await asyncio.gather(*(self._status(router, *key) for key in asked))
        statuses = dict(zip(asked, answers, strict=True))
        if router is not self.router:
            # A reload swapped the configuration while we asked; its own check publishes what holds now.
            return self._serving.get("", False)
        if await self._read_profiles(router, statuses) and self.on_profiles_read is not None:
            await self.on_profiles_read()  # a new router, whose own check publishes what holds now
            return self._serving.get("", False)
        for name, backend in router.backends.items():
            answered = [reachable(status) for (at, _), status in statuses.items() if at == name]
            if answered:
                self._backends_seen.add((name, backend.target, backend.kind))
                self._metrics.backend_up.labels(name, backend.target, backend.kind).set(1 if any(answered) else 0)
        default_serves = False
        for model in models:
            status = statuses[(model.backend, model.name_at_backend)]
            if isinstance(status, GatewayError):
                serving, why = False, status.for_log
            else:
                serving = serves(model, status)
                available = [v.version for v in status if v.state == VersionState.AVAILABLE]
                why = f"{model.name_at_backend!r} at {model.backend}: AVAILABLE {available}"
                problem = await self._tensors_problem(router, model, tuple(available)) if serving else None
                if problem:
                    serving, why = False, problem
                elif serving and model.profile.detect:
                    serving, why = False, "its profile is not read from its servable yet"
            await self._publish(router, model, serving, why)
            default_serves = default_serves or (serving and model is router.default)
        return default_serves

    async def _read_profiles(self, router: Router, statuses: dict[tuple[str, str], Status]) -> bool:
        """Reads the profile of each servable that a model leaves its profile to, once a version of it is available
        and again when its available versions change; True when one is not what it was."""
        changed = False
        configured = (m for model in router.config.models for m in (model, *model.variant_models))
        for key in dict.fromkeys((m.backend, m.name_at_backend) for m in configured if m.reads_profile):
            status = statuses.get(key)
            available = (
                tuple(v.version for v in status if v.state == VersionState.AVAILABLE)
                if isinstance(status, list)
                else ()
            )
            if not available or self._profiles_read_at.get(key) == available:
                continue
            backend, served = key
            try:
                found = await read_profile(router.backends[backend], served, timeout=max(self._interval_s, 1.0))
            except GatewayError as exc:
                log.warning("the profile of %r at %s is not read yet: %s", served, backend, exc.message)
                continue  # asked again at the next check
            self._profiles_read_at[key] = available
            if self.read_profiles.get(key) == found.profile:
                continue
            self.read_profiles[key] = found.profile
            changed = True
            log.info("profile of %r at %s, read from the servable: %s", served, backend, found.why)
        return changed

    async def _tensors_problem(self, router: Router, model: ModelConfig, available: tuple[int, ...]) -> str | None:
        """Why the model's tensors at its backend do not fit its profile, if they do not (asked once per change
        of its available versions)."""
        key = (model, available)
        if key not in self._checked:
            backend = router.backends[model.backend]
            try:
                signatures = await backend.signatures(model.name_at_backend, timeout=max(self._interval_s, 1.0))
            except GatewayError as exc:
                return exc.message  # asked again at the next check
            problem = mismatch(model, signatures) if signatures is not None and not model.profile.detect else None
            if problem:
                log.error("%s", problem)
            self._checked[key] = problem
        return self._checked[key]

    async def start(self) -> None:
        """Publishes NOT_SERVING, then checks once before returning (so that the profiles the servables describe are
        read before the first call where their backends answer), then every interval."""
        for model in self.router.models.values():
            await self._publish(self.router, model, False, "starting")
        await self._check()
        self._task = asyncio.create_task(self._run(), name="health-poller")

    async def _check(self) -> None:
        try:
            await self.check_once()
        except Exception:  # the poller must outlive any surprise; the log has the details
            log.exception("health check failed unexpectedly")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._check()

    async def shutdown(self) -> None:
        """NOT_SERVING for good: load balancers stop sending calls while the in-flight ones drain."""
        await self.servicer.enter_graceful_shutdown()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
