"""A fake model backend for in-process tests of the router and pipeline: fast, no TensorFlow, no subprocess.

The real TF Serving path is covered end to end by the tests that start modelserver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.backends import ModelSpec, VersionState, VersionStatus
from service.errors import BackendUnavailable

Answer = Callable[[ModelSpec, np.ndarray], np.ndarray]


def bright_is_person(spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
    """Class ids [1, h, w] int64: 15 (person) where the pixel's mean is above the middle, else 0."""
    middle = 127.5 if tensor.dtype == np.uint8 else 0.0  # float inputs are scaled around 0 in these tests
    return (tensor[..., :3].mean(axis=-1) > middle).astype(np.int64) * 15


def scores_of(class_ids: Answer, classes: int = 21) -> Answer:
    """The same answer as per-class float32 scores [1, h, w, classes], highest at the class id."""

    def answer(spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
        ids = class_ids(spec, tensor)
        scores = np.random.default_rng(0).random((*ids.shape, classes), dtype=np.float32)
        np.put_along_axis(scores, ids[..., np.newaxis], 2.0, axis=-1)
        return scores

    return answer


@dataclass(frozen=True)
class FakePrediction:
    version: int
    array: np.ndarray

    def output(self) -> np.ndarray:
        return self.array


@dataclass(frozen=True)
class Call:
    spec: ModelSpec
    input_key: str
    tensor: np.ndarray
    output_key: str
    timeout: float


@dataclass
class FakeBackend:
    name: str = "fake"
    target: str = "fake:0"
    answer: Answer = bright_is_person
    versions: list[VersionStatus] = field(default_factory=lambda: [VersionStatus(1, VersionState.AVAILABLE)])
    delay_s: float = 0.0
    down: bool = False
    closed: bool = False
    calls: list[Call] = field(default_factory=list)

    async def predict(
        self, spec: ModelSpec, input_key: str, tensor: np.ndarray, output_key: str, timeout: float
    ) -> FakePrediction:
        self.calls.append(Call(spec, input_key, tensor, output_key, timeout))
        if self.down:
            raise BackendUnavailable(f"the model backend at {self.target} is unavailable (fake); try again later")
        await asyncio.sleep(self.delay_s)
        version = spec.version if spec.version is not None else max(v.version for v in self.versions)
        return FakePrediction(version, self.answer(spec, tensor))

    async def model_status(self, name: str, timeout: float) -> list[VersionStatus]:
        if self.down:
            raise BackendUnavailable(f"the model backend at {self.target} is unavailable (fake)")
        return list(self.versions)

    async def close(self) -> None:
        self.closed = True
