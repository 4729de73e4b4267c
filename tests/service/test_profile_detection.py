"""service/profile_detection.py: the profile of an `auto` model read from its servable's signatures, and a gateway
that reads it before answering (service/health.py, service/routing.py): exact where the servable offers scores,
approximate and said so where not, never a guessed profile."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from service.backends import ModelSpec, ModelTensors, TensorInfo
from service.config import BackendConfig, Config, ModelConfig
from service.profile_detection import Detected, read_profile
from service.profiles import AUTO, DEEPLAB_257, DEEPLAB_ZOO
from tests import images
from tests.fakes import Answer, FakeBackend
from tests.helpers import wait_for
from tests.inprocess import running

# As GetModelMetadata describes the exporter's servable (shapes as TF Serving gives them: -1 where any).
ZOO_SIGNATURE = ModelTensors(
    inputs=(TensorInfo("ImageTensor", "UINT8", (1, -1, -1, 3)),),
    outputs=(TensorInfo("SemanticPredictions", "INT64", (1, -1, -1)),),
)
SCORES_SIGNATURE = ModelTensors(
    inputs=(TensorInfo("image", "FP32", (1, -1, -1, 3)),),
    outputs=(
        TensorInfo("SemanticPredictions", "INT64", (1, -1, -1)),
        TensorInfo("network_size", "INT32", (2,)),
        TensorInfo("scores", "FP32", (1, 33, 33, 21)),
    ),
)
EXPORTED = {"serving_default": ZOO_SIGNATURE, "serving_scores": SCORES_SIGNATURE}


def _network_size(height: int, width: int) -> Answer:
    def answer(spec: ModelSpec, tensor: np.ndarray) -> dict[str, np.ndarray]:
        ids = np.zeros((1, *tensor.shape[1:3]), np.int64)
        return {"network_size": np.array([height, width], np.int32), "SemanticPredictions": ids}

    return answer


def _read(signatures: dict[str, ModelTensors] | None, answer: Answer | None = None) -> Detected:
    backend = FakeBackend(name="a", signatures_described=signatures, answer=answer or _network_size(257, 257))
    return asyncio.run(read_profile(backend, "deeplab", timeout=5))


def test_the_exporter_s_scores_signature_calls_for_the_exact_path_at_the_network_s_size() -> None:
    found = _read(EXPORTED)
    assert found.profile == DEEPLAB_257 and not found.profile.approximations
    assert _read(EXPORTED, _network_size(321, 513)).profile == replace(DEEPLAB_257, width=513, height=321)
    # A signature whose image declares its size needs no Predict; over the Open Inference Protocol, the same tensors.
    fixed = replace(SCORES_SIGNATURE, inputs=(TensorInfo("image", "FP32", (1, 257, 257, 3)),))
    assert _read({"serving_scores": fixed}, answer=_refuse).profile == DEEPLAB_257
    assert _read({"": fixed}, answer=_refuse).profile == DEEPLAB_257


def _refuse(spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
    raise AssertionError("no Predict is needed")


@pytest.mark.parametrize(
    ("signatures", "answer", "why"),
    [
        (
            {"serving_default": ZOO_SIGNATURE},
            None,
            "no signature 'serving_scores' of the exporter's kind (its signatures: 'serving_default')",
        ),
        (
            {"serving_scores": replace(SCORES_SIGNATURE, outputs=SCORES_SIGNATURE.outputs[::2])},
            None,
            "signature 'serving_scores' takes an image of any size and says no network_size",
        ),
        (EXPORTED, _network_size(0, 257), "says an unusable network size: must be positive"),
        ({"": ZOO_SIGNATURE}, None, "its tensors are not a scores signature's"),
        (None, None, "its backend does not describe the model's signatures"),
    ],
    ids=["zoo-only", "no-size", "size-0", "oip-zoo", "not-described"],
)
def test_anything_else_gets_the_zoo_settings_and_approximate_answers(
    signatures: dict[str, ModelTensors] | None, answer: Answer | None, why: str
) -> None:
    found = _read(signatures, answer)
    assert found.profile == DEEPLAB_ZOO and why in found.why, found.why
    assert any("nearest neighbour" in reason for reason in found.profile.approximations)


def _status(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def _config() -> Config:
    return Config(listen="127.0.0.1:0", health_poll_s=0.05, backends=(BackendConfig("a", ("fake:1",)),),
                  models=(ModelConfig(name="deeplab", backend="a"),))  # fmt: skip


def test_an_auto_model_is_read_before_the_first_call_and_said_exact(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="service.health")
    backend = FakeBackend(name="a", signatures_described=EXPORTED, answer=_network_size(257, 257))
    config = _config()
    assert config.models[0].profile == AUTO
    with running(config, {"a": backend}) as served:
        assert served.gateway.router.models["deeplab"].profile == DEEPLAB_257  # before any call
        (model,) = served.stub.ListModels(pb.ListModelsRequest(), timeout=5).models
        assert model.exact and not model.approximations
        assert (model.input_width, model.input_height) == (257, 257)
        wait_for(lambda: _status(served.target) == health_pb2.HealthCheckResponse.SERVING, 10)
    assert "read from the servable: signature 'serving_scores': a float32 image at 257x257" in caplog.text


def test_an_auto_model_waits_for_its_backend_and_a_zoo_servable_is_said_approximate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend(name="a", signatures_described={"serving_default": ZOO_SIGNATURE}, down=True)
    with running(_config(), {"a": backend}) as served:
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(pb.SegmentImageRequest(image=images.png("chelsea.png")), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "model 'deeplab' is not ready: the gateway reads its profile" in error.value.details()
        assert not backend.calls  # nothing sent with a guessed profile
        assert _status(served.target) == health_pb2.HealthCheckResponse.NOT_SERVING
        backend.down = False
        wait_for(lambda: _status(served.target) == health_pb2.HealthCheckResponse.SERVING, 10)
        assert served.gateway.router.models["deeplab"].profile == DEEPLAB_ZOO
        (model,) = served.stub.ListModels(pb.ListModelsRequest(), timeout=5).models
        assert not model.exact and any("uint8" in reason for reason in model.approximations)
        served.stub.SegmentImage(pb.SegmentImageRequest(image=images.png("chelsea.png")), timeout=10)
        assert backend.calls[-1].spec.signature == "serving_default"
    assert "model 'deeplab' ('deeplab' at a): answers at the photo's size are approximate" in caplog.text
