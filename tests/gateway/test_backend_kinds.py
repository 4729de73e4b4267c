"""Backend kinds: the Open Inference Protocol's packing and reading, the tensor check against a profile, the `kind`
setting, and a model whose tensors do not fit kept NOT_SERVING (fakes here; a real Triton in test_triton.py)."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys
from dataclasses import replace

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from oip_subset.inference import grpc_service_pb2 as pb
from service.backends import ModelSpec, ModelTensors, TensorInfo
from service.backends.kinds import KINDS
from service.backends.kserve_v2 import InferPrediction, infer_request, output_array
from service.config import BackendConfig, Config, ConfigError, ModelConfig
from service.errors import BackendFailed, ModelNotFound
from service.flags import load_config
from service.model_check import mismatch
from service.profiles import DEEPLAB_257, DEEPLAB_ZOO
from tests.fakes import FakeBackend
from tests.gateway.inprocess import running
from tests.helpers import wait_for
from tests.paths import ROOT

pytestmark = pytest.mark.unit  # make test-unit: in-process, nothing but the venv

Output = pb.ModelInferResponse.InferOutputTensor


def test_a_request_carries_the_tensor_raw_with_its_datatype_shape_and_version() -> None:
    tensor = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    request = infer_request(ModelSpec("deeplab", "ignored", version=3), "image", tensor, ("ids", "scores"))
    assert (request.model_name, request.model_version) == ("deeplab", "3")
    (sent,) = request.inputs
    assert (sent.name, sent.datatype, list(sent.shape)) == ("image", "FP32", [2, 3, 4, 3])
    assert [o.name for o in request.outputs] == ["ids", "scores"]
    assert np.array_equal(np.frombuffer(request.raw_input_contents[0], "<f4").reshape(tensor.shape), tensor)
    uint8 = infer_request(ModelSpec("deeplab", ""), "ImageTensor", tensor.astype(np.uint8), ("ids",))
    assert uint8.model_version == "" and uint8.inputs[0].datatype == "UINT8"


def test_a_version_label_or_an_unsendable_dtype_is_refused_before_sending() -> None:
    tensor = np.zeros((1, 2, 2, 3), np.float32)
    with pytest.raises(ModelNotFound, match="no version labels; ask for a version number"):
        infer_request(ModelSpec("deeplab", "", version_label="stable"), "image", tensor, ("ids",))
    with pytest.raises(ValueError, match="use uint8 or float32"):
        infer_request(ModelSpec("deeplab", ""), "image", tensor.astype(np.float64), ("ids",))


def test_outputs_are_read_from_raw_bytes_or_typed_contents() -> None:
    ids = np.array([[[0, 8], [15, 8]]], np.int64)
    raw = Output(name="ids", datatype="INT64", shape=[1, 2, 2])
    assert np.array_equal(output_array(raw, ids.tobytes()), ids)
    typed = Output(name="ids", datatype="INT64", shape=[1, 2, 2])
    typed.contents.int64_contents.extend(ids.ravel().tolist())
    assert np.array_equal(output_array(typed, None), ids)
    scores = Output(name="scores", datatype="FP32", shape=[1, 1, 2])
    scores.contents.fp32_contents.extend([0.5, -1.0])
    assert output_array(scores, None).tolist() == [[[0.5, -1.0]]]


@pytest.mark.parametrize(
    ("tensor", "raw", "message"),
    [
        (Output(name="ids", datatype="BYTES", shape=[1]), b"x", "as BYTES; expected UINT8, INT32, INT64, FP32"),
        (Output(name="ids", datatype="INT64", shape=[1, -1]), b"", "of shape [1, -1]"),
        (Output(name="ids", datatype="INT64", shape=[1, 2]), b"\0" * 8, "holds 8 bytes; its shape says [1, 2]"),
        (Output(name="ids", datatype="INT32", shape=[3]), None, "holds 0 values; its shape says [3]"),
    ],
)
def test_unusable_outputs_are_backend_failures(tensor: Output, raw: bytes | None, message: str) -> None:
    with pytest.raises(BackendFailed, match=message.replace("[", r"\[")):
        output_array(tensor, raw)


def test_an_answer_names_its_version_and_outputs_by_name() -> None:
    ids, scores = np.zeros((1, 2, 2), np.int64), np.ones((1, 1, 1, 21), np.float32)
    response = pb.ModelInferResponse(
        model_version="4",
        outputs=[
            Output(name="scores", datatype="FP32", shape=[1, 1, 1, 21]),
            Output(name="ids", datatype="INT64", shape=[1, 2, 2]),
        ],
        raw_output_contents=[scores.tobytes(), ids.tobytes()],
    )
    prediction = InferPrediction(response, asked_version=None)
    assert prediction.version == 4
    assert np.array_equal(prediction.output("ids"), ids) and np.array_equal(prediction.output("scores"), scores)
    with pytest.raises(BackendFailed, match="no output 'other'"):
        prediction.output("other")
    assert InferPrediction(pb.ModelInferResponse(), asked_version=7).version == 7  # a server that names none


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
    problem = mismatch(model, tensors)
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem, problem
        assert problem.startswith(f"model {model.name!r} ('{model.name}' at backend 'triton'): ")
        assert "\n" not in problem


KIND_FILE = """
[[backends]]
name = "triton"
kind = "{kind}"
targets = ["127.0.0.1:8001"]

