"""Bearer-token authentication: `authorization: Bearer TOKEN` checked against a file of tokens.

Tokens are compared in constant time (digests of equal length, every token compared), and the file is re-read
when it changes, so tokens rotate without a restart. Health and reflection stay open unless configured otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pathlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from service.config import ConfigError

log = logging.getLogger(__name__)

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DENIED_MESSAGE = "missing or invalid bearer token"
_CHECK_EVERY_S = 1.0


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def read_tokens(path: str) -> list[bytes]:
    """The digests of the tokens in a file: one a line, blank lines and `#` comments skipped."""
    try:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
    tokens = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not tokens:
        raise ConfigError(f"the tokens file {path} has no token (one a line; # starts a comment)")
    return [_digest(token) for token in tokens]


class TokenFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._digests = read_tokens(path)
        self._stamp = self._stat()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._checked < _CHECK_EVERY_S:
                return
            self._checked = time.monotonic()
            stamp = self._stat()
            if stamp == self._stamp or stamp is None:
                return
            try:
                self._digests = read_tokens(self.path)
            except ConfigError as exc:  # a half-written file must not lock everyone out: keep the tokens we have
                log.error("tokens not reloaded, the previous ones stay: %s", exc)
                return
            self._stamp = stamp
            log.info("tokens reloaded from %s (%d tokens)", self.path, len(self._digests))

    def accepts(self, token: str) -> bool:
        self._refresh()
        given = _digest(token)
        accepted = False
        for digest in self._digests:  # every one, so the time taken does not say which matched
            accepted |= hmac.compare_digest(given, digest)
        return accepted


def _bearer(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            # The scheme's name is case-insensitive (RFC 9110 §11.1): "bearer x" is the same credential.
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


def _denied(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same kind that answers UNAUTHENTICATED."""

    async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED_MESSAGE)

    async def deny_streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED_MESSAGE)
        yield  # an async generator, as streaming handlers are

    kinds: list[tuple[Any, Callable[..., Any], Callable[..., Any]]] = [
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler, deny),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler, deny_streaming),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler, deny),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler, deny_streaming),
    ]
    for behaviour, make, denial in kinds:
        if behaviour is not None:
            return make(denial, handler.request_deserializer, handler.response_serializer)
    return handler


class Authentication(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenFile, protect_health: bool) -> None:
        self._tokens = tokens
        self._open = () if protect_health else OPEN_PREFIXES

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(self._open):
            return handler
        if self._tokens.accepts(_bearer(details.invocation_metadata)):
            return handler
        return _denied(handler)
