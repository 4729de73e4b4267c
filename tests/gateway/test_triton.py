"""The `kserve-v2` backend against a real NVIDIA Triton Inference Server (nvidia-pytriton's `tritonserver`, in
triton/.venv) serving the exported servable, beside modelserver serving the same one: examples/triton.toml as
shipped, pointed at both."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local import start_triton
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests import images
from tests.helpers import SERVICE, ServerProcess, free_port, scrape, start_gateway, wait_for, wait_for_health
from tests.paths import LABELS, ROOT

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
RAW = pb.MASK_FORMAT_RAW


@pytest.fixture(scope="module")
def triton(servable_base: pathlib.Path) -> Iterator[ServerProcess]:
    server = start_triton(servable_base)
    yield server
    assert server.stop() == 0, server.output()


def triton_example(tfserving: str, triton: str, directory: pathlib.Path, extra: str = "") -> pathlib.Path:
    text = (ROOT / "examples" / "triton.toml").read_text()
    for shipped, target in (('["localhost:8500"]', tfserving), ('["localhost:8001"]', triton)):
        assert f"targets = {shipped}" in text
        text = text.replace(f"targets = {shipped}", f'targets = ["{target}"]')
    text = text.replace('"../../shared/models/deeplabv3_mnv2_pascal/labels.txt"', f'"{LABELS}"')
    path = directory / "triton.toml"
    path.write_text(text + extra)
    return path


# A model whose profile sends what Triton's model does not take: kept NOT_SERVING, with the reason in the log.
ZOO_ON_TRITON = """
[[models]]
name = "zoo-on-triton"
backend = "triton"
served_name = "deeplab"
profile = "deeplab-zoo"
"""


@pytest.fixture(scope="module")
def gateway(modelserver: ServerProcess, triton: ServerProcess, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    metrics_port = free_port()
    config = triton_example(modelserver.target, triton.target, tmp_path_factory.mktemp("triton"), ZOO_ON_TRITON)
    server = start_gateway(None, f"--config={config}", f"--metrics-listen=127.0.0.1:{metrics_port}")
    wait_for_health(server.target, SERVING)
    server.metrics_port = metrics_port  # type: ignore[attr-defined]
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def stub(gateway: ServerProcess) -> Iterator[pb_grpc.SegmentationServiceStub]:
    with grpc.insecure_channel(gateway.target, options=[("grpc.max_receive_message_length", 1 << 28)]) as channel:
        yield pb_grpc.SegmentationServiceStub(channel)


def segment(
    stub: pb_grpc.SegmentationServiceStub, data: bytes, model: str, **fields: object
) -> pb.SegmentImageResponse:
    request = pb.SegmentImageRequest(image=data, model=pb.ModelSelector(name=model), mask_format=RAW, **fields)
    return stub.SegmentImage(request, timeout=60)


def mask(response: pb.SegmentImageResponse) -> np.ndarray:
    return np.frombuffer(response.mask.data, np.uint8).reshape(response.mask.height, response.mask.width)


PHOTOS = {
    "chelsea-png": lambda: images.png("chelsea.png"),
    "astronaut-1080p-jpeg": lambda: images.large_jpeg("astronaut.png", 1920, 1080),
    "coffee-exif-6": lambda: images.with_orientation(images.jpeg("coffee.png"), 6),
}


@pytest.mark.parametrize("photo", PHOTOS)
def test_triton_answers_exactly_as_tf_serving(stub: pb_grpc.SegmentationServiceStub, photo: str) -> None:
    data = PHOTOS[photo]()
    via_tfs, via_triton = segment(stub, data, "deeplab"), segment(stub, data, "deeplab-triton")
    assert via_triton.model.name == "deeplab-triton" and via_triton.model.version >= 1
    assert np.array_equal(mask(via_tfs), mask(via_triton))
    assert [(c.class_id, c.pixel_count) for c in via_tfs.classes] == [
        (c.class_id, c.pixel_count) for c in via_triton.classes
    ]
    # The model-size mask too, which is the model's own output for the tensor sent.
    small = [segment(stub, data, model, mask_size=pb.MASK_SIZE_MODEL) for model in ("deeplab", "deeplab-triton")]
    assert np.array_equal(mask(small[0]), mask(small[1]))


def test_the_shadow_on_triton_agrees_with_tf_serving(stub: pb_grpc.SegmentationServiceStub) -> None:
    for name in ("chelsea.png", "astronaut.png", "coffee.png"):
        assert segment(stub, images.jpeg(name), "deeplab").model.variant == "tfserving"

    def figures() -> pb.ShadowFigures:
        (model,) = [m for m in stub.ListModels(pb.ListModelsRequest(), timeout=10).models if m.name == "deeplab"]
        return model.shadow

    wait_for(lambda: figures().compared >= 3, 30)
    shadow = figures()
    assert (shadow.variant, shadow.percent, shadow.failed) == ("triton", 100.0, 0)
    assert shadow.pixel_agreement == 1.0 and shadow.mean_iou == 1.0


def test_health_and_metrics_follow_triton_and_a_model_that_does_not_fit_is_named(
    gateway: ServerProcess, triton: ServerProcess
) -> None:
    with grpc.insecure_channel(gateway.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def status(name: str) -> int:
            return health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status

        assert status(f"{SERVICE}/deeplab-triton") == SERVING
        assert status(f"{SERVICE}/zoo-on-triton") == NOT_SERVING
    wait_for(lambda: "has no input 'ImageTensor'" in gateway.output(), 10)
    line = next(line for line in gateway.lines if "has no input 'ImageTensor'" in line)
    assert "model 'zoo-on-triton' ('deeplab' at backend 'triton')" in line and "(its inputs: 'image')" in line
    labels = (("backend", "triton"), ("kind", "kserve-v2"), ("target", triton.target))
    assert scrape(gateway.metrics_port)[("segmentation_backend_up", labels)] == 1  # type: ignore[attr-defined]


def test_a_version_triton_does_not_have_is_not_found(stub: pb_grpc.SegmentationServiceStub) -> None:
    request = pb.SegmentImageRequest(
        image=images.png("chelsea.png"), model=pb.ModelSelector(name="deeplab-triton", version=99)
    )
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        stub.SegmentImage(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND, error.value.details()
    assert "model 'deeplab' version 99" in error.value.details()
    assert time.monotonic() - start < 10


def test_the_protocol_has_no_signatures_so_none_is_named_or_taken(stub: pb_grpc.SegmentationServiceStub) -> None:
    assert segment(stub, images.png("chelsea.png"), "deeplab-triton").model.signature_name == ""
    # ListModels says the same of it, and names the TF Serving model's signature beside it.
    listed = {m.name: m.signature_name for m in stub.ListModels(pb.ListModelsRequest(), timeout=30).models}
    assert listed["deeplab-triton"] == "" and listed["deeplab"] != "", listed
    selector = pb.ModelSelector(name="deeplab-triton", signature_name="serving_default")
    with pytest.raises(grpc.RpcError) as error:
        stub.SegmentImage(pb.SegmentImageRequest(image=images.png("chelsea.png"), model=selector), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "served by a kserve-v2 backend, whose protocol has no signatures" in error.value.details()
