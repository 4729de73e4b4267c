"""Domain errors of the gateway. No gRPC here: service/api/status.py is the one place that maps them to codes."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the caller is told about. The message says what was wrong and what is accepted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImage(GatewayError):
    """The image is empty, not an image, of an unsupported format, or corrupt."""


class LimitExceeded(GatewayError):
    """The image is over the byte or pixel limit."""


class InvalidRequest(GatewayError):
    """A request field other than the image is wrong (e.g. a negative version)."""


class ModelNotFound(GatewayError):
    """The model, version, version label or signature is not configured or not served."""


class BackendUnavailable(GatewayError):
    """The model backend cannot be reached."""


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before the answer was ready."""


class Overloaded(GatewayError):
    """The gateway sheds load: too many calls, or an image that could not get a place in time."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # when the caller may well be served, if the gateway can tell


class BackendFailed(GatewayError):
    """The backend answered with an error or an output the gateway cannot use."""
