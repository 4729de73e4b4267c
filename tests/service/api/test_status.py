"""service/api/status.py: the one place domain errors become status codes."""

from __future__ import annotations

import grpc
import pytest

from service import errors
from service.api.status import BACKEND_FAILED_MESSAGE, INTERNAL_MESSAGE, to_status


def test_status_mapping_hides_unknown_errors_and_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    expected = {
        errors.InvalidImage("x"): grpc.StatusCode.INVALID_ARGUMENT,
        errors.LimitExceeded("x"): grpc.StatusCode.INVALID_ARGUMENT,
        errors.ModelNotFound("x"): grpc.StatusCode.NOT_FOUND,
        errors.BackendUnavailable("x"): grpc.StatusCode.UNAVAILABLE,
        errors.DeadlineExceeded("x"): grpc.StatusCode.DEADLINE_EXCEEDED,
        errors.Overloaded("x"): grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    for exc, code in expected.items():
        assert to_status(exc) == (code, "x")
    with caplog.at_level("ERROR", logger="service"):
        assert to_status(errors.BackendFailed("shape [1, 5] of 'sub_7'")) == (
            grpc.StatusCode.INTERNAL,
            BACKEND_FAILED_MESSAGE,
        )
    assert "shape [1, 5] of 'sub_7'" in caplog.text
    try:
        {}["secret-key"]  # a real exception, with a real traceback
    except KeyError as exc:
        with caplog.at_level("ERROR", logger="service"):
            code, message = to_status(exc)
    assert code == grpc.StatusCode.INTERNAL and message == INTERNAL_MESSAGE
    assert "secret-key" not in message
    assert "Traceback" in caplog.text and "secret-key" in caplog.text
