"""TensorFlow Serving over gRPC: one balanced channel per backend, TensorProto packing, model status, errors.

Only TF Serving's public API is used (PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus),
so the same code talks to tensorflow/serving and to modelserver/.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import grpc
import numpy as np

from service.backends import ModelSpec, ModelTensors, TensorInfo, VersionState, VersionStatus
from service.backends.channel import call_metadata, closed, open_channel, translate
from service.errors import BackendFailed
from tfs_subset.tensorflow.core.framework import tensor_pb2, types_pb2
from tfs_subset.tensorflow.core.protobuf import meta_graph_pb2
from tfs_subset.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    predict_view_pb2,
)

if TYPE_CHECKING:
    from service.config import BackendConfig

log = logging.getLogger(__name__)

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
# TensorFlow's data types in the Open Inference Protocol's names, which the gateway's checks use.
_DATATYPES = {
    types_pb2.DT_FLOAT: "FP32",
    types_pb2.DT_DOUBLE: "FP64",
    types_pb2.DT_HALF: "FP16",
    types_pb2.DT_BFLOAT16: "BF16",
    types_pb2.DT_INT8: "INT8",
    types_pb2.DT_INT16: "INT16",
    types_pb2.DT_INT32: "INT32",
    types_pb2.DT_INT64: "INT64",
    types_pb2.DT_UINT8: "UINT8",
    types_pb2.DT_UINT16: "UINT16",
    types_pb2.DT_UINT32: "UINT32",
    types_pb2.DT_UINT64: "UINT64",
    types_pb2.DT_BOOL: "BOOL",
    types_pb2.DT_STRING: "BYTES",
}
SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")

_STATES = {
    get_model_status_pb2.ModelVersionStatus.State.START: VersionState.START,
    get_model_status_pb2.ModelVersionStatus.State.LOADING: VersionState.LOADING,
    get_model_status_pb2.ModelVersionStatus.State.AVAILABLE: VersionState.AVAILABLE,
    get_model_status_pb2.ModelVersionStatus.State.UNLOADING: VersionState.UNLOADING,
    get_model_status_pb2.ModelVersionStatus.State.END: VersionState.END,
}


_INPUT_DTYPES = {np.dtype(np.uint8): types_pb2.DT_UINT8, np.dtype(np.float32): types_pb2.DT_FLOAT}


def fill_input(tensor: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """The array's bytes in `tensor`'s tensor_content (no per-element fields), filled in place: the request's own
    TensorProto, so that the 0.8 MB of a 1080p call's pixels are not copied once more into it."""
    if array.dtype not in _INPUT_DTYPES:
        raise ValueError(f"cannot send a tensor of dtype {array.dtype}; use uint8 or float32")
    tensor.dtype = _INPUT_DTYPES[array.dtype]
    tensor.tensor_content = np.ascontiguousarray(array).tobytes()
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)


def signature_tensors(signature: meta_graph_pb2.SignatureDef) -> ModelTensors:
    """A signature's inputs and outputs by their aliases, in the gateway's terms."""

    def info(alias: str, tensor: meta_graph_pb2.TensorInfo) -> TensorInfo:
        shape = None if tensor.tensor_shape.unknown_rank else tuple(d.size for d in tensor.tensor_shape.dim)
        datatype = _DATATYPES.get(tensor.dtype) or types_pb2.DataType.Name(tensor.dtype)
        return TensorInfo(name=alias, datatype=datatype, shape=shape)

    return ModelTensors(
        inputs=tuple(info(alias, t) for alias, t in sorted(signature.inputs.items())),
        outputs=tuple(info(alias, t) for alias, t in sorted(signature.outputs.items())),
    )


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
    fill_input(request.inputs[input_key], array)
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

    kind = "tfserving"  # its entry in kinds.KINDS

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name
        self.target = ",".join(config.targets)
        self._channel = open_channel(config, SERVICES)
        # PredictionService/Predict, its answer parsed as the read view (predict_view.proto): the same bytes, with
        # the mask's packed values left undecoded until a worker thread reads them.
        self._predict = self._channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=predict_pb2.PredictRequest.SerializeToString,
            response_deserializer=predict_view_pb2.PredictResponseView.FromString,
        )
        self._metadata = self._channel.unary_unary(
            METADATA_METHOD,
            request_serializer=get_model_metadata_pb2.GetModelMetadataRequest.SerializeToString,
            response_deserializer=get_model_metadata_pb2.GetModelMetadataResponse.FromString,
        )
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    async def predict(
        self, spec: ModelSpec, input_key: str, tensor: np.ndarray, output_keys: tuple[str, ...], timeout: float
    ) -> TensorPrediction:
        request = predict_request(spec, input_key, tensor, output_keys)
        try:
            response = await self._predict(request, timeout=timeout, metadata=call_metadata())
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, spec.describe()) from error
        except grpc.aio.UsageError as error:
            raise closed(self.target) from error
        return TensorPrediction(response)

    async def model_status(self, name: str, timeout: float) -> list[VersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        try:
            response = await self._models.GetModelStatus(request, timeout=timeout, metadata=call_metadata())
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, f"model {name!r}") from error
        except grpc.aio.UsageError as error:
            raise closed(self.target) from error
        return sorted(
            (
                VersionStatus(s.version, _STATES.get(s.state, VersionState.UNKNOWN), s.status.error_message)
                for s in response.model_version_status
            ),
            key=lambda s: s.version,
        )

    async def signatures(self, name: str, timeout: float) -> dict[str, ModelTensors] | None:
        """The signatures of the model's latest version, from GetModelMetadata's signature_def."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = name
        try:
            response = await self._metadata(request, timeout=timeout, metadata=call_metadata())
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None  # a server of TF Serving's API that does not describe its models
            raise translate(error, self.target, f"model {name!r}") from error
        except grpc.aio.UsageError as error:
            raise closed(self.target) from error
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(signature_map):
            return None
        return {key: signature_tensors(signature) for key, signature in signature_map.signature_def.items()}

    async def close(self) -> None:
        await self._channel.close()
