"""What every SegmentationService call shares: a request id, one log line, load shedding, status mapping.

Each interceptor wraps the method handler's behaviour, so that it runs inside the call's own task (and its
context variables reach every task and thread the call starts). Health and reflection pass untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from service import tracing
from service.admission import Quotas
from service.api.handlers import Continuation, Streaming, Unary, rewrapped
from service.api.receive import PendingRequest
from service.api.status import to_status
from service.context import REQUEST_ID_KEY, CallInfo, call_info, caller, request_id
from service.errors import Overloaded
from service.identifiers import escaped, is_safe_id
from service.metrics import Metrics

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/segmentation.v1.SegmentationService/"
# The methods that segment images: what load shedding counts (ListModels is not shed).
IMAGE_METHODS = ("SegmentImage", "SegmentImageStream")


class _Interceptor(grpc.aio.ServerInterceptor):
    """Wraps the behaviour of the service's unary and bidirectional methods; `method` is e.g. "SegmentImage"."""

    def wrap_unary(self, call: Unary, method: str) -> Unary:
        return call

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        return call

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(SERVICE_PREFIX):
            return handler
        method = details.method.removeprefix(SERVICE_PREFIX)
        return rewrapped(
            handler, lambda call: self.wrap_unary(call, method), lambda call: self.wrap_stream(call, method)
        )


def choose_request_id(metadata: Any) -> str:
    """The caller's x-request-id if it is a safe id (service/identifiers.py), else a new one; a refused id is
    logged, escaped, under the new one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            if isinstance(value, str) and is_safe_id(value):
                return value
            chosen = uuid.uuid4().hex
            log.warning("x-request-id %s is not a safe id; this call's id is %s", escaped(value), chosen)
            return chosen
    return uuid.uuid4().hex


def _caller_request_id(context: grpc.aio.ServicerContext) -> str:
    return choose_request_id(context.invocation_metadata())


class RequestIds(_Interceptor):
    """The caller's x-request-id, or a new one: in every log line of the call and in the response metadata."""

    def wrap_unary(self, call: Unary, method: str) -> Unary:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            request_id.set(_caller_request_id(context))
            metadata = ((REQUEST_ID_KEY, request_id.get()),)
            # A failure's status carries the id in its (trailers-only) headers. An answer sends it with the
            # response, not before: until headers go out, a proxy may still retry the call elsewhere when this
            # process dies (Envoy's retry on reset), instead of failing it.
            context.set_trailing_metadata(metadata)
            pending = call(request, context)
            del request  # see ErrorStatus: no frame above it may hold the request while an abort unwinds
            response = await pending
            await context.send_initial_metadata(metadata)
            return response

        return unary

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            request_id.set(_caller_request_id(context))
            await context.send_initial_metadata(((REQUEST_ID_KEY, request_id.get()),))
            async for response in call(requests, context):
                yield response

        return stream


class Tracing(_Interceptor):
    """A span per call (service/tracing.py), continuing the caller's trace; only installed when tracing is on."""

    def wrap_unary(self, call: Unary, method: str) -> Unary:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with tracing.call_span(method, context.invocation_metadata() or ()) as span:
                pending = call(request, context)
                del request  # see ErrorStatus
                try:
                    return await pending
                finally:
                    tracing.end_call(span, *_code(context))

        return unary

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with tracing.call_span(method, context.invocation_metadata() or ()) as span:
                try:
                    async for response in call(requests, context):
                        yield response
                finally:
                    tracing.end_call(span, *_code(context))

        return stream


def _code(context: grpc.aio.ServicerContext) -> tuple[str, int]:
    """The call's status code, name and number, as far as it is known (OK until something else is set)."""
    code = context.code() or grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code.name, code.value[0]
    return str(code), -1


def _image_bytes(message: Any) -> int:
    """The image size of a SegmentImageRequest, a stream item or a request read later; 0 for other messages."""
    if isinstance(message, PendingRequest):
        return message.size
    inner = getattr(message, "request", message)
    image = getattr(inner, "image", b"")
    return len(image) if isinstance(image, bytes | memoryview) else 0


