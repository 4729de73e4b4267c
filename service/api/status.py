"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import logging

import grpc

from service import errors

log = logging.getLogger(__name__)

_CODES: dict[type[errors.GatewayError], grpc.StatusCode] = {
    errors.InvalidImage: grpc.StatusCode.INVALID_ARGUMENT,
    errors.LimitExceeded: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
    errors.BackendUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.BackendFailed: grpc.StatusCode.INTERNAL,
}

INTERNAL_MESSAGE = "internal error in the segmentation service; it has been logged"


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message for an exception; unknown ones are logged with their traceback."""
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code, exc.message  # type: ignore[attr-defined]
    log.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
