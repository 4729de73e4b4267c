"""TensorFlow Serving over gRPC: one balanced channel per backend, TensorProto packing, model status, errors.

Only TF Serving's public API is used (PredictionService.Predict, ModelService.GetModelStatus), so the same code
talks to tensorflow/serving and to modelserver/.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket

import grpc
import numpy as np

from service import tracing
from service.backends import ModelSpec, VersionState, VersionStatus
from service.config import BackendConfig
from service.context import REQUEST_ID_KEY, request_id
from service.errors import (
    BackendFailed,
    BackendUnavailable,
    DeadlineExceeded,
    GatewayError,
    ModelNotFound,
    Overloaded,
)
from tfs_subset.tensorflow.core.framework import tensor_pb2, types_pb2
from tfs_subset.tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    predict_view_pb2,
)

log = logging.getLogger(__name__)

# Large enough for any mask TF Serving may return for an image within the gateway's pixel limit.
MAX_BACKEND_MESSAGE_BYTES = 1 << 30
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"

# round_robin spreads calls over every address of the target and skips those that are down; UNAVAILABLE is
# retried by gRPC itself, quickly: a backend that is down must turn into an UNAVAILABLE answer within a second
# (backoffs of at most 0.05 + 0.1 + 0.2 + 0.3 s), not a hang. Five attempts (gRPC's most), because a retry can
# still be picked onto a target that has just died before round_robin has seen it go (a CI run under load saw
# three attempts run out that way).
_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [
                    {"service": "tensorflow.serving.PredictionService"},
                    {"service": "tensorflow.serving.ModelService"},
                ],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.3s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)

CHANNEL_OPTIONS = (
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    # gRPC retries a call only while all of it fits in this buffer (256 KiB by default, less than one Predict
    # request); the bytes are in memory anyway.
    ("grpc.per_rpc_retry_buffer_size", 64 << 20),
    ("grpc.max_send_message_length", MAX_BACKEND_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_BACKEND_MESSAGE_BYTES),
    # A restarted backend is found again within half a second instead of gRPC's default backoff of up to
    # 2 minutes; two connection attempts a second to a dead backend cost nothing worth saving.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)

_STATES = {
    get_model_status_pb2.ModelVersionStatus.State.START: VersionState.START,
    get_model_status_pb2.ModelVersionStatus.State.LOADING: VersionState.LOADING,
    get_model_status_pb2.ModelVersionStatus.State.AVAILABLE: VersionState.AVAILABLE,
    get_model_status_pb2.ModelVersionStatus.State.UNLOADING: VersionState.UNLOADING,
    get_model_status_pb2.ModelVersionStatus.State.END: VersionState.END,
}


def channel_target(targets: tuple[str, ...]) -> str:
    """One gRPC target for a backend's targets.

    One target goes to gRPC as it is (its DNS resolver re-resolves names). Several host:port entries become one
    static address list (`ipv4:a,b` or `ipv6:[a],[b]`), each name resolved once, now: gRPC's Python API has no
    resolver for a list of names. For pods that come and go, use one `dns:///` name instead.
    """
    if not targets:
        raise ValueError("a backend needs at least one target")
    if len(targets) == 1:
        return targets[0]
    families: dict[int, list[str]] = {socket.AF_INET: [], socket.AF_INET6: []}
    for target in targets:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve backend target {target}: {exc.strerror}") from exc
        found = {
            family: [str(ipaddress.ip_address(a[0])) for f, _, _, _, a in infos if f == family] for family in families
        }
        # A name with both kinds of address (localhost) counts as IPv4, what TF Serving listens on by default.
        family = socket.AF_INET if found[socket.AF_INET] else socket.AF_INET6
        for ip in found[family]:
            address = f"{ip}:{port}" if family == socket.AF_INET else f"[{ip}]:{port}"
            if address not in families[family]:
                families[family].append(address)
    if families[socket.AF_INET] and families[socket.AF_INET6]:
        raise OSError(f"backend targets {', '.join(targets)} mix IPv4 and IPv6 addresses; gRPC takes one kind a list")
    if families[socket.AF_INET]:
        return "ipv4:" + ",".join(families[socket.AF_INET])
    return "ipv6:" + ",".join(families[socket.AF_INET6])


def input_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto with the array's bytes in tensor_content (no per-element fields)."""
    dtypes = {np.dtype(np.uint8): types_pb2.DT_UINT8, np.dtype(np.float32): types_pb2.DT_FLOAT}
    if array.dtype not in dtypes:
        raise ValueError(f"cannot send a tensor of dtype {array.dtype}; use uint8 or float32")
    tensor = tensor_pb2.TensorProto(dtype=dtypes[array.dtype], tensor_content=np.ascontiguousarray(array).tobytes())
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


