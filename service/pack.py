"""Packing the model input into a TF Serving PredictRequest, straight from the array's bytes."""

from __future__ import annotations

import numpy as np

from service.config import ModelConfig
from tfs_subset.tensorflow.core.framework import tensor_pb2, types_pb2
from tfs_subset.tensorflow_serving.apis import predict_pb2


def image_tensor(rgb: np.ndarray) -> tensor_pb2.TensorProto:
    """A DT_UINT8 [1, h, w, 3] tensor with the pixels in tensor_content (no per-element fields)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (h, w, 3) uint8, got {rgb.shape} {rgb.dtype}")
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_content=np.ascontiguousarray(rgb).tobytes())
    for size in (1, *rgb.shape):
        tensor.tensor_shape.dim.add(size=size)
    return tensor


def predict_request(
    rgb: np.ndarray,
    model: ModelConfig,
    version: int | None = None,
    version_label: str | None = None,
    signature: str | None = None,
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(output_filter=[model.output_key])
    request.model_spec.name = model.name
    request.model_spec.signature_name = signature or model.signature
    if version is not None:
        request.model_spec.version.value = version
    elif version_label:
        request.model_spec.version_label = version_label
    request.inputs[model.input_key].CopyFrom(image_tensor(rgb))
    return request
