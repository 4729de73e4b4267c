"""--http-listen: the service over HTTP (Connect, gRPC-Web) and the web page, served by uvicorn on the gateway's loop.

Paths under /segmentation.v1.SegmentationService/ go to connectrpc's ASGI application (api/connect.py); every other
path is the page's static files (service/web/). uvicorn runs as a task on the gateway's own event loop, on a socket
bound when the gateway is created, so that a bad address fails at start as the gRPC one does and port 0 works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator, Sequence

import uvicorn
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from segmentation.v1.segmentation_service_connect import SegmentationServiceASGIApplication
from service.api.connect import ConnectService, Interceptor
from service.api.servicer import SegmentationServicer
from service.config import Config

# The page loads nothing from elsewhere and is never framed; its images are data: URLs and blob: object URLs.
PAGE_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class HttpApp:
    """The ASGI application: the API under the service's path, the page everywhere else."""

    def __init__(
        self, servicer: SegmentationServicer, interceptors: Sequence[Interceptor], read_max_bytes: int
    ) -> None:
        self.api = SegmentationServiceASGIApplication(
            ConnectService(servicer, interceptors),
            # The same limit as gRPC's receive limit: connectrpc refuses a body (or a gRPC-Web frame) as soon as it
            # is past it, without reading the rest.
            read_max_bytes=read_max_bytes,
            # No gzip: the answers are mostly base64 of PNGs, which gzip barely shrinks, and it would run on the
            # event loop that serves every call.
            compressions=(),
            # Unknown JSON fields are refused, as grpcurl does: a misspelt field name is told, not ignored.
            codecs=(google_protobuf_binary_codec(), google_protobuf_json_codec(ignore_unknown_fields=False)),
        )
        # StaticFiles raises its 404s and 405s; the middleware answers them.
        self.page = ExceptionMiddleware(StaticFiles(packages=[("service", "web")], html=True))
        self._api_prefix = self.api.path + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off and no websockets: nothing else arrives
        if scope["path"].startswith(self._api_prefix):
            await self.api(scope, receive, send)  # type: ignore[arg-type]
            return

        async def with_page_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *PAGE_HEADERS]
            await send(message)

        await self.page(scope, receive, with_page_headers)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The gateway handles SIGTERM and SIGINT itself (health first, then both servers drain); uvicorn's handlers
        # would replace its handlers and raise the signal again once uvicorn had stopped.
        yield


def _bind(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    """uvicorn serving `app` on `config.http_listen`, with the gateway's TLS settings (files read at start)."""

    def __init__(self, app: HttpApp, config: Config) -> None:
        try:
            self._sock = _bind(config.http_listen)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot listen for HTTP on {config.http_listen}: {exc}") from exc
        self.port: int = self._sock.getsockname()[1]
        self.tls = bool(config.tls_cert)
        server_config = uvicorn.Config(
            app,
            lifespan="off",
            http="h11",
            ws="none",
            log_config=None,  # the gateway's logging stays as configured
            access_log=False,  # the call log covers API calls; the page's files need no log line
            server_header=False,
            proxy_headers=False,
            ssl_certfile=config.tls_cert or None,
            ssl_keyfile=config.tls_key or None,
            ssl_ca_certs=config.tls_client_ca or None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if config.tls_client_ca else ssl.CERT_NONE,
        )
        self._server = _Server(server_config)
        # Its start and stop lines add nothing to the gateway's own, and come from a logger named "uvicorn.error".
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError(f"the HTTP server on port {self.port} stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self, grace_s: float) -> None:
        """Stops accepting, gives requests in flight `grace_s` to finish, then cancels them."""
        if self._task is None:
            self._sock.close()
            return
        # asyncio.wait_for with no time at all fails even when nothing is left to wait for, and uvicorn logs that.
        self._server.config.timeout_graceful_shutdown = max(grace_s, 0.1)
        self._server.should_exit = True
        await self._task