def predict_request(
    spec: ModelSpec, input_key: str, array: np.ndarray, output_keys: tuple[str, ...]
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(output_filter=output_keys)
    request.model_spec.name = spec.name
    request.model_spec.signature_name = spec.signature
    if spec.version is not None:
        request.model_spec.version.value = spec.version
    elif spec.version_label:
        request.model_spec.version_label = spec.version_label
    request.inputs[input_key].CopyFrom(input_tensor(array))
    return request


# dtype -> (numpy dtype, the typed field TF Serving fills when it does not use tensor_content)
_OUTPUT_DTYPES = {
    types_pb2.DT_INT64: ("<i8", "int64_val"),
    types_pb2.DT_INT32: ("<i4", "int_val"),
    types_pb2.DT_UINT8: ("u1", "int_val"),
    types_pb2.DT_FLOAT: ("<f4", "float_val"),
}


def output_array(tensor: tensor_pb2.TensorProto) -> np.ndarray:
    """The array a TensorProto holds, from tensor_content or its typed values; BackendFailed if it is unusable."""
    if tensor.dtype not in _OUTPUT_DTYPES:
        name = types_pb2.DataType.Name(tensor.dtype) if tensor.dtype in types_pb2.DataType.values() else tensor.dtype
        raise BackendFailed(f"the model returned a tensor of dtype {name}; expected int64, int32, uint8 or float")
    numpy_dtype, typed_field = _OUTPUT_DTYPES[tensor.dtype]
    shape = tuple(d.size for d in tensor.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise BackendFailed(f"the model returned a tensor of shape {shape}")
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, dtype=numpy_dtype)
    else:
        values = np.asarray(getattr(tensor, typed_field), dtype=numpy_dtype)
    if values.size != int(np.prod(shape)):
        raise BackendFailed(f"the model's output holds {values.size} values; its shape says {shape}")
    return values.reshape(shape)


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
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        # gRPC's own refusal of an answer over MAX_BACKEND_MESSAGE_BYTES: the backend answered something unusable.
        return BackendFailed(f"the model backend's answer for {what} is too large: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Overloaded(f"the model backend is overloaded ({details}); try again later")
    if code == grpc.StatusCode.CANCELLED:
        # The caller's own cancellation never gets here (it arrives as asyncio.CancelledError): the backend or
        # the channel cancelled the call.
        return BackendUnavailable(f"the model backend at {target} cancelled the call ({what}); try again later")
    return BackendFailed(f"the model backend failed for {what}: {code.name}: {details}")


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _call_metadata() -> list[tuple[str, str]]:
    """The caller's request id, sent on so that the backend's logs (or a proxy's) can be matched with ours, and
    the trace's context when tracing is on."""
    current = request_id.get()
    metadata = [(REQUEST_ID_KEY, current)] if current != "-" else []
    tracing.inject(metadata)
    return metadata


def view_array(tensor: predict_view_pb2.TensorView) -> np.ndarray:
    """output_array for the read view of a tensor: where the packed bytes are the values, they are used as they are.

    n class ids in n bytes of varints are n values below 128, one byte each; n floats are 4n bytes. Anything else
    (tensor_content, larger or negative ids, an unusual encoding, a bad dtype or shape) is read by output_array
    from the real TensorProto parsed from the same bytes, with the same checks.
    """
    numpy_dtype, typed_field = _OUTPUT_DTYPES.get(tensor.dtype, ("", ""))
    shape = tuple(d.size for d in tensor.tensor_shape.dim)
    if typed_field and not tensor.tensor_content and all(size >= 0 for size in shape):
        packed, count = getattr(tensor, typed_field), math.prod(shape)
        if typed_field == "float_val" and len(packed) == 4 * count:
            return np.frombuffer(packed, numpy_dtype).reshape(shape)
        if typed_field != "float_val" and len(packed) == count:
            return np.frombuffer(packed, np.uint8).reshape(shape)
    return output_array(tensor_pb2.TensorProto.FromString(tensor.SerializeToString()))


class TensorPrediction:
    """A Predict answer whose outputs are read on demand (it is CPU work: the caller runs it off the loop)."""

    def __init__(self, response: predict_view_pb2.PredictResponseView) -> None:
        self._response = response

    @property
    def version(self) -> int:
        return self._response.model_spec.version.value

    def output(self, key: str) -> np.ndarray:
        if key not in self._response.outputs:
            raise BackendFailed(f"the model's answer has no output {key!r}")
        return view_array(self._response.outputs[key])


class TFServingBackend:
    """TF Serving's PredictionService and ModelService over one channel, kept for the process's life."""

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name
        self.target = ",".join(config.targets)
        target = channel_target(config.targets)
        if config.ca:
            # Read once, when the channel is made (at start, or by a reload that changes this backend).
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(config.ca),
                private_key=_read(config.key) if config.key else None,
                certificate_chain=_read(config.cert) if config.cert else None,
            )
            self._channel = grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        # PredictionService/Predict, its answer parsed as the read view (predict_view.proto): the same bytes, with
        # the mask's packed values left undecoded until a worker thread reads them.
        self._predict = self._channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=predict_pb2.PredictRequest.SerializeToString,
            response_deserializer=predict_view_pb2.PredictResponseView.FromString,
        )
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    async def predict(
        self, spec: ModelSpec, input_key: str, tensor: np.ndarray, output_keys: tuple[str, ...], timeout: float
    ) -> TensorPrediction:
        request = predict_request(spec, input_key, tensor, output_keys)
        try:
            response = await self._predict(request, timeout=timeout, metadata=_call_metadata())
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, spec.describe()) from error
        except grpc.aio.UsageError as error:  # the channel was closed: the gateway is stopping
            raise BackendUnavailable(f"the channel to the model backend at {self.target} is closed") from error
        return TensorPrediction(response)

    async def model_status(self, name: str, timeout: float) -> list[VersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        try:
            response = await self._models.GetModelStatus(request, timeout=timeout, metadata=_call_metadata())
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, f"model {name!r}") from error
        except grpc.aio.UsageError as error:
            raise BackendUnavailable(f"the channel to the model backend at {self.target} is closed") from error
        return sorted(
            (
                VersionStatus(s.version, _STATES.get(s.state, VersionState.UNKNOWN), s.status.error_message)
                for s in response.model_version_status
            ),
            key=lambda s: s.version,
        )

    async def close(self) -> None:
        await self._channel.close()
