"""SegmentationService over Connect and gRPC-Web (connectrpc): the gRPC servicer behind the gRPC interceptors.

connectrpc's ASGI application decodes the request (proto JSON or binary, Connect or gRPC-Web framing) and calls
the generated `SegmentationService` protocol's methods. `ConnectService` implements them by running the very
interceptor objects the gRPC server runs (request ids, call log, bearer tokens, status mapping, load shedding) around
the very servicer object, with `CallContext` standing in for grpc.aio's ServicerContext. So the router, pipeline,
places and quotas, TokenFile, metrics and log lines are one, and domain errors reach HTTP through the one mapping in
api/status.py: the status code it chose is only renamed here into Connect's, which picks the HTTP status.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from google.protobuf import json_format
from google.protobuf.message import Message

from segmentation.v1 import segmentation_service_pb2 as pb
from service.api.interceptors import SERVICE_PREFIX
from service.api.receive import as_unary
from service.api.servicer import SegmentationServicer

# The TLS client certificate of the HTTP request being served, as gRPC's auth context names its parts
# ("x509_common_name", "x509_subject_alternative_name"); set per request by service/http_server.py.
CLIENT_CERTIFICATE: contextvars.ContextVar[tuple[tuple[str, tuple[bytes, ...]], ...]] = contextvars.ContextVar(
    "client_certificate", default=()
)

Metadata = tuple[tuple[str, str], ...]
MessageT = TypeVar("MessageT", bound=Message)
_END = object()

# gRPC and Connect name the same codes, but for one spelling.
_CONNECT_CODES = {code: Code[code.name] for code in grpc.StatusCode if code.name in Code.__members__}
_CONNECT_CODES[grpc.StatusCode.CANCELLED] = Code.CANCELED


def connect_code(code: grpc.StatusCode) -> Code:
    return _CONNECT_CODES.get(code, Code.UNKNOWN)


class JsonCodec:
    """Connect's JSON (proto3 JSON), with every field written, zeros included: by default proto3 JSON leaves them
    out, and an answer without background's `classId` or with a box missing `x` misleads whoever reads it. Unknown
    fields in a request are refused, as grpcurl refuses them: a misspelt field name is told, not ignored."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return json_format.MessageToJson(message, always_print_fields_with_no_presence=True).encode()

    def decode(self, data: bytes | bytearray, message_class: type[MessageT]) -> MessageT:
        if not bytes(data).strip():
            raise ValueError(
                "the body is empty: send the request as JSON: {} for a request of no fields, "
                'SegmentImage\'s as {"image": "<the file in base64>"}'
            )
        message = message_class()
        json_format.Parse(data, message, ignore_unknown_fields=False)
        return message


