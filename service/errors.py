"""Domain errors of the gateway. No gRPC here: service/api/status.py is the one place that maps them to codes."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the caller is told about. The message says what was wrong and what is accepted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def for_log(self) -> str:
        """The message with what only the log may say."""
        return self.message


class InvalidImage(GatewayError):
    """The image is empty, not an image, of an unsupported format, or corrupt."""


class LimitExceeded(GatewayError):
    """The image is over the byte or pixel limit."""


class InvalidRequest(GatewayError):
    """A request field other than the image is wrong (e.g. a negative version)."""


class Unauthenticated(GatewayError):
    """The call's credentials are missing or not valid."""


class PermissionDenied(GatewayError):
    """The caller's credential does not allow what it asked for (a model, a version, a signature)."""


class NotSupportedByModel(GatewayError):
    """The request asks for what the model cannot give (probabilities from a model that gives no scores)."""


class ModelNotFound(GatewayError):
    """The model, version, version label or signature is not configured or not served."""


class BackendUnavailable(GatewayError):
    """The model backend cannot be reached. The caller is told that much; where it is and what the channel said
    (`detail`) go to the log only."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    @property
    def for_log(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before the answer was ready."""


class Overloaded(GatewayError):
    """The gateway sheds load: too many calls, or an image that could not get a place in time."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # when the caller may well be served, if the gateway can tell


class BackendFailed(GatewayError):
    """The backend answered with an error or an output the gateway cannot use."""