[[models]]
name = "deeplab"
profile = "deeplab-257"
{extra}
"""


def test_kind_in_the_file_the_flag_and_the_variable(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(KIND_FILE.format(kind="kserve-v2", extra=""))
    (backend,) = load_config(["--config", str(path)], {}).backends
    assert backend.kind == "kserve-v2" and set(KINDS) == {"tfserving", "kserve-v2"}
    assert load_config([], {}).backends[0].kind == "tfserving"
    assert load_config(["--backend-kind=kserve-v2"], {}).backends[0].kind == "kserve-v2"
    assert load_config([], {"SEGMENTATION_BACKEND_KIND": "kserve-v2"}).backends[0].kind == "kserve-v2"


@pytest.mark.parametrize(
    ("args", "file", "message"),
    [
        (["--backend-kind=triton"], None, "--backend-kind='triton': use tfserving or kserve-v2"),
        ([], KIND_FILE.format(kind="grpc", extra=""), "backends[0].kind = 'grpc': use tfserving or kserve-v2"),
        (
            [],
            KIND_FILE.format(kind="kserve-v2", extra='version_label = "stable"'),
            "models[0].version_label = 'stable': backend 'triton' speaks kserve-v2, which has no version labels",
        ),
    ],
)
def test_a_bad_kind_or_a_version_label_on_kserve_v2_is_one_line(
    tmp_path: pathlib.Path, args: list[str], file: str | None, message: str
) -> None:
    if file is not None:
        path = tmp_path / "gateway.toml"
        path.write_text(file)
        args = ["--config", str(path)]
    with pytest.raises(ConfigError) as error:
        load_config(args, {})
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def _status(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_a_model_whose_tensors_do_not_fit_stays_not_serving(caplog: pytest.LogCaptureFixture) -> None:
    config = Config(
        listen="127.0.0.1:0", health_poll_s=0.05, backends=(BackendConfig("triton", ("fake:1",)),), models=(MODEL_257,)
    )
    wrong = _with(TRITON_257, "inputs", TensorInfo("image", "UINT8", (-1, -1, -1, 3)))
    backend = FakeBackend(name="triton", tensors=wrong)
    with running(config, {"triton": backend}) as gateway:
        wait_for(lambda: "input 'image' is UINT8" in caplog.text, 10)
        assert _status(gateway.target) == health_pb2.HealthCheckResponse.NOT_SERVING
    backend.tensors = TRITON_257
    with running(config, {"triton": backend}) as gateway:
        wait_for(lambda: _status(gateway.target) == health_pb2.HealthCheckResponse.SERVING, 10)


def test_every_kind_names_a_class_of_that_kind() -> None:
    for name, kind in KINDS.items():
        assert getattr(importlib.import_module(kind.module), kind.cls).kind == name


def test_the_configuration_loads_no_protocol_stubs() -> None:
    """bench/fidelity.py loads the configuration beside TensorFlow, whose protobuf names the stubs also register."""
    code = "import sys, service.flags, service.routing; print(sorted(m for m in sys.modules if m.endswith('_subset')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout
