"""A unary call's request read when the servicer is ready for it, not when the call arrives.

gRPC reads a unary call's whole message before it calls the handler. Served as a client-streaming handler instead,
the call reaches the interceptors and the servicer with nothing read but what HTTP/2 flow control let the client
send (one stream window): credentials are checked, the caller's quota and a place are taken, and only then is the
message read, within `read_timeout_s`. So the messages the gateway holds are those of the images it works on, and a
caller that sends half a message and stalls is let go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from service.api.handlers import Continuation
from service.errors import DeadlineExceeded, InvalidRequest

SERVICE_PREFIX = "/segmentation.v1.SegmentationService/"


class PendingRequest:
    """A unary call's request, read by `read()` once."""

    def __init__(self, requests: AsyncIterator[Any], timeout_s: float) -> None:
        self._requests: AsyncIterator[Any] | None = requests
        self._timeout_s = timeout_s
        self.size = 0  # the image's bytes, once read: for the call log

    async def read(self) -> Any:
        if self._requests is None:
            raise RuntimeError("a request is read once")
        requests, self._requests = self._requests, None
        try:
            request = await asyncio.wait_for(anext(requests), self._timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the request message did not arrive within {self._timeout_s:g} s (read_timeout); send it whole"
            ) from None
        except StopAsyncIteration:
            raise InvalidRequest("the call carried no request message") from None
        image = getattr(request, "image", b"")
        self.size = len(image) if isinstance(image, bytes | memoryview) else 0
        return request


async def received(request: Any) -> Any:
    """The request itself: read now if it is still pending (gRPC), as it is otherwise (Connect reads its own)."""
    return await request.read() if isinstance(request, PendingRequest) else request


async def _single(request: Any) -> AsyncIterator[Any]:
    yield request


def as_unary(handler: grpc.RpcMethodHandler) -> Callable[[Any, Any], Awaitable[Any]]:
    """The behaviour of a unary method's handler as the interceptors made it, for a request already read (over
    Connect): a client-streaming behaviour (ReceiveLater, or a refusal) is given a stream of that one request."""
    if handler.unary_unary is not None:
        return handler.unary_unary  # type: ignore[no-any-return]
    stream_unary = handler.stream_unary
    return lambda request, context: stream_unary(_single(request), context)


class ReceiveLater(grpc.aio.ServerInterceptor):
    """The outermost interceptor: every unary method of the service gets a `PendingRequest` for its request."""

    def __init__(self, read_timeout_s: float) -> None:
        self.read_timeout_s = read_timeout_s

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None or not details.method.startswith(SERVICE_PREFIX):
            return handler
        call = handler.unary_unary

        async def later(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await call(PendingRequest(requests, self.read_timeout_s), context)

        return grpc.stream_unary_rpc_method_handler(later, handler.request_deserializer, handler.response_serializer)
