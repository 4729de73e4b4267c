"""gRPC method handlers rebuilt around wrapped behaviour, for the interceptors (api/interceptors.py,
api/receive.py, auth/interceptor.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]
Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[AsyncIterator[Any], grpc.aio.ServicerContext], AsyncIterator[Any]]


def rewrapped(
    handler: grpc.RpcMethodHandler, unary: Callable[[Unary], Unary], stream: Callable[[Streaming], Streaming]
) -> grpc.RpcMethodHandler:
    """A handler of the same kind whose behaviour is `unary(behaviour)` for unary methods, and for unary methods
    served as client-streaming (api/receive.py) or refused (auth/interceptor.py), whose behaviour takes its request,
    or what stands for it, first, as a unary one does; `stream(behaviour)` for bidirectional ones. The API has no
    other kinds."""
    serializers = (handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), *serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), *serializers)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(stream(handler.stream_stream), *serializers)
    return handler
