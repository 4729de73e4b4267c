"""--http-listen: the service over HTTP (Connect, gRPC-Web) and the web page, served by uvicorn on the gateway's loop.

Paths under /segmentation.v1.SegmentationService/ go to connectrpc's ASGI application (api/connect.py); every other
path is the page's static files (service/web/). uvicorn runs as a task on the gateway's own event loop, on a socket
bound when the gateway is created, so that a bad address fails at start as the gRPC one does and port 0 works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import h11
import uvicorn
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from segmentation.v1.segmentation_service_connect import SegmentationServiceASGIApplication
from service.admission import Bodies
from service.api.connect import CLIENT_CERTIFICATE, ConnectService, Interceptor, JsonCodec
from service.api.servicer import SegmentationServicer
from service.config import Config
from service.errors import Overloaded

MAX_HEADER_BYTES = 16 << 10
# The page loads nothing from elsewhere and is never framed; its images are data: URLs and blob: object URLs.
PAGE_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class _HeadersFirst:
    """A Connect interceptor that runs before a request's body is read (connectrpc calls metadata interceptors at
    the front of its list then): a call without valid credentials is refused, logged and counted as over gRPC; a
    body declared larger than the limit is refused; the others reserve their body's bytes (admission.Bodies) until
    they are answered."""

    def __init__(self, service: ConnectService, read_max_bytes: int, bodies: Bodies, max_wait_s: float) -> None:
        self._service = service
        self._read_max_bytes = read_max_bytes
        self._bodies = bodies
        self._max_wait_s = max_wait_s

    async def on_start(self, ctx: RequestContext[Any, Any]) -> int:
        await self._service.refuse_early(ctx)
        declared = ctx.request_headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._read_max_bytes:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"the request body is {declared} bytes, over the limit of {self._read_max_bytes} "
                "(max_image_bytes and the message's own fields)",
            )
        size = int(declared) if declared.isdigit() else self._read_max_bytes
        try:
            return await self._bodies.reserve(size, self._max_wait_s)
        except Overloaded as exc:
            raise ConnectError(Code.RESOURCE_EXHAUSTED, exc.message) from None

    async def on_end(self, token: int, ctx: RequestContext[Any, Any], error: Exception | None) -> None:
        await self._bodies.give_back(token)


class _Body:
    """An ASGI `receive` whose request body must arrive within `timeout_s` of the request's start; past it the
    application hears that the client went away, and the client gets 408 and a closed connection."""

    def __init__(self, receive: Receive, timeout_s: float) -> None:
        self._receive = receive
        self._deadline = time.monotonic() + timeout_s
        self.expired = False

    async def __call__(self) -> Message:
        if self.expired:
            return {"type": "http.disconnect"}
        try:
            return await asyncio.wait_for(self._receive(), max(0.0, self._deadline - time.monotonic()))
        except TimeoutError:
            self.expired = True
            return {"type": "http.disconnect"}


_TIMED_OUT_BODY = b"the request body did not arrive within read_timeout\n"
_CONTENT_TYPES = (
    "application/json (Connect's JSON, as grpcurl takes it) or application/proto; for SegmentImageStream "
    "application/connect+json or application/connect+proto; gRPC-Web: application/grpc-web+proto"
)


def _unsupported_media_type(scope: Scope) -> str:
    given = dict(scope.get("headers", ())).get(b"content-type", b"").decode()  # UTF-8: _unreadable_header held it
    sent = f"Content-Type {given!r} is not one this API takes" if given else "no Content-Type was sent"
    return f"{sent}; send {_CONTENT_TYPES}"


def _method_not_allowed(scope: Scope) -> str:
    return f"{scope['method']} is not how this API is called: POST the request, as {_CONTENT_TYPES}"


# What Connect's refusals before a call say, in the body it leaves empty.
_EMPTY_REFUSALS: dict[int, Callable[[Scope], str]] = {415: _unsupported_media_type, 405: _method_not_allowed}


class HttpApp:
    """The ASGI application: the API under the service's path, the page everywhere else."""

    def __init__(
        self,
        servicer: SegmentationServicer,
        interceptors: Sequence[Interceptor],
        *,
        read_max_bytes: int,
        read_timeout_s: float,
        bodies: Bodies,
        max_wait_s: float,
    ) -> None:
        service = ConnectService(servicer, interceptors)
        self.api = SegmentationServiceASGIApplication(
            service,
            interceptors=(_HeadersFirst(service, read_max_bytes, bodies, max_wait_s),),
            # The same limit as gRPC's receive limit: connectrpc refuses a body (or a gRPC-Web frame) as soon as it
            # is past it, without reading the rest.
            read_max_bytes=read_max_bytes,
            # No gzip: the answers are mostly base64 of PNGs, which gzip barely shrinks, and it would run on the
            # event loop that serves every call.
            compressions=(),
            codecs=(google_protobuf_binary_codec(), JsonCodec()),
        )
        self.read_timeout_s = read_timeout_s
        self.read_max_bytes = read_max_bytes
        # StaticFiles raises its 404s and 405s; the middleware answers them.
        self.page = ExceptionMiddleware(StaticFiles(packages=[("service", "web")], html=True))
        self._api_prefix = self.api.path + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off and no websockets: nothing else arrives
        if scope["path"].startswith(self._api_prefix):
            await self._api(scope, receive, send)
            return

        async def with_page_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *PAGE_HEADERS]
            await send(message)

        await self.page(scope, receive, with_page_headers)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        if problem := _unreadable_header(scope):
            # Before Connect, which would fail on it as an internal error.
            message = json.dumps({"code": "invalid_argument", "message": problem}).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": message})
            return
        body = _Body(receive, self.read_timeout_s)
        started = False
        refusal: Callable[[Scope], str] | None = None

        async def sending(message: Message) -> None:
            nonlocal started, refusal
            if body.expired:
                return  # the 408 below is the answer
            if message["type"] == "http.response.start" and message["status"] in _EMPTY_REFUSALS:
                refusal = _EMPTY_REFUSALS[message["status"]]
                kept = [(key, value) for key, value in message.get("headers", ()) if key.lower() != b"content-length"]
                message = {**message, "headers": [*kept, (b"content-type", b"application/json")]}
            elif refusal and message["type"] == "http.response.body" and not message.get("more_body", False):
                said = json.dumps({"code": "invalid_argument", "message": refusal(scope)}).encode()
                message = {**message, "body": message.get("body", b"") or said}
            started = True
            await send(message)

        await self.api(scope, body, sending)  # type: ignore[arg-type]
        if body.expired and not started:
            headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": _TIMED_OUT_BODY})


