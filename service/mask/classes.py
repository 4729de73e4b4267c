"""The class-id mask from the model's output: class ids as they are, or the argmax of per-class scores."""

from __future__ import annotations

import numpy as np

from service.config import OutputKind
from service.errors import BackendFailed

MAX_CLASSES = 256  # the mask is uint8


def class_mask(output: np.ndarray, kind: OutputKind, expected: tuple[int, int]) -> np.ndarray:
    """A C-contiguous (h, w) uint8 mask from a [1, h, w] class-id or [1, h, w, C] score tensor."""
    rank = 2 if kind == OutputKind.CLASS_IDS else 3
    shape = output.shape[1:] if output.ndim == rank + 1 and output.shape[0] == 1 else output.shape
    if len(shape) != rank or shape[:2] != expected:
        wanted = "[1, h, w]" if kind == OutputKind.CLASS_IDS else "[1, h, w, classes]"
        raise BackendFailed(
            f"the model returned an output of shape {list(output.shape)}; expected {wanted} with (h, w) = {expected}"
        )
    values = output.reshape(shape)
    if kind == OutputKind.SCORES:
        if not np.issubdtype(values.dtype, np.floating):
            raise BackendFailed(f"the model returned scores of dtype {values.dtype}; expected float")
        if not 0 < shape[2] <= MAX_CLASSES:
            raise BackendFailed(f"the model returned {shape[2]} classes; at most {MAX_CLASSES} are supported")
        return np.argmax(values, axis=2).astype(np.uint8)
    if not np.issubdtype(values.dtype, np.integer):
        raise BackendFailed(f"the model returned class ids of dtype {values.dtype}; expected integers")
    if values.dtype != np.uint8 and values.size and (values.min() < 0 or values.max() >= MAX_CLASSES):
        raise BackendFailed(f"the model's mask holds class ids outside 0..{MAX_CLASSES - 1}")
    return np.ascontiguousarray(values, dtype=np.uint8)
