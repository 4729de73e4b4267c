"""Fakes for fast tests: a model backend for the router and pipeline in-process, and a TF Serving on loopback that
answers what a test wants. No TensorFlow, no subprocess.

The real TF Serving path is covered end to end by the tests that start modelserver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import numpy as np

from service.backends import ModelSpec, ModelTensors, VersionState, VersionStatus
from service.context import request_id
from service.errors import BackendFailed, BackendUnavailable
from tfs_subset.tensorflow.core.framework import types_pb2
from tfs_subset.tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

# A fake model: one output's array, or several outputs' arrays by alias.
Answer = Callable[[ModelSpec, np.ndarray], "np.ndarray | dict[str, np.ndarray]"]


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
    outputs: dict[str, np.ndarray]

    def output(self, key: str) -> np.ndarray:
        if key not in self.outputs:  # as the real answer without that output
            raise BackendFailed(f"the model's answer has no output {key!r}")
        return self.outputs[key]


@dataclass(frozen=True)
class Call:
    spec: ModelSpec
    input_key: str
    tensor: np.ndarray
    output_keys: tuple[str, ...]
    timeout: float
    request_id: str = ""  # the call's, as the real backend sends it on


@dataclass
class FakeBackend:
    name: str = "fake"
    target: str = "fake:0"
    kind: str = "fake"
    answer: Answer = bright_is_person
    versions: list[VersionStatus] = field(default_factory=lambda: [VersionStatus(1, VersionState.AVAILABLE)])
    delay_s: float = 0.0
    down: bool = False
    closed: bool = False
    calls: list[Call] = field(default_factory=list)
    # What signatures describes; None: nothing, as a server of TF Serving's API without GetModelMetadata.
    signatures_described: dict[str, ModelTensors] | None = None

    async def predict(
        self, spec: ModelSpec, input_key: str, tensor: np.ndarray, output_keys: tuple[str, ...], timeout: float
    ) -> FakePrediction:
        if self.closed:  # as a closed grpc.aio channel does
            raise RuntimeError(f"predict on the closed backend {self.name} ({self.target})")
        self.calls.append(Call(spec, input_key, tensor, output_keys, timeout, request_id.get()))
        if self.down:
            raise BackendUnavailable("the model backend is unavailable; try again later", detail=f"{self.target}: fake")
        await asyncio.sleep(self.delay_s)
        version = spec.version if spec.version is not None else max(v.version for v in self.versions)
        outputs = self.answer(spec, tensor)
        return FakePrediction(version, outputs if isinstance(outputs, dict) else {output_keys[0]: outputs})

    async def model_status(self, name: str, timeout: float) -> list[VersionStatus]:
        if self.down:
            raise BackendUnavailable("the model backend is unavailable", detail=f"{self.target}: fake")
        return list(self.versions)

    async def signatures(self, name: str, timeout: float) -> dict[str, ModelTensors] | None:
        if self.down:
            raise BackendUnavailable("the model backend is unavailable", detail=f"{self.target}: fake")
        return self.signatures_described

    async def close(self) -> None:
        self.closed = True


def _background(h: int, w: int) -> tuple[tuple[int, ...], int, np.ndarray | None]:
    return (1, h, w), types_pb2.DT_INT64, np.zeros((1, h, w), "<i8")


# A fake TF Serving's answers to Predict, from the input's height and width: (shape, dtype, tensor_content).
TensorAnswer = Callable[[int, int], tuple[tuple[int, ...], int, "np.ndarray | None"]]


class FakeTFServing(prediction_service_pb2_grpc.PredictionServiceServicer, model_service_pb2_grpc.ModelServiceServicer):
    """Just enough of TF Serving over gRPC to see what the gateway sends it and to answer what a test wants:
    Predict records the call's metadata and answers `answer(h, w)` (default: background everywhere)."""

    def __init__(self, answer: TensorAnswer = _background) -> None:
        self.answer = answer
        self.metadata: list[dict[str, str]] = []

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        self.metadata.append(dict(context.invocation_metadata()))
        h, w = (d.size for d in list(request.inputs["ImageTensor"].tensor_shape.dim)[1:3])
        shape, dtype, values = self.answer(h, w)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 1
        out = response.outputs["SemanticPredictions"]
        out.dtype = dtype
        for size in shape:
            out.tensor_shape.dim.add(size=size)
        if values is not None:
            out.tensor_content = values.tobytes()
        return response

    def GetModelStatus(self, request, context):  # noqa: N802
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.add(version=1, state=get_model_status_pb2.ModelVersionStatus.State.AVAILABLE)
        return response


@contextmanager
def serving(servicer: FakeTFServing, credentials: grpc.ServerCredentials | None = None) -> Iterator[str]:
    """The fake on a loopback port (TLS with `credentials`); yields its target."""
    server = grpc.server(futures.ThreadPoolExecutor(4), options=[("grpc.max_send_message_length", 1 << 30)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)
