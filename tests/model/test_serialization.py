"""Predict outputs serialised as TF Serving serialises them: typed repeated fields by default (Tensor::AsProtoField),
tensor_content with --enable_serialization_as_tensor_content=true (Tensor::AsProtoTensorContent)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from modelserver.tensors import fill_tensor
from tests.model.client import Client
from tests.model.processes import RestServer, start_with_rest
from tests.paths import CAT, IMAGES

# The typed field TensorFlow's ProtoHelper table (tensorflow/core/framework/tensor.cc) uses for each dtype.
TYPED_FIELDS = [
    (np.float32, types_pb2.DT_FLOAT, "float_val"),
    (np.float64, types_pb2.DT_DOUBLE, "double_val"),
    (np.int32, types_pb2.DT_INT32, "int_val"),
    (np.uint8, types_pb2.DT_UINT8, "int_val"),
    (np.int16, types_pb2.DT_INT16, "int_val"),
    (np.int8, types_pb2.DT_INT8, "int_val"),
    (np.uint16, types_pb2.DT_UINT16, "int_val"),
    (np.int64, types_pb2.DT_INT64, "int64_val"),
    (np.uint32, types_pb2.DT_UINT32, "uint32_val"),
    (np.uint64, types_pb2.DT_UINT64, "uint64_val"),
    (np.bool_, types_pb2.DT_BOOL, "bool_val"),
    (np.complex64, types_pb2.DT_COMPLEX64, "scomplex_val"),
    (np.complex128, types_pb2.DT_COMPLEX128, "dcomplex_val"),
    (np.float16, types_pb2.DT_HALF, "half_val"),
]


def _sample(dtype: type) -> np.ndarray:
    """Values that exercise the encoding: extremes, negatives, multi-byte varints."""
    kind = np.dtype(dtype)
    if kind.kind == "b":
        return np.array([[True, False, True], [False, False, True]])
    if kind.kind in "iu":
        info = np.iinfo(kind)
        return np.array([info.min, info.max, 0, 1, min(128, info.max), -1 if info.min else 7], dtype=kind).reshape(2, 3)
    if kind.kind == "c":
        return np.array([[1 + 2j, -3.5 - 0.25j, 0], [1e-3j, 7, -1]], dtype=kind)
    return np.array([[0.2, -1.5, 1e-7], [3e4, -0.0, 65504]], dtype=kind)


def _naive(array: np.ndarray, dtype: int, field: str) -> tensor_pb2.TensorProto:
    """The same message built field by field, as the C++ Fill does it."""
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    flat = array.ravel()
    if flat.dtype.kind == "c":
        values = flat.view(flat.real.dtype).tolist()
    elif flat.dtype == np.float16:
        values = flat.view(np.uint16).tolist()
    else:
        values = flat.tolist()
    getattr(tensor, field).extend(values)
    return tensor


@pytest.mark.parametrize(("numpy_dtype", "dtype", "field"), TYPED_FIELDS, ids=lambda v: getattr(v, "__name__", v))
def test_typed_fields_are_tensorflows_as_proto_field(numpy_dtype: type, dtype: int, field: str) -> None:
    array = _sample(numpy_dtype)
    tensor = tensor_pb2.TensorProto()
    fill_tensor(tensor, array, as_tensor_content=False)
    assert tensor.dtype == dtype
    assert [d.size for d in tensor.tensor_shape.dim] == [2, 3]
    assert not tensor.tensor_content
    assert [f.name for f, _ in tensor.ListFields()] == ["dtype", "tensor_shape", field]
    # Byte for byte the message the field-by-field build gives: the packed encoding is protobuf's own.
    assert tensor.SerializeToString() == _naive(array, dtype, field).SerializeToString()
    np.testing.assert_array_equal(tf.make_ndarray(tensor), array)


@pytest.mark.parametrize(("numpy_dtype", "dtype", "field"), TYPED_FIELDS, ids=lambda v: getattr(v, "__name__", v))
def test_tensor_content_is_tensorflows_as_proto_tensor_content(numpy_dtype: type, dtype: int, field: str) -> None:
    array = _sample(numpy_dtype)
    tensor = tensor_pb2.TensorProto()
    fill_tensor(tensor, array, as_tensor_content=True)
    # tf.io.serialize_tensor is TensorFlow's own Tensor::AsProtoTensorContent.
    expected = tensor_pb2.TensorProto.FromString(tf.io.serialize_tensor(tf.constant(array)).numpy())
    assert tensor == expected
    assert not getattr(tensor, field)


def test_strings_use_string_val_or_tensorflows_string_list_encoding() -> None:
    array = np.array([[b"ab", b""], [b"\x00\xff", b"x" * 300]], dtype=object)
    typed = tensor_pb2.TensorProto()
    fill_tensor(typed, array, as_tensor_content=False)
    assert typed.dtype == types_pb2.DT_STRING and list(typed.string_val) == array.ravel().tolist()
    content = tensor_pb2.TensorProto()
    fill_tensor(content, array, as_tensor_content=True)
    # Helper<tstring>::Encode, port::EncodeStringList: every length as a varint32, then the bytes. (TensorFlow's
    # serialize_tensor op writes strings with AsProtoField, so it is no reference here.)
    assert not content.string_val
    assert content.tensor_content == b"\x02\x00\x02\xac\x02" + b"ab\x00\xff" + b"x" * 300


def test_scalars_and_empty_tensors() -> None:
    scalar = tensor_pb2.TensorProto()
    fill_tensor(scalar, np.array(-7, dtype=np.int64), as_tensor_content=False)
    assert not scalar.tensor_shape.dim and list(scalar.int64_val) == [-7]
    empty = tensor_pb2.TensorProto()
    fill_tensor(empty, np.zeros((0, 4), dtype=np.float32), as_tensor_content=False)
    assert [d.size for d in empty.tensor_shape.dim] == [0, 4] and not empty.float_val and not empty.tensor_content


@pytest.fixture(scope="module")
def servers(servable_base: pathlib.Path) -> Iterator[dict[str, RestServer]]:
    default = start_with_rest("--model_name=deeplab", f"--model_base_path={servable_base}")
    content = start_with_rest(
        "--model_name=deeplab",
        f"--model_base_path={servable_base}",
        "--enable_serialization_as_tensor_content=true",
    )
    yield {"default": default, "tensor_content": content}
    default.stop()
    content.stop()


def _predict(server: RestServer, image: np.ndarray) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "deeplab"
    request.inputs["ImageTensor"].CopyFrom(tf.make_tensor_proto(image[np.newaxis]))
    return Client(server.target).predictions.Predict(request, timeout=60)


def test_by_default_the_mask_comes_back_in_int64_val_and_with_the_flag_in_tensor_content(
    servers: dict[str, RestServer],
) -> None:
    image = cv2.cvtColor(cv2.imread(str(IMAGES / "chelsea.png")), cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    typed = _predict(servers["default"], image).outputs["SemanticPredictions"]
    content = _predict(servers["tensor_content"], image).outputs["SemanticPredictions"]
    for tensor in (typed, content):
        assert tensor.dtype == types_pb2.DT_INT64
        assert [d.size for d in tensor.tensor_shape.dim] == [1, height, width]
    assert not typed.tensor_content and len(typed.int64_val) == height * width
    assert not content.int64_val and len(content.tensor_content) == 8 * height * width
    mask = tf.make_ndarray(typed)
    np.testing.assert_array_equal(mask, tf.make_ndarray(content))
    assert float((mask == CAT).mean()) > 0.7
    # Class ids below 128 are one byte each as packed varints: about 1 byte a pixel on the wire, 8 as content.
    assert typed.ByteSize() < 1.01 * height * width < content.ByteSize() / 7


def test_rest_answers_do_not_depend_on_the_flag(servers: dict[str, RestServer]) -> None:
    """Here REST JSON is made from the output arrays. (TF Serving's reads the typed fields, which the flag leaves
    empty: util/json_tensor.cc:888-950; nothing should rely on REST with the flag on.)"""
    image = cv2.resize(cv2.cvtColor(cv2.imread(str(IMAGES / "chelsea.png")), cv2.COLOR_BGR2RGB), (96, 64))
    body = json.dumps({"instances": [image.tolist()]})
    answers = {name: server.request("POST", "/v1/models/deeplab:predict", body) for name, server in servers.items()}
    assert answers["default"] == answers["tensor_content"]
    assert answers["default"][0] == 200