class Aborted(grpc.aio.AbortError):
    """What CallContext.abort raises: an AbortError, so the interceptors let it through as they do gRPC's own."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class CallContext:
    """The part of grpc.aio.ServicerContext the interceptors and the servicer use, over one HTTP request."""

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx
        # gRPC metadata keys are lower case, as HTTP/2 header names are; HTTP/1.1 ones may not be.
        self._metadata: Metadata = tuple((key.lower(), value) for key, value in ctx.request_headers.allitems())
        remaining_ms = ctx.timeout_ms
        self._deadline = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000
        self._code: grpc.StatusCode | None = None
        # A stream handler that writes its answers (context.write) rather than yielding them hands them over here,
        # one at a time: a write waits while the answer before it has not been taken, as gRPC's does.
        self._writes: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        self._cancelled = False
        self._done = False

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        """The client's connection, as gRPC names a peer ("http:ipv4:10.0.0.5:4711"): the caller when nobody is
        authenticated (service/auth/identity.py)."""
        address = self._ctx.client_address
        if not address:
            return "http:unknown"
        host = address.rpartition(":")[0]
        return f"http:ipv6:[{host}]:{address.rpartition(':')[2]}" if ":" in host else f"http:ipv4:{address}"

    def auth_context(self) -> dict[str, tuple[bytes, ...]]:
        """The client certificate's names, as gRPC's auth context gives them (service/http_server.py sets them for
        the request)."""
        return dict(CLIENT_CERTIFICATE.get())

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.set_trailing_metadata(metadata)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        # An HTTP answer, error or not, has one set of headers; Connect sends both kinds of metadata in it.
        for key, value in metadata:
            self._ctx.response_headers[key] = value

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code = code
        raise Aborted(code, details)

    def code(self) -> grpc.StatusCode | None:
        task = asyncio.current_task()
        if self._code is None and task is not None and task.cancelling():
            # connectrpc cancels the call at its deadline or when the client goes away: the call log and metrics,
            # which ask while the cancellation unwinds, must not count that as OK.
            past_deadline = self._deadline is not None and time.monotonic() >= self._deadline
            return grpc.StatusCode.DEADLINE_EXCEEDED if past_deadline else grpc.StatusCode.CANCELLED
        return self._code

    async def write(self, message: Any) -> None:
        await self._writes.put(message)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    async def written(self, handler: Coroutine[Any, Any, Any]) -> AsyncIterator[Any]:
        """Runs a writing stream handler, yielding what it writes; its error, if any, comes after its answers."""

        async def run() -> None:
            try:
                await handler
            finally:
                self._done = True
                await self._writes.put(_END)

        task = asyncio.create_task(run())
        try:
            while (message := await self._writes.get()) is not _END:
                yield message
            await task
        finally:
            if not task.done():  # the client went away, or the call's deadline passed
                self._cancelled = True
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


@dataclass(frozen=True)
class _CallDetails:
    """grpc.HandlerCallDetails for one HTTP request."""

    method: str
    invocation_metadata: Metadata


Interceptor = grpc.aio.ServerInterceptor


async def _intercepted(
    interceptors: Sequence[Interceptor], details: _CallDetails, handler: grpc.RpcMethodHandler
) -> grpc.RpcMethodHandler:
    """The handler as the interceptors make it, outermost first, as grpc.aio's server chains them."""

    async def through(index: int, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if index == len(interceptors):
            return handler

        async def continuation(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return await through(index + 1, details)

        return await interceptors[index].intercept_service(continuation, details)

    return await through(0, details)  # type: ignore[arg-type]


async def _never_called(request: Any, context: Any) -> Any:
    raise AssertionError("refuse_early only runs refusals")


async def _no_requests() -> AsyncIterator[Any]:
    return
    yield


class ConnectService:
    """The generated `SegmentationService` protocol (segmentation_service_connect.py), served by the gRPC servicer."""

    def __init__(self, servicer: SegmentationServicer, interceptors: Sequence[Interceptor]) -> None:
        self._servicer = servicer
        self._interceptors = tuple(interceptors)

    async def _handler(
        self, method: str, handler: grpc.RpcMethodHandler, context: CallContext
    ) -> grpc.RpcMethodHandler:
        return await _intercepted(
            self._interceptors, _CallDetails(SERVICE_PREFIX + method, context.invocation_metadata()), handler
        )

    async def _unary(
        self, method: str, behaviour: Callable[[Any, Any], Awaitable[Any]], request: Any, ctx: RequestContext[Any, Any]
    ) -> Any:
        context = CallContext(ctx)
        handler = await self._handler(method, grpc.unary_unary_rpc_method_handler(behaviour), context)
        try:
            return await as_unary(handler)(request, context)
        except Aborted as exc:
            raise ConnectError(connect_code(exc.code), exc.details) from None

    async def refuse_early(self, ctx: RequestContext[Any, Any]) -> None:
        """Answers a call the interceptors refuse from its headers alone (no credentials) before its body is read:
        raises its ConnectError, logged and counted as the call would have been; returns for any other call."""
        context = CallContext(ctx)
        handler = await self._handler(ctx.method.name, grpc.unary_unary_rpc_method_handler(_never_called), context)
        if handler.stream_unary is None:  # every method's handler is unary here but a refusal's
            return
        try:
            await handler.stream_unary(_no_requests(), context)
        except Aborted as exc:
            raise ConnectError(connect_code(exc.code), exc.details) from None

    async def segment_image(
        self, request: pb.SegmentImageRequest, ctx: RequestContext[pb.SegmentImageRequest, pb.SegmentImageResponse]
    ) -> pb.SegmentImageResponse:
        return await self._unary("SegmentImage", self._servicer.SegmentImage, request, ctx)

    async def list_models(
        self, request: pb.ListModelsRequest, ctx: RequestContext[pb.ListModelsRequest, pb.ListModelsResponse]
    ) -> pb.ListModelsResponse:
        return await self._unary("ListModels", self._servicer.ListModels, request, ctx)

    async def segment_image_stream(
        self,
        requests: AsyncIterator[pb.SegmentImageStreamRequest],
        ctx: RequestContext[pb.SegmentImageStreamRequest, pb.SegmentImageStreamResponse],
    ) -> AsyncIterator[pb.SegmentImageStreamResponse]:
        context = CallContext(ctx)
        handler = await self._handler(
            "SegmentImageStream", grpc.stream_stream_rpc_method_handler(self._servicer.SegmentImageStream), context
        )
        answers = handler.stream_stream(requests, context)
        try:
            # grpc.aio takes both kinds of stream handler: async generators, and coroutines that write.
            async for response in answers if hasattr(answers, "__aiter__") else context.written(answers):
                yield response
        except Aborted as exc:
            raise ConnectError(connect_code(exc.code), exc.details) from None