def _unreadable_header(scope: Scope) -> str:
    """What is wrong with a request's headers that no call may see: a value that is not UTF-8 text, or one with
    control characters; "" when nothing is."""
    for key, value in scope.get("headers", ()):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return f"the value of header {key.decode('latin-1')!r} is not UTF-8 text"
        if any((char < " " and char != "\t") or char == "\x7f" for char in text):
            return f"the value of header {key.decode('latin-1')!r} holds control characters"
    return ""


def _certificate_names(transport: asyncio.BaseTransport) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    """A verified client certificate's names as gRPC's auth context gives them; () without one."""
    ssl_object = transport.get_extra_info("ssl_object")
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    if not certificate:
        return ()
    alternative = tuple(value.encode() for _, value in certificate.get("subjectAltName", ()))
    subject = [(key, value) for rdn in certificate.get("subject", ()) for key, value in rdn]
    common = tuple(value.encode() for key, value in subject if key == "commonName")
    whole = (",".join(f"{key}={value}" for key, value in subject).encode(),) if subject else ()
    return (
        ("x509_subject_alternative_name", alternative),
        ("x509_common_name", common),
        ("x509_subject", whole),
    )


class _LingeringTransport:
    """The transport uvicorn writes to, whose close() lingers while the client is still sending the request's body
    (the answer came from its headers: no credentials, a body over the limit, a late body). Closing a socket with
    bytes unread resets the connection, and the client may lose the answer with it; so the answer goes out whole,
    the sending side is shut, and what still arrives is dropped until the client closes, `max_bytes` are dropped or
    `linger_s` pass (nginx's lingering close). A client that stops sending once an answer comes (curl) has it at
    once; one that sends everything first (Python's urllib) has it after."""

    def __init__(
        self, transport: asyncio.Transport, still_sending: Callable[[], bool], linger_s: float, max_bytes: int
    ) -> None:
        self._transport = transport
        self.still_sending = still_sending
        self._linger_s = linger_s
        self._max_bytes = max_bytes
        self._dropped = 0
        self._timer: asyncio.TimerHandle | None = None
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing() or not self.still_sending():
            self._close_now()
            return
        self.lingering = True
        if self._transport.can_write_eof():  # TLS cannot half-close; its client reads the answer's end all the same
            self._transport.write_eof()
        self._transport.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(self._linger_s, self._close_now)

    def drop(self, data: bytes) -> None:
        self._dropped += len(data)
        if self._dropped > self._max_bytes:
            self._close_now()

    def _close_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


