"""Properties over random masks and sizes (hypothesis): what the gateway encodes, the client decodes, exactly;
the model-size mask maps to any size by nearest pixel centre; statistics match a brute-force count; the read view
of a backend's answer holds what the real TensorProto holds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation_client.masks import decode_mask
from service.backends.tfserving import output_array, view_array
from service.errors import BackendFailed
from service.mask.encode import encode_png, encode_raw, run_lengths
from service.mask.grid import MaskGrid, expand, grid_for, repeats
from service.mask.statistics import class_statistics
from tfs_subset.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tfs_subset.tensorflow_serving.apis import predict_pb2, predict_view_pb2

small_masks = st.integers(1, 24).flatmap(
    lambda h: st.integers(1, 24).flatmap(
        lambda w: arrays(np.uint8, (h, w), elements=st.sampled_from([0, 0, 0, 8, 15, 255]))
    )
)

pytestmark = pytest.mark.unit  # make test-unit: in-process, nothing but the venv
sizes = st.integers(1, 80)


def grids() -> st.SearchStrategy[MaskGrid]:
    return st.builds(grid_for, small_masks, sizes, sizes)


@settings(max_examples=150, deadline=None)
@given(grids())
def test_png_raw_and_rle_round_trip_through_the_client_exactly(grid: MaskGrid) -> None:
    full = expand(grid)
    values, counts = run_lengths(grid)
    encoded = [
        pb.Mask(width=grid.width, height=grid.height, format=pb.MASK_FORMAT_PNG, data=encode_png(grid)),
        pb.Mask(width=grid.width, height=grid.height, format=pb.MASK_FORMAT_RAW, data=encode_raw(grid)),
        pb.Mask(
            width=grid.width,
            height=grid.height,
            format=pb.MASK_FORMAT_RLE,
            rle=pb.RunLengths(values=values.tolist(), counts=counts.tolist()),
        ),
    ]
    for mask in encoded:
        assert np.array_equal(decode_mask(mask), full), pb.MaskFormat.Name(mask.format)
    assert (counts > 0).all() and (values[1:] != values[:-1]).all()


@settings(max_examples=200, deadline=None)
@given(small_masks, sizes, sizes)
def test_the_model_size_mask_maps_to_any_size_by_nearest_pixel_centre(
    small: np.ndarray, width: int, height: int
) -> None:
    grid = grid_for(small, width, height)
    h, w = small.shape
    assert repeats(h, height).sum() == height and repeats(w, width).sum() == width
    full = expand(grid)
    assert full.shape == (height, width)
    # Output pixel (y, x) takes the source pixel whose area holds its centre.
    rows = ((2 * np.arange(height) + 1) * h) // (2 * height)
    cols = ((2 * np.arange(width) + 1) * w) // (2 * width)
    assert np.array_equal(full, small[rows][:, cols])


@settings(max_examples=150, deadline=None)
@given(grids())
def test_statistics_equal_a_brute_force_count_of_the_full_mask(grid: MaskGrid) -> None:
    full = expand(grid)
    stats = {s.class_id: s for s in class_statistics(grid)}
    present = np.unique(full)
    assert sorted(stats) == present.tolist()
    for class_id in present:
        ys, xs = np.nonzero(full == class_id)
        s = stats[int(class_id)]
        assert s.pixel_count == ys.size and s.fraction == ys.size / full.size
        assert (s.x, s.y, s.width, s.height) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


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
