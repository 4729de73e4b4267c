"""Reading the class-id mask from the model's output tensor."""

from __future__ import annotations

import numpy as np

from service.errors import BackendFailed
from tfs_subset.tensorflow.core.framework import tensor_pb2, types_pb2

_DTYPES = {
    types_pb2.DT_INT64: ("<i8", "int64_val"),
    types_pb2.DT_INT32: ("<i4", "int_val"),
    types_pb2.DT_UINT8: ("u1", "int_val"),
}


def mask_from_tensor(tensor: tensor_pb2.TensorProto, expected: tuple[int, int]) -> np.ndarray:
    """A (h, w) uint8 mask from a [1, h, w] or [h, w] int64/int32/uint8 tensor, in tensor_content or typed values."""
    if tensor.dtype not in _DTYPES:
        raise BackendFailed(f"the model returned a mask of dtype {tensor.dtype}; expected int64, int32 or uint8")
    numpy_dtype, typed_field = _DTYPES[tensor.dtype]
    shape = tuple(d.size for d in tensor.tensor_shape.dim)
    if shape[:1] == (1,) and len(shape) == 3:
        shape = shape[1:]
    if shape != expected:
        raise BackendFailed(f"the model returned a mask of shape {shape}; expected {expected} for its input")
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, dtype=numpy_dtype)
    else:
        values = np.asarray(getattr(tensor, typed_field), dtype=numpy_dtype)
    if values.size != expected[0] * expected[1]:
        raise BackendFailed(f"the model's mask holds {values.size} values; its shape says {expected}")
    if values.dtype != np.uint8 and values.size and (values.min() < 0 or values.max() > 255):
        raise BackendFailed("the model's mask holds class ids outside 0..255")
    return values.astype(np.uint8, copy=False).reshape(expected)
