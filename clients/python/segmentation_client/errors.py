"""The client's exceptions: one per kind of failure a caller handles differently, each with the gRPC code."""

from __future__ import annotations

import grpc


class SegmentationError(Exception):
    """A failed call. `code` is the gRPC status code, `message` the service's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class InvalidImageError(SegmentationError):
    """INVALID_ARGUMENT: the image (or another field) was refused; sending it again will not help."""


class NotFoundError(SegmentationError):
    """NOT_FOUND: the model, version, label or signature does not exist."""


class UnavailableError(SegmentationError):
    """UNAVAILABLE: the service or its model backend cannot be reached; retry later."""


class DeadlineExceededError(SegmentationError):
    """DEADLINE_EXCEEDED: no answer within the timeout."""


class OverloadedError(SegmentationError):
    """RESOURCE_EXHAUSTED: the service is shedding load; retry with backoff."""


class ServerError(SegmentationError):
    """INTERNAL or anything else unexpected on the service's side."""


_BY_CODE: dict[grpc.StatusCode, type[SegmentationError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidImageError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
}


def error_for(code: grpc.StatusCode, message: str) -> SegmentationError:
    return _BY_CODE.get(code, ServerError)(code, message)


def from_rpc_error(error: grpc.RpcError) -> SegmentationError:
    return error_for(error.code(), error.details() or "")  # type: ignore[attr-defined]


def code_from_number(number: int) -> grpc.StatusCode:
    return next((code for code in grpc.StatusCode if code.value[0] == number), grpc.StatusCode.UNKNOWN)
