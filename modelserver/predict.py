"""Predict and GetModelMetadata, as TF Serving answers them. Blocking: run these off the event loop."""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from modelserver.errors import ServingError, invalid
from modelserver.models import LoadedVersion, ModelRegistry

DEFAULT_SIGNATURE = "serving_default"


def _keys(mapping: object) -> str:
    return ",".join(sorted(mapping))  # type: ignore[call-overload]


def _signature(loaded: LoadedVersion, name: str) -> meta_graph_pb2.SignatureDef:
    signature = loaded.signature_defs.get(name)
    if signature is None:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
    return signature


# TensorFlow's C++ names, which TF Serving's messages use, where they differ from Python's.
_CPP_DTYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}


def _dtype_name(dtype: int) -> str:
    try:
        name = tf.dtypes.as_dtype(dtype).name
    except TypeError:
        return f"DataType({dtype})"
    return _CPP_DTYPE_NAMES.get(name, name)


def _feed(alias: str, position: int, proto: object, info: meta_graph_pb2.TensorInfo) -> np.ndarray:
    tensor = proto  # tensorflow.TensorProto
    if tensor.dtype != info.dtype:  # type: ignore[attr-defined]
        raise invalid(
            f"Expects arg[{position}] to be {_dtype_name(info.dtype)} but {_dtype_name(tensor.dtype)} is provided"  # type: ignore[attr-defined]
        )
    try:
        array = tf.make_ndarray(tensor)
    except Exception as exc:
        raise invalid(f"tensor parsing error: {alias}") from exc
    shape = info.tensor_shape
    if not shape.unknown_rank:
        expected = [d.size for d in shape.dim]
        fits = len(expected) == array.ndim and all(e in (-1, a) for e, a in zip(expected, array.shape, strict=True))
        if not fits:
            wanted = "[" + ",".join("?" if e == -1 else str(e) for e in expected) + "]"
            raise invalid(f"input {alias} has shape {list(array.shape)}, but the signature expects {wanted}")
    return array


def predict(registry: ModelRegistry, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    spec = request.model_spec
    model = registry.get(spec)
    signature_name = spec.signature_name or DEFAULT_SIGNATURE
    with model.acquire(spec) as loaded:
        signature = _signature(loaded, signature_name)
        for alias in request.inputs:
            if alias not in signature.inputs:
                raise invalid(
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {{{_keys(signature.inputs)}}}."
                )
        missing = sorted(set(signature.inputs) - set(request.inputs))
        if missing:
            raise invalid(
                f"Request inputs do not match required inputs for model `{model.name}`. "
                f"Send extra: {{}}. Missing but required: {{{','.join(missing)}}}."
            )
        feeds = {
            signature.inputs[alias].name: _feed(alias, i, request.inputs[alias], signature.inputs[alias])
            for i, alias in enumerate(sorted(request.inputs))
        }
        for alias in request.output_filter:
            if alias not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {{{_keys(signature.outputs)}}}."
                )
        aliases = list(dict.fromkeys(request.output_filter)) or sorted(signature.outputs)
        try:
            values = loaded.session.run([signature.outputs[a].name for a in aliases], feed_dict=feeds)
        except tf.errors.OpError as exc:
            raise ServingError(grpc.StatusCode(_grpc_code(exc.error_code)), exc.message) from exc
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature_name
    for alias, value in zip(aliases, values, strict=True):
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return response


def _grpc_code(error_code: int) -> tuple[int, str]:
    for code in grpc.StatusCode:
        if code.value[0] == error_code:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def get_model_metadata(
    registry: ModelRegistry, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for name in request.metadata_field:
        if name != "signature_def":
            raise invalid(f"Metadata field {name} is not supported")
    model = registry.get(request.model_spec)
    with model.acquire(request.model_spec) as loaded:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in loaded.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = loaded.version
    response.metadata["signature_def"].Pack(signature_map)
    return response
