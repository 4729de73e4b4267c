"""service/model_check.py: a model's tensors at its backend against its profile, and a model that does not fit kept
NOT_SERVING (service/health.py).
"""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.backends import ModelTensors, TensorInfo
from service.config import BackendConfig, Config, ModelConfig
from service.model_check import mismatch
from service.profiles import DEEPLAB_257, DEEPLAB_ZOO
from tests.fakes import FakeBackend
from tests.helpers import wait_for
from tests.inprocess import running

TRITON_257 = ModelTensors(
    inputs=(TensorInfo("image", "FP32", (-1, -1, -1, -1)),),
    outputs=(TensorInfo("scores", "FP32", (-1, -1, -1, -1)), TensorInfo("SemanticPredictions", "INT64", (-1, -1, -1))),
)


MODEL_257 = ModelConfig(name="deeplab", backend="triton", profile=DEEPLAB_257)


def _with(tensors: ModelTensors, role: str, tensor: TensorInfo) -> ModelTensors:
    kept = [t for t in getattr(tensors, role) if t.name != tensor.name]
    return replace(tensors, **{role: (*kept, tensor)})


@pytest.mark.parametrize(
    ("tensors", "model", "message"),
    [
        (TRITON_257, MODEL_257, None),
        (_with(TRITON_257, "inputs", TensorInfo("image", "FP32", (1, 257, 257, 3))), MODEL_257, None),
        (_with(TRITON_257, "outputs", TensorInfo("SemanticPredictions", "INT64", (1, -1, 257))), MODEL_257, None),
        (
            _with(TRITON_257, "inputs", TensorInfo("ImageTensor", "UINT8", (1, 513, 513, 3))),
            ModelConfig(name="zoo", backend="triton", profile=DEEPLAB_ZOO),
            "input 'ImageTensor' is UINT8 [1, 513, 513, 3]; the gateway needs UINT8 [1, any, any, 3]",
        ),
        (
            _with(TRITON_257, "inputs", TensorInfo("image", "UINT8", (-1, -1, -1, 3))),
            MODEL_257,
            "input 'image' is UINT8 [any, any, any, 3]; the gateway needs FP32 [1, 257, 257, 3]",
        ),
        (
            _with(TRITON_257, "inputs", TensorInfo("image", "FP32", (1, 513, 513, 3))),
            MODEL_257,
            "input 'image' is FP32 [1, 513, 513, 3]; the gateway needs FP32 [1, 257, 257, 3]",
        ),
        (
            replace(TRITON_257, outputs=TRITON_257.outputs[1:]),
            MODEL_257,
            "has no output 'scores' (its outputs: 'SemanticPredictions'); set the model's scores_key",
        ),
        (
            TRITON_257,
            ModelConfig(name="zoo", backend="triton", profile=DEEPLAB_ZOO),
            "has no input 'ImageTensor' (its inputs: 'image'); set the model's input_key",
        ),
        (
            _with(TRITON_257, "outputs", TensorInfo("SemanticPredictions", "FP32", (-1, -1, -1))),
            MODEL_257,
            "output 'SemanticPredictions' is FP32 [any, any, any]; the gateway needs INT64 or INT32 or UINT8",
        ),
    ],
)
def test_the_tensor_check_names_the_first_difference(
    tensors: ModelTensors, model: ModelConfig, message: str | None
) -> None:
    problem = mismatch(model, {"": tensors})
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem, problem
        assert problem.startswith(f"model {model.name!r} ('{model.name}' at backend 'triton'): ")
        assert "\n" not in problem


def _status(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_a_model_whose_tensors_do_not_fit_stays_not_serving(caplog: pytest.LogCaptureFixture) -> None:
    config = Config(
        listen="127.0.0.1:0", health_poll_s=0.05, backends=(BackendConfig("triton", ("fake:1",)),), models=(MODEL_257,)
    )
    wrong = _with(TRITON_257, "inputs", TensorInfo("image", "UINT8", (-1, -1, -1, 3)))
    backend = FakeBackend(name="triton", signatures_described={"": wrong})
    with running(config, {"triton": backend}) as gateway:
        wait_for(lambda: "input 'image' is UINT8" in caplog.text, 10)
        assert _status(gateway.target) == health_pb2.HealthCheckResponse.NOT_SERVING
    backend.signatures_described = {"": TRITON_257}
    with running(config, {"triton": backend}) as gateway:
        wait_for(lambda: _status(gateway.target) == health_pb2.HealthCheckResponse.SERVING, 10)
