"""Assembling the gateway: backends and router, servicer behind its interceptors, health, reflection."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import cv2
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from segmentation.v1 import segmentation_service_pb2 as pb
from service import tracing
from service.admission import Bodies, Places, Quotas
from service.api import requests
from service.api.interceptors import (
    CallLog,
    ErrorStatus,
    LoadShedding,
    RequestIds,
    StreamWrites,
    Tracing,
)
from service.api.receive import ReceiveLater
from service.api.servicer import SegmentationServicer
from service.auth.credentials import Credentials
from service.auth.files import CredentialFileError
from service.auth.interceptor import Identification
from service.auth.jwt_tokens import JwtSettings
from service.backends import Backend
from service.backends import make_backend as make_backend_of_kind
from service.config import BackendConfig, Config, ConfigError
from service.health import HealthPoller
from service.logs import log_request_ids
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.profiles import Profile
from service.routing import Router, connect
from service.shadow import ShadowRunner
from service.tls import server_credentials
from service.workers import FairWorkers

if TYPE_CHECKING:
    from service.http_server import HttpServer

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SegmentationService"].full_name
# What one client can make the server hold, whatever it does: streams per connection, and fixed HTTP/2 flow-control
# windows (no BDP growth), so a call whose message is not read yet (it waits for its place) buffers at most one
# window; gRPC grows it to the message's size once the message is asked for. Metadata beyond 16 KiB is refused by
# gRPC itself. A client that pings more often than every 10 s without calls is sent away (gRPC's own defaults
# allow every 5 minutes; a load balancer's keepalive is about 20-60 s), as is one that does not answer the
# server's pings within 20 s.
BOUNDED_TRANSPORT = (
    ("grpc.max_concurrent_streams", 32),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 64 << 10),
    ("grpc.max_metadata_size", 16 << 10),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.http2.ping_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
)
# A request's fields besides its image (model selector, options, a stream item's id): far less than this. A message
# above the image limit by more is refused by gRPC as soon as its length is read (RESOURCE_EXHAUSTED); one within
# it is read, and an image above the limit gets INVALID_ARGUMENT naming it.
MESSAGE_OVERHEAD = 64 << 10
# gRPC's own limit on calls at once counts every call: health checks and reflection streams too. The service's
# calls have theirs (max_concurrent_rpcs, counted by LoadShedding with a clearer answer); these are the others'.
OTHER_CALLS = 64


@dataclass
class Gateway:
    server: grpc.aio.Server
    port: int
    servicer: SegmentationServicer
    health: HealthPoller
    shadows: ShadowRunner
    config: Config
    make_backend: Callable[[BackendConfig], Backend]
    metrics: Metrics
    metrics_port: int = 0
    http: HttpServer | None = None  # --http-listen
    health_server: grpc.aio.Server | None = None  # --health-listen
    health_port: int = 0
    _stop_metrics: Callable[[], None] | None = None
    _retiring: dict[asyncio.Task[None], Backend] = field(default_factory=dict)
    # Routers replaced by a reload whose calls have not all ended.
    _old_routers: list[Router] = field(default_factory=list)
    # Each backend's TLS files as its channel read them.
    _tls_files: dict[str, tuple[tuple[int, int] | None, ...]] = field(default_factory=dict)
    # The models whose approximate answers the log has told of, with the profile that makes them so.
    _told_approximate: set[tuple[str, Profile]] = field(default_factory=set)

    @property
    def router(self) -> Router:
        return self.servicer.router

    def _tell_approximate(self) -> None:
        """Logs, once for each, the models whose answers at the photo's size are not the model's own, and why."""
        for model in self.router.models.values():
            for each in (model, *model.variant_models):
                reasons = each.profile.approximations
                if each.profile.detect or not reasons or (each.name, each.profile) in self._told_approximate:
                    continue
                self._told_approximate.add((each.name, each.profile))
                log.warning(
                    "model %r (%r at %s): answers at the photo's size are approximate: %s (docs/performance.md)",
                    each.name, each.name_at_backend, each.backend, "; ".join(reasons),
                )  # fmt: skip

    async def follow_read_profiles(self) -> None:
        """Routes by the profiles the health poller has read from servables: the configuration applied again."""
        await self.apply(self.config)

    async def start(self) -> None:
        self.health.on_profiles_read = self.follow_read_profiles
        self._tell_approximate()
        await self.health.start()  # NOT_SERVING from the first call on, until the backend says otherwise
        if self.config.metrics_listen:
            try:
                self.metrics_port, self._stop_metrics = self.metrics.serve(self.config.metrics_listen)
            except OSError as exc:
                raise OSError(f"cannot serve metrics on {self.config.metrics_listen}: {exc.strerror}") from exc
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        if self.http is not None:
            await self.http.start()

    async def apply(self, config: Config) -> None:
        """Routes new calls by `config`'s backends and models; calls in flight finish on the routes they have.

        A backend whose settings are unchanged keeps its channel; a new or changed one gets a new channel, and a
        replaced channel is closed once no call or shadow request that may use it is left.
        Server settings apply at start only: a change to them is logged as needing a restart.
        """
        old = self.router
        previous = {backend.name: backend for backend in self.config.backends}
        # Unchanged: the same settings, and TLS files as they were when its channel was made (a renewed
        # certificate at the same path needs a new channel, which reads it).
        backends = {
            b.name: old.backends[b.name]
            if previous.get(b.name) == b and self._tls_files.get(b.name) == tls_files(b)
            else self.make_backend(b)
            for b in config.backends
        }
        self._tls_files = {b.name: tls_files(b) for b in config.backends}
        router = Router(config, backends, read_profiles=self.health.read_profiles)
        self.servicer.router = router
        self._tell_approximate()
        self._old_routers = [r for r in (*self._old_routers, old) if r.calls > 0]
        self.shadows.keep_only({(m.name, m.shadow.variant) for m in config.models if m.shadow})
        await self.health.use(router)
        for name, backend in old.backends.items():
            if backends.get(name) is not backend:
                self._retire(backend)
        fixed = [f.name for f in fields(Config) if f.name not in _RELOADED]
        restart = [name for name in fixed if getattr(self.config, name) != getattr(config, name)]
        if restart:
            log.warning("config: %s changed; the change applies at the next restart", ", ".join(restart))
        self.config = replace(self.config, **{name: getattr(config, name) for name in _RELOADED})

    def _calls_open(self) -> int:
        """Calls in the servicer (they hold a router), on the current configuration or a replaced one."""
        return self.router.calls + sum(router.calls for router in self._old_routers)

    def _in_use(self, backend: Backend) -> bool:
        """Whether a call or shadow request may still use `backend` (routed before a reload replaced it)."""
        self._old_routers = [r for r in self._old_routers if r.calls > 0]
        in_routers = any(backend is b for r in (self.router, *self._old_routers) for b in r.backends.values())
        return in_routers or self.shadows.uses(backend)

    def _retire(self, backend: Backend) -> None:
        async def close_when_unused() -> None:
            while self._in_use(backend):
                await asyncio.sleep(_RETIRE_CHECK_S)
            await backend.close()
            log.info("backend %s (%s): old channel closed, no call uses it any more", backend.name, backend.target)

        task = asyncio.create_task(close_when_unused(), name=f"retire-{backend.name}")
        self._retiring[task] = backend
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def stop(self, grace_s: float) -> None:
        await self.health.shutdown()
        grpc_servers = [server for server in (self.server, self.health_server) if server is not None]
        stopping = [asyncio.create_task(server.stop(grace_s)) for server in grpc_servers]
        if self.http is not None:
            stopping.append(asyncio.create_task(self.http.stop(grace_s)))
        # The servers take no new calls now. Once the calls that use the router (everything but health and
        # reflection) have ended, what is left open is health watches and reflection streams: they are ended
        # then, or they would hold the process for the whole grace period.
        deadline = asyncio.get_running_loop().time() + grace_s
        await asyncio.sleep(_SETTLE_S)  # calls accepted just before the stop reach the servicer
        while self._calls_open() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(_SETTLE_S)
        await asyncio.gather(*(server.stop(0) for server in grpc_servers))
        await asyncio.gather(*stopping)
        await self.shadows.close()
        # Once the server has stopped, no call is left on any channel, retiring ones included.
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        backends = [*self.router.backends.values(), *(backend for _, backend in retiring)]
        await asyncio.gather(*(backend.close() for backend in backends))
        if self._stop_metrics is not None:
            await asyncio.to_thread(self._stop_metrics)


# How often a replaced backend checks whether its last call has ended.
_RETIRE_CHECK_S = 0.1
# At a stop: how long a call accepted just before it may take to reach the servicer, and how often to look.
_SETTLE_S = 0.1
# What a reload changes; the rest of a Config is fixed at start.
_RELOADED = ("backends", "models", "default_model", "source")


def tls_files(backend: BackendConfig) -> tuple[tuple[int, int] | None, ...]:
    """What changes when a backend's CA, certificate or key file is rewritten: modification time and size."""

    def stamp(path: str) -> tuple[int, int] | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    return tuple(stamp(path) if path else None for path in (backend.ca, backend.cert, backend.key))


