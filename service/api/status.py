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
}

INTERNAL_MESSAGE = "internal error in the segmentation service; it has been logged"
BACKEND_FAILED_MESSAGE = "the model backend failed or answered with something unusable; it has been logged"


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message for an exception.

    What the caller can act on is told as it is. A backend failure is logged with its details (they name the
    model's internals) and answered with a fixed message; anything unknown is logged with its traceback.
    """
    if isinstance(exc, errors.BackendFailed):
        log.error("%s", exc.message)
        return grpc.StatusCode.INTERNAL, BACKEND_FAILED_MESSAGE
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code, exc.message  # type: ignore[attr-defined]
    log.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
