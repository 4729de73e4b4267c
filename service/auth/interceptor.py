"""Authentication and identification of every call, as a gRPC server interceptor.

A bearer token is checked when the call's headers arrive (`intercept_service`), before any of its message is read:
a call that fails is answered UNAUTHENTICATED by a handler that never reads its request, so a stranger's 30 MB
message costs what gRPC's flow-control window lets it send, not 30 MB. A call that passes is named (its Caller, in
the `caller` context variable) inside its handler, where the connection's peer and certificate are known.

Health and reflection stay open unless `protect_health`; they are authenticated then, but not named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from service.api.handlers import Continuation, Streaming, Unary, rewrapped
from service.auth.credentials import Credential, Credentials
from service.auth.identity import certificate_identity, identify
from service.auth.proxies import TrustedProxies
from service.context import caller
from service.errors import Unauthenticated

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
SERVICE_PREFIX = "/segmentation.v1.SegmentationService/"


def refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler that answers UNAUTHENTICATED without reading a request: one that takes a stream of requests
    (gRPC reads a unary call's request before calling its handler, a stream's only when asked), whatever the
    method's kind, which the client cannot tell from its status."""

    async def refuse(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.stream_unary_rpc_method_handler(refuse, handler.request_deserializer, handler.response_serializer)


class Identification(grpc.aio.ServerInterceptor):
    def __init__(self, credentials: Credentials, proxies: TrustedProxies, protect_health: bool) -> None:
        self._credentials = credentials
        self._proxies = proxies
        self._open = () if protect_health else OPEN_PREFIXES

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(self._open):
            return handler
        try:
            credential = self._credentials.bearer(details.invocation_metadata)
        except Unauthenticated as exc:
            return refusal(handler, exc.message)
        if not details.method.startswith(SERVICE_PREFIX):
            return handler
        return rewrapped(
            handler, lambda call: self._named(call, credential), lambda call: self._named_stream(call, credential)
        )

    def _identify(self, credential: Credential | None, context: grpc.aio.ServicerContext) -> None:
        """Names the call's caller (the `caller` context variable); Unauthenticated when a client certificate is
        required to name it and this one does not."""
        identity = certificate_identity(context.auth_context() or {})
        if credential is None:
            credential = self._credentials.certificate(identity)
            if credential is None and self._credentials.required:
                raise Unauthenticated("a client certificate is needed to call this service")
        caller.set(identify(credential, context.invocation_metadata(), context.peer(), identity, self._proxies))

    def _named(self, call: Unary, credential: Credential | None) -> Unary:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                self._identify(credential, context)
            except Unauthenticated as exc:
                del request  # see api/interceptors.py's ErrorStatus: no frame may hold it while an abort unwinds
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
            return await call(request, context)

        return unary

    def _named_stream(self, call: Streaming, credential: Credential | None) -> Streaming:
        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                self._identify(credential, context)
            except Unauthenticated as exc:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
            async for response in call(requests, context):
                yield response

        return stream