def create_gateway(config: Config, make_backend: Callable[[BackendConfig], Backend] = make_backend_of_kind) -> Gateway:
    """A bound, not yet started gateway; `port` is the one bound (useful with port 0).

    `make_backend` makes a backend for each configured one (tests pass fakes).
    """
    # Each image is small work; OpenCV's worker threads would only spin on cores the model server needs.
    cv2.setNumThreads(0)
    log_request_ids()
    metrics = Metrics()
    router = connect(config, make_backend)
    receive_limit = config.limits.max_image_bytes + MESSAGE_OVERHEAD
    try:
        credentials = Credentials(
            tokens=config.auth_tokens,
            jwt=jwt_settings(config),
            certificates=config.auth_certificates,
            client_certificates=bool(config.tls_client_ca),
        )
    except CredentialFileError as exc:
        raise ConfigError(str(exc)) from exc
    # Outermost first: the request id is set before anything logs; the log line sees the final status.
    # ReceiveLater and StreamWrites first: they turn handlers into kinds of their own, which nothing outside expects.
    interceptors: list[grpc.aio.ServerInterceptor] = [
        StreamWrites(config.stream_write_timeout_s),
        RequestIds(),
        CallLog(metrics),
    ]
    if tracing.on():
        interceptors.append(Tracing())
    interceptors += [
        ErrorStatus(),
        Identification(credentials, config.proxies, protect_health=config.auth_health),
        LoadShedding(Quotas(config.max_calls_per_caller), metrics, config.max_concurrent_rpcs, config.max_queue_wait_s),
    ]
    server = grpc.aio.server(
        interceptors=[ReceiveLater(config.read_timeout_s), *interceptors],
        options=[
            ("grpc.max_receive_message_length", receive_limit),
            ("grpc.max_send_message_length", 1 << 30),
            ("grpc.max_connection_idle_ms", round(config.max_connection_idle_s * 1000)),
            ("grpc.max_connection_age_ms", round(config.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", round(config.shutdown_grace_s * 1000)),
            *BOUNDED_TRANSPORT,
        ],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs + OTHER_CALLS,
    )
    shadows = ShadowRunner(config.max_shadow_in_flight, config.predict_timeout_s)
    metrics.watch_shadows(shadows)
    # Image work runs on these; more threads than cores would only queue on the GIL-free parts and hold memory.
    pipeline = Pipeline(config.limits, config.predict_timeout_s, shadows, FairWorkers(config.workers))
    places = Places(config.max_concurrent_calls, config.max_queue_wait_s)
    metrics.watch_places(places)
    servicer = SegmentationServicer(router, pipeline, config.stream_window, metrics, places)
    requests.add_to_server(servicer, server)
    health = HealthPoller(router, SERVICE_NAME, config.health_poll_s, metrics)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    if config.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
        )
    port = _listen(server, config.listen, server_credentials(config) if config.tls_cert else None)
    health_server, health_port = None, 0
    if config.health_listen:
        # The same HealthServicer: a probe here sees what clients of the main port see.
        health_server = grpc.aio.server(options=BOUNDED_TRANSPORT)
        health_pb2_grpc.add_HealthServicer_to_server(health.servicer, health_server)
        health_port = _listen(health_server, config.health_listen, None)
    http = None
    if config.http_listen:
        # Imported only when asked for: connectrpc, uvicorn and Starlette cost 13 MB and 0.1 s at start.
        from service.http_server import HttpApp, HttpServer  # noqa: PLC0415

        # The same servicer behind the same interceptors: one set of places and quotas, credentials, call log and
        # metrics. Connect reads a request's body whole before the servicer runs, so bodies are bounded apart: by
        # their bytes at once (a quarter of the places' worth of largest images, at least two of the largest
        # bodies), and by requests and connections at once (the places and as many again, at least a browser's
        # six and some).
        # A body carries the image as it is (Connect's binary, gRPC-Web) or in base64 (JSON): 4/3 its size.
        body_limit = -(-4 * config.limits.max_image_bytes // 3) + MESSAGE_OVERHEAD
        bodies = Bodies(max(2 * body_limit, config.max_concurrent_calls * config.limits.max_image_bytes // 4))
        app = HttpApp(
            servicer,
            interceptors,
            read_max_bytes=body_limit,
            read_timeout_s=config.read_timeout_s,
            bodies=bodies,
            max_wait_s=config.max_queue_wait_s,
        )
        http = HttpServer(app, config, max_concurrency=max(2 * config.max_concurrent_calls, 16))
    return Gateway(
        server,
        port,
        servicer,
        health,
        shadows,
        config,
        make_backend,
        metrics,
        http=http,
        health_server=health_server,
        health_port=health_port,
        _tls_files={backend.name: tls_files(backend) for backend in config.backends},
    )


def jwt_settings(config: Config) -> JwtSettings | None:
    if not config.auth_jwks:
        return None
    return JwtSettings(
        jwks=config.auth_jwks,
        issuer=config.auth_jwt_issuer,
        audience=config.auth_jwt_audience,
        tenant_claim=config.auth_jwt_tenant_claim,
        scope_claim=config.auth_jwt_scope_claim,
    )


def _listen(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """The port bound at `address`, with TLS when `credentials` are given."""
    try:
        if credentials is not None:
            return server.add_secure_port(address, credentials)
        return server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio's word for a bad address or a port in use
        raise OSError(f"cannot listen on {address}: {exc}") from exc
