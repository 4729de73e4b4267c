"""service/backends/channel.py: a backend's gRPC errors as the domain errors that name their cause."""

from __future__ import annotations

import grpc
import pytest

from service import errors
from service.backends.channel import translate
from service.errors import BackendFailed


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "connection refused", errors.BackendUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", errors.DeadlineExceeded),
        (grpc.StatusCode.NOT_FOUND, "Servable not found", errors.ModelNotFound),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", errors.Overloaded),
        # gRPC's own refusal of an answer over the receive limit: the backend's fault, not load.
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (104857615 vs. 1024)", BackendFailed),
        (grpc.StatusCode.INTERNAL, "boom", BackendFailed),
    ],
)
def test_backend_errors_translate_to_the_domain_error_that_names_the_cause(
    code: grpc.StatusCode, details: str, expected: type[errors.GatewayError]
) -> None:
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
    assert type(translate(error, "tfs:8500", "model 'deeplab'")) is expected
