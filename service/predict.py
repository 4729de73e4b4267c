"""Calling TF Serving: one long-lived channel per backend, gRPC's own retries, errors made domain errors."""

from __future__ import annotations

import json

import grpc

from service.errors import (
    BackendFailed,
    BackendUnavailable,
    DeadlineExceeded,
    GatewayError,
    ModelNotFound,
    Overloaded,
)
from tfs_subset.tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

# Large enough for any mask TF Serving may return for an image within the gateway's pixel limit.
MAX_BACKEND_MESSAGE_BYTES = 1 << 30

# UNAVAILABLE is retried by gRPC itself, quickly, and only a couple of times: a backend that is down must turn
# into an UNAVAILABLE answer within a second, not a hang.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": "tensorflow.serving.PredictionService"},
                    {"service": "tensorflow.serving.ModelService"},
                ],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.3s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)

CHANNEL_OPTIONS = (
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.max_send_message_length", MAX_BACKEND_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_BACKEND_MESSAGE_BYTES),
    # A restarted backend is found again within a second instead of gRPC's default backoff of up to 2 minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


def translate(error: grpc.aio.AioRpcError, target: str, what: str) -> GatewayError:
    """The domain error for a failed backend call, worded for the gateway's caller."""
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return BackendUnavailable(f"the model backend at {target} is unavailable ({details}); try again later")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the deadline passed while waiting for the model backend ({what})")
    if code == grpc.StatusCode.NOT_FOUND:
        return ModelNotFound(f"{what} is not served by the backend: {details}")
    if code == grpc.StatusCode.INVALID_ARGUMENT and "version label" in details:
        return ModelNotFound(f"{what}: {details}")
    if code == grpc.StatusCode.FAILED_PRECONDITION and "signature" in details:
        return ModelNotFound(f"{what}: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Overloaded(f"the model backend is overloaded ({details}); try again later")
    if code == grpc.StatusCode.CANCELLED:
        return DeadlineExceeded(f"the call was cancelled while waiting for the model backend ({what})")
    return BackendFailed(f"the model backend failed for {what}: {code.name}: {details}")


class Backend:
    """TF Serving's PredictionService and ModelService over one channel, kept for the process's life."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    async def predict(
        self, request: predict_pb2.PredictRequest, timeout: float, what: str
    ) -> predict_pb2.PredictResponse:
        try:
            return await self._predictions.Predict(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, what) from error

    async def model_status(self, name: str, timeout: float) -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        try:
            return await self._models.GetModelStatus(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, f"model {name!r}") from error

    async def close(self) -> None:
        await self._channel.close()
