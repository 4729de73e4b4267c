"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import logging

import grpc

from service import errors
from service.context import request_id

log = logging.getLogger(__name__)

_CODES: dict[type[errors.GatewayError], grpc.StatusCode] = {
    errors.InvalidImage: grpc.StatusCode.INVALID_ARGUMENT,
    errors.LimitExceeded: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
    errors.NotSupportedByModel: grpc.StatusCode.FAILED_PRECONDITION,
    errors.BackendUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

INTERNAL_MESSAGE = "internal error in the segmentation service; it has been logged"
BACKEND_FAILED_MESSAGE = "the model backend failed or answered with something unusable; it has been logged"


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message for an exception.

    What the caller can act on is told as it is. A backend failure is logged with its details (they name the
    model's internals) and answered with a fixed message; an unreachable backend is logged with its address and
    the channel's words, and the caller gets the request id that finds them; anything unknown is logged with its
    traceback.
    """
    if isinstance(exc, errors.BackendFailed):
        log.error("%s", exc.message)
        return grpc.StatusCode.INTERNAL, BACKEND_FAILED_MESSAGE
    if isinstance(exc, errors.BackendUnavailable):
        log.warning("%s", exc.for_log)
        current = request_id.get()
        return grpc.StatusCode.UNAVAILABLE, exc.message + (f" (request id {current})" if current != "-" else "")
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code, exc.message  # type: ignore[attr-defined]
    log.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
