"""What the model answered, checked: the class ids at its size, and the scores behind them when it gives them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.config import Interface
from service.errors import BackendFailed, InvalidRequest
from service.image.bilinear import interpolate, taps
from service.profiles import OutputKind, Profile, Upscale

MAX_CLASSES = 256  # the mask is uint8


@dataclass(frozen=True)
class ScoreMap:
    """Per-class scores behind a model-size mask: at that size, or on a coarser grid that the model enlarges with
    aligned corners (DeepLab's logits at its output stride, 33 x 33 for 257 x 257)."""

    scores: np.ndarray  # (grid_h, grid_w, classes) float32
    height: int  # the model-size mask's
    width: int

    def at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """(n, classes) float32: the scores of model-size cells (ys[i], xs[i]), as the model computes them."""
        grid_h, grid_w = self.scores.shape[:2]
        if (grid_h, grid_w) == (self.height, self.width):
            return self.scores[ys, xs]
        rows, cols = taps(self.height, grid_h, align_corners=True), taps(self.width, grid_w, align_corners=True)
        top, bottom, left, right = rows.lower[ys], rows.upper[ys], cols.lower[xs], cols.upper[xs]
        corners = [self.scores[y, x] for y in (top, bottom) for x in (left, right)]
        return interpolate(corners, cols.lerp[xs][:, np.newaxis], rows.lerp[ys][:, np.newaxis])


@dataclass(frozen=True)
class ModelMask:
    """The model's answer at its own size: class ids, and the scores behind them when the model gives them."""

    classes: np.ndarray  # (h, w) uint8
    scores: ScoreMap | None = None


class Outputs(Protocol):
    def output(self, key: str) -> np.ndarray: ...


def model_mask(answer: Outputs, profile: Profile, interface: Interface, expected: tuple[int, int]) -> ModelMask:
    """The model's answer for a tensor of (h, w) = `expected`; BackendFailed if it is not what the profile says."""
    output = answer.output(interface.output_key)
    if profile.output == OutputKind.SCORES:
        scores = _scores(output, expected, same_size=True)
        deciding = ScoreMap(scores, *expected) if profile.upscale == Upscale.SCORES else None
        return ModelMask(np.argmax(scores, axis=2).astype(np.uint8), deciding)
    classes = class_mask(output, expected)
    if not interface.scores_key:
        return ModelMask(classes)
    return ModelMask(classes, ScoreMap(_scores(answer.output(interface.scores_key), expected), *expected))


def _scores(output: np.ndarray, expected: tuple[int, int], same_size: bool = False) -> np.ndarray:
    """(h, w, C) float32 scores from a [1, h, w, C] tensor at the mask's size, or (not `same_size`) coarser."""
    shape = output.shape[1:] if output.ndim == 4 and output.shape[0] == 1 else output.shape
    if len(shape) == 3 and same_size:
        fits = shape[:2] == expected
    else:
        fits = len(shape) == 3 and 1 <= shape[0] <= expected[0] and 1 <= shape[1] <= expected[1]
    if not fits:
        size = f"(h, w) = {expected}" if same_size else f"(h, w) at most {expected}"
        raise BackendFailed(
            f"the model returned scores of shape {list(output.shape)}; expected [1, h, w, classes] with {size}"
        )
    if not np.issubdtype(output.dtype, np.floating):
        raise BackendFailed(f"the model returned scores of dtype {output.dtype}; expected float")
    if not 0 < shape[2] <= MAX_CLASSES:
        raise BackendFailed(f"the model returned {shape[2]} classes; at most {MAX_CLASSES} are supported")
    return np.ascontiguousarray(output.reshape(shape), dtype=np.float32)


def class_mask(output: np.ndarray, expected: tuple[int, int]) -> np.ndarray:
    """A C-contiguous (h, w) uint8 mask from a [1, h, w] class-id tensor."""
    shape = output.shape[1:] if output.ndim == 3 and output.shape[0] == 1 else output.shape
    if len(shape) != 2 or shape != expected:
        raise BackendFailed(
            f"the model returned an output of shape {list(output.shape)}; expected [1, h, w] with (h, w) = {expected}"
        )
    values = output.reshape(shape)
    if not np.issubdtype(values.dtype, np.integer):
        raise BackendFailed(f"the model returned class ids of dtype {values.dtype}; expected integers")
    if values.dtype != np.uint8 and values.size and (values.min() < 0 or values.max() >= MAX_CLASSES):
        raise BackendFailed(f"the model's mask holds class ids outside 0..{MAX_CLASSES - 1}")
    return np.ascontiguousarray(values, dtype=np.uint8)


def named_classes(names: Sequence[str], labels: tuple[str, ...]) -> tuple[int, ...]:
    """The class ids a request names, each by its label or as a decimal id, in its order, once each."""
    ids: dict[int, None] = {}
    for name in names:
        if name.isdigit() and int(name) < MAX_CLASSES:
            ids[int(name)] = None
        elif name in labels:
            ids[labels.index(name)] = None
        else:
            known = ", ".join(labels) if labels else "none: the model has no labels"
            raise InvalidRequest(
                f"unknown class {name!r}: name a class by its label or its id (0 to {MAX_CLASSES - 1}); labels: {known}"
            )
    return tuple(ids)
