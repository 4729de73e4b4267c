"""service/backends/tfserving.py: TensorProtos out and in, and the read view of an answer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.backends import ModelSpec
from service.backends.tfserving import output_array, predict_request, view_array
from service.errors import BackendFailed
from service.mask.classes import class_mask
from tests import images
from tfs_subset.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tfs_subset.tensorflow_serving.apis import predict_pb2, predict_view_pb2


def test_pack_puts_the_pixels_in_tensor_content() -> None:
    rgb = cv2.cvtColor(images.bgr("chelsea.png"), cv2.COLOR_BGR2RGB)
    spec = ModelSpec("deeplab", "serving_default", version=3)
    request = predict_request(spec, "ImageTensor", rgb[np.newaxis], ("SemanticPredictions", "scores"))
    tensor = request.inputs["ImageTensor"]
    assert tensor.dtype == types_pb2.DT_UINT8
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 300, 451, 3]
    assert tensor.tensor_content == rgb.tobytes()
    assert not tensor.int_val
    assert list(request.output_filter) == ["SemanticPredictions", "scores"]
    assert request.model_spec.version.value == 3 and request.model_spec.signature_name == "serving_default"


def _tensor(mask: np.ndarray, dtype: int, typed: bool) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    for size in (1, *mask.shape):
        tensor.tensor_shape.dim.add(size=size)
    if typed:
        (tensor.int64_val if dtype == types_pb2.DT_INT64 else tensor.int_val).extend(mask.ravel().tolist())
    else:
        tensor.tensor_content = mask.astype("<i8" if dtype == types_pb2.DT_INT64 else "<i4").tobytes()
    return tensor


@pytest.mark.parametrize("dtype", [types_pb2.DT_INT64, types_pb2.DT_INT32], ids=["int64", "int32"])
@pytest.mark.parametrize("typed", [False, True], ids=["tensor_content", "typed-values"])
def test_unpack_accepts_int64_and_int32_in_either_encoding(dtype: int, typed: bool) -> None:
    mask = np.random.default_rng(0).integers(0, 21, size=(7, 9))
    out = class_mask(output_array(_tensor(mask, dtype, typed)), (7, 9))
    assert out.dtype == np.uint8 and np.array_equal(out, mask)


def test_unpack_refuses_the_wrong_shape_and_out_of_range_ids() -> None:
    mask = np.zeros((4, 4), dtype=np.int64)
    with pytest.raises(BackendFailed, match="shape"):
        class_mask(output_array(_tensor(mask, types_pb2.DT_INT64, False)), (4, 5))
    mask[0, 0] = 300
    with pytest.raises(BackendFailed, match=r"outside 0\.\.255"):
        class_mask(output_array(_tensor(mask, types_pb2.DT_INT64, False)), (4, 4))


_TYPED = {
    np.dtype("<i8"): (types_pb2.DT_INT64, "int64_val"),
    np.dtype("<i4"): (types_pb2.DT_INT32, "int_val"),
    np.dtype("u1"): (types_pb2.DT_UINT8, "int_val"),
    np.dtype("<f4"): (types_pb2.DT_FLOAT, "float_val"),
}


answers = st.sampled_from(list(_TYPED)).flatmap(
    lambda dtype: st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 3)).flatmap(
        lambda shape: arrays(
            dtype,
            shape,
            elements=st.floats(-1e6, 1e6, width=32)
            if dtype.kind == "f"
            # Mostly class ids below 128 (one byte each, the fast path), sometimes larger or negative ones.
            else st.one_of(st.integers(0, 127), st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))),
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(answers, st.booleans())
def test_the_read_view_of_an_answer_holds_what_the_real_tensor_holds(array: np.ndarray, as_content: bool) -> None:
    dtype, field = _TYPED[array.dtype]
    response = predict_pb2.PredictResponse()
    tensor = response.outputs["out"]
    tensor.dtype = dtype
    tensor.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape)
    if as_content:  # --enable_serialization_as_tensor_content
        tensor.tensor_content = array.tobytes()
    else:  # TF Serving's default: typed fields, packed
        getattr(tensor, field).extend(array.ravel().tolist())
    data = response.SerializeToString()
    expected = output_array(predict_pb2.PredictResponse.FromString(data).outputs["out"])
    seen = view_array(predict_view_pb2.PredictResponseView.FromString(data).outputs["out"])
    assert seen.shape == expected.shape == array.shape
    assert np.array_equal(seen, expected) and np.array_equal(seen, array)


def test_the_read_view_reads_unpacked_values_and_refuses_what_output_array_refuses() -> None:
    # Field 10 (int64_val) as three unpacked varints: legal protobuf, not what TF Serving writes.
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)])
    head = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_shape=shape).SerializeToString()
    tensor = head + bytes([0x50, 5, 0x50, 0x96, 0x01, 0x50, 7])  # 5, 150, 7
    response = predict_pb2.PredictResponse()
    response.outputs["out"].MergeFromString(tensor)
    view = predict_view_pb2.PredictResponseView.FromString(response.SerializeToString())
    assert view_array(view.outputs["out"]).tolist() == [5, 150, 7]
    bad = predict_view_pb2.TensorView(dtype=types_pb2.DT_STRING)
    with pytest.raises(BackendFailed, match="dtype DT_STRING"):
        view_array(bad)
