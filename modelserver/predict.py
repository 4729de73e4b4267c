"""Predict and GetModelMetadata, as TF Serving answers them. Blocking: run these off the event loop.

The gRPC and the REST API share the checks and the run; they differ only in how inputs arrive (TensorProtos or
JSON) and outputs leave (tensors.py or json_tensor.py), as TF Serving's REST handler builds a PredictRequest and
calls the same predictor (model_servers/http_rest_api_handler.cc:152-178).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from modelserver.errors import ServingError, invalid
from modelserver.models import LoadedVersion
from modelserver.registry import ModelRegistry
from modelserver.tensors import dtype_name, fill_tensor

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"


def _keys(mapping: Iterable[str]) -> str:
    return ",".join(sorted(mapping))


def signature_def(loaded: LoadedVersion, name: str) -> meta_graph_pb2.SignatureDef:
    signature = loaded.signature_defs.get(name)
    if signature is None:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
    return signature


def _check_shape(alias: str, array: np.ndarray, info: meta_graph_pb2.TensorInfo) -> np.ndarray:
    shape = info.tensor_shape
    if not shape.unknown_rank:
        expected = [d.size for d in shape.dim]
        fits = len(expected) == array.ndim and all(e in (-1, a) for e, a in zip(expected, array.shape, strict=True))
        if not fits:
            wanted = "[" + ",".join("?" if e == -1 else str(e) for e in expected) + "]"
            raise invalid(f"input {alias} has shape {list(array.shape)}, but the signature expects {wanted}")
    return array


def _decode(alias: str, position: int, tensor: tensor_pb2.TensorProto, info: meta_graph_pb2.TensorInfo) -> np.ndarray:
    if tensor.dtype != info.dtype:
        raise invalid(
            f"Expects arg[{position}] to be {dtype_name(info.dtype)} but {dtype_name(tensor.dtype)} is provided"
        )
    try:
        array = tf.make_ndarray(tensor)
    except Exception as exc:
        raise invalid(f"tensor parsing error: {alias}") from exc
    return _check_shape(alias, array, info)


def _check_aliases(model: str, signature: meta_graph_pb2.SignatureDef, aliases: Iterable[str]) -> None:
    given = set(aliases)
    for alias in sorted(given):
        if alias not in signature.inputs:
            raise invalid(
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{_keys(signature.inputs)}}}."
            )
    missing = sorted(set(signature.inputs) - given)
    if missing:
        raise invalid(
            f"Request inputs do not match required inputs for model `{model}`. "
            f"Send extra: {{}}. Missing but required: {{{','.join(missing)}}}."
        )


def _run(
    loaded: LoadedVersion,
    signature: meta_graph_pb2.SignatureDef,
    feeds: Mapping[str, np.ndarray],
    output_filter: Iterable[str],
) -> dict[str, np.ndarray]:
    """PreProcessPrediction's output selection (servables/tensorflow/predict_util.cc:131-161), then the run."""
    aliases: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{_keys(signature.outputs)}}}."
            )
        if alias in aliases:
            raise invalid(f"duplicate output tensor alias: {alias}")
        aliases.append(alias)
    aliases = aliases or sorted(signature.outputs)
    inputs = {signature.inputs[alias].name: array for alias, array in feeds.items()}
    try:
        values = loaded.session.run([signature.outputs[a].name for a in aliases], feed_dict=inputs)
    except tf.errors.OpError as exc:
        raise ServingError(_grpc_code(exc.error_code), exc.message) from exc
    return dict(zip(aliases, values, strict=True))


def predict(
    registry: ModelRegistry, request: predict_pb2.PredictRequest, as_tensor_content: bool
) -> predict_pb2.PredictResponse:
    """PredictionService.Predict; outputs in typed fields, or in tensor_content with the server's flag."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    spec = request.model_spec
    signature_name = spec.signature_name or DEFAULT_SIGNATURE
    with registry.acquire(spec) as (model, loaded):
        signature = signature_def(loaded, signature_name)
        _check_aliases(model.name, signature, request.inputs)
        feeds = {
            alias: _decode(alias, i, request.inputs[alias], signature.inputs[alias])
            for i, alias in enumerate(sorted(request.inputs))
        }
        outputs = _run(loaded, signature, feeds, request.output_filter)
        version = loaded.version
    response = predict_pb2.PredictResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature_name
    for alias, value in outputs.items():
        fill_tensor(response.outputs[alias], value, as_tensor_content)
    return response


def predict_arrays(
    model: str, loaded: LoadedVersion, signature_name: str, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Predict for arrays already of the signature's dtypes (the REST API's inputs); the outputs as arrays."""
    signature = signature_def(loaded, signature_name or DEFAULT_SIGNATURE)
    _check_aliases(model, signature, inputs)
    feeds = {alias: _check_shape(alias, array, signature.inputs[alias]) for alias, array in inputs.items()}
    return _run(loaded, signature, feeds, ())


def _grpc_code(error_code: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == error_code:
            return code
    return grpc.StatusCode.UNKNOWN


def get_model_metadata(
    registry: ModelRegistry, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for name in request.metadata_field:
        if name != SIGNATURE_DEF_FIELD:
            raise invalid(f"Metadata field {name} is not supported")
    with registry.acquire(request.model_spec) as (model, loaded):
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in loaded.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = loaded.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response