def _protocol(header_timeout_s: float, linger_s: float, linger_max_bytes: int) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, with a time limit on a request's headers, a lingering close, and the client
    certificate's names given to the calls of its connection."""

    class Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_after: object = None  # the request cycle before the one whose headers are awaited
        _lingering: _LingeringTransport

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._lingering = _LingeringTransport(transport, self._still_sending, linger_s, linger_max_bytes)
            super().connection_made(self._lingering)  # type: ignore[arg-type]
            names = _certificate_names(transport)
            if names:
                self.app = _with_certificate(self.app, names)
            self._await_headers()

        def _still_sending(self) -> bool:
            return self.conn.their_state is h11.SEND_BODY

        def _await_headers(self) -> None:
            self._waiting_after = self.cycle
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _headers_late(self) -> None:
            if self.cycle is self._waiting_after and not self.transport.is_closing():
                self.logger.warning("an HTTP request's headers did not arrive within %g s; closing", header_timeout_s)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._lingering.lingering:
                self._lingering.drop(data)
                return
            super().data_received(data)
            if self._header_timer is not None and self.cycle is not self._waiting_after:
                self._header_timer.cancel()
                self._header_timer = None

        def eof_received(self) -> None:
            if self._lingering.lingering:
                self._lingering.close()  # the client is done: the socket closes now
                return
            super().eof_received()

        def on_response_complete(self) -> None:
            before = self.cycle
            super().on_response_complete()
            if not self.transport.is_closing() and self.cycle is before:  # no pipelined request began
                self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._lingering.close()  # its timer, if it lingered
            super().connection_lost(exc)

    return Protocol


def _with_certificate(app: Any, names: tuple[tuple[str, tuple[bytes, ...]], ...]) -> Any:
    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        CLIENT_CERTIFICATE.set(names)
        await app(scope, receive, send)

    return call


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

    def __init__(self, app: HttpApp, config: Config, max_concurrency: int) -> None:
        try:
            self._sock = _bind(config.http_listen)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot listen for HTTP on {config.http_listen}: {exc}") from exc
        self.port: int = self._sock.getsockname()[1]
        self.tls = bool(config.tls_cert)
        server_config = uvicorn.Config(
            app,
            lifespan="off",
            http=_protocol(config.header_timeout_s, config.read_timeout_s, app.read_max_bytes),
            ws="none",
            # Requests and connections at once; past it, 503 (each may hold a body of up to the receive limit).
            limit_concurrency=max_concurrency,
            # Request line and headers: as gRPC's metadata limit.
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
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