class CallLog(_Interceptor):
    """One log line per call (method, status, caller, image bytes, items of a stream, milliseconds) and its
    metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def _record(
        self, method: str, context: grpc.aio.ServicerContext, info: CallInfo, start: float
    ) -> tuple[str, float]:
        """Counts the call; its status code name and milliseconds, for the log line."""
        code = _code(context)[0]
        seconds = time.perf_counter() - start
        self.metrics.requests.labels(method, code, info.model, info.variant).inc()
        self.metrics.request_seconds.labels(method, info.model).observe(seconds)
        return code, seconds * 1000

    def wrap_unary(self, call: Unary, method: str) -> Unary:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start, info = time.perf_counter(), CallInfo()
            call_info.set(info)
            pending = call(request, context)
            # A request read later is sized once read; only its size is kept (see ErrorStatus).
            sized = request if isinstance(request, PendingRequest) else None
            size = 0 if sized else _image_bytes(request)
            del request
            try:
                return await pending
            finally:
                size = sized.size if sized else size
                self.metrics.image_bytes.observe(size)
                code, ms = self._record(method, context, info, start)
                log.info("%s %s bytes=%d %.1fms caller=%s", method, code, size, ms, caller.get().name)

        return unary

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start, counted, info = time.perf_counter(), [0, 0], CallInfo()
            call_info.set(info)

            async def counting() -> AsyncIterator[Any]:
                async for item in requests:
                    size = _image_bytes(item)
                    counted[0] += 1
                    counted[1] += size
                    self.metrics.image_bytes.observe(size)
                    yield item

            try:
                async for response in call(counting(), context):
                    yield response
            finally:
                code, ms = self._record(method, context, info, start)
                name = caller.get().name
                log.info("%s %s items=%d bytes=%d %.1fms caller=%s", method, code, counted[0], counted[1], ms, name)

        return stream


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


class LoadShedding(_Interceptor):
    """Bounds what callers can make the gateway hold.

    Past `max_open_calls` calls open at once (a stream counts once), new calls get RESOURCE_EXHAUSTED before
    anything of theirs is read. Each image (a unary call, or a stream item before the servicer reads it, which it
    does only when its window has room) takes one of its caller's quota (admission.Quotas) and gives it back once
    gRPC has taken its answer (answers come one per item, in order): an answer a client does not read holds only its
    own caller's quota, and no caller's messages are read beyond its quota. A stream waits for its quota before it
    reads on, so gRPC's flow control slows the sender; a unary call waits at most `max_wait_s`. The places images are
    worked on in are the servicer's (admission.Places), shared fairly between callers. The caller is the one
    auth/interceptor.py named. Health and reflection are not counted: probes are answered whatever the load.
    """

    def __init__(self, quotas: Quotas, metrics: Metrics, max_open_calls: int, max_wait_s: float) -> None:
        self.quotas = quotas
        self.metrics = metrics
        self.max_open_calls = max_open_calls
        self.max_wait_s = max_wait_s
        self.open_calls = 0

    @contextlib.contextmanager
    def _open(self) -> Iterator[str]:
        """The call's caller's name, while the call is open."""
        if self.open_calls >= self.max_open_calls:
            self.metrics.shed.inc()
            raise Overloaded(f"the service has {self.max_open_calls} calls open, its limit; retry with backoff")
        self.open_calls += 1
        try:
            yield caller.get().name
        finally:
            self.open_calls -= 1

    def wrap_unary(self, call: Unary, method: str) -> Unary:
        if method not in IMAGE_METHODS:
            return call

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with self._open() as name:
                try:
                    await self.quotas.take(name, self.max_wait_s)
                except Overloaded:
                    self.metrics.shed.inc()
                    raise
                try:
                    return await call(request, context)
                finally:
                    self.quotas.give_back(name)

        return unary

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        if method not in IMAGE_METHODS:
            return call

        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            held = 0  # quota taken: items read and not yet answered, and the one being read
            with self._open() as name:

                async def taking() -> AsyncIterator[Any]:
                    nonlocal held
                    while True:
                        await self.quotas.take(name, None)
                        held += 1
                        try:
                            item = await anext(requests)
                        except StopAsyncIteration:
                            held -= 1
                            self.quotas.give_back(name)
                            return
                        yield item

                try:
                    async for response in call(taking(), context):
                        # Given back once gRPC has taken the answer: an answer a client does not read still counts
                        # against its own caller, so no client can pile up answers beyond its quota.
                        yield response
                        if held:
                            held -= 1
                            self.quotas.give_back(name)
                finally:
                    self.quotas.give_back(name, held)

        return stream


def _retry_hint(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    """When to retry a refused call, as gRPC's retry policies read it (grpc-retry-pushback-ms) and HTTP's clients
    (retry-after, whole seconds)."""
    seconds = getattr(exc, "retry_after_s", None) if isinstance(exc, Overloaded) else None
    if seconds is not None:
        context.set_trailing_metadata(
            (("grpc-retry-pushback-ms", str(round(seconds * 1000))), ("retry-after", str(math.ceil(seconds))))
        )


class ErrorStatus(_Interceptor):
    """Domain errors to status codes (api/status.py); anything unknown is logged and answered INTERNAL."""

    def wrap_unary(self, call: Unary, method: str) -> Unary:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await call(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                _retry_hint(context, exc)
                code, message = to_status(exc)
            # abort() raises, and gRPC keeps that exception with its traceback, which holds every frame it
            # passes through: drop the request here (and above, in the outer interceptors), or every refused
            # 20 MB image stays in memory.
            del request
            await context.abort(code, message)

        return unary

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for response in call(requests, context):
                    yield response
                return
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                _retry_hint(context, exc)
                code, message = to_status(exc)
            await context.abort(code, message)

        return stream


class StreamWrites(_Interceptor):
    """Writes a stream's answers itself, so that a client that stops reading is noticed and let go.

    An answer gRPC has not taken within `timeout_s` (the client's flow-control window stayed full) ends the call,
    which frees the images it held (its RESOURCE_EXHAUSTED status queues behind the unread answer, so such a
    client learns at its deadline); a client that went away ends it quietly.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def wrap_stream(self, call: Streaming, method: str) -> Streaming:
        async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
            answers = call(requests, context)
            try:
                async for response in answers:
                    try:
                        await asyncio.wait_for(context.write(response), self.timeout_s)
                    except TimeoutError:
                        message = f"the stream's answers were not read for {self.timeout_s:g} s"
                        log.warning("%s: %s; ending it", method, message)
                        await answers.aclose()  # give back what the call holds
                        # The status queues behind the answer the client does not read: it may never see it.
                        with contextlib.suppress(Exception):
                            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
                        return
                    except (grpc.aio.AbortError, asyncio.CancelledError):
                        raise
                    except Exception:  # the client went away while we wrote: nothing left to tell it
                        if context.cancelled() or context.done():
                            return
                        raise
            finally:
                await answers.aclose()

        return stream  # type: ignore[return-value]  # a coroutine handler: gRPC's writer API
