"""The gateway gives the same masks and classes whichever way the backend serialises Predict outputs: typed repeated
fields (TF Serving's default, int64_val for the class ids) or tensor_content (TF Serving 2.19+ with
--enable_serialization_as_tensor_content=true). No TensorFlow in this process: the backends are modelserver
processes, probed through the gateway's own wire-compatible stubs."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests import images
from tests.helpers import ServerProcess, start_gateway, start_modelserver, wait_for_health
from tfs_subset.tensorflow.core.framework import tensor_pb2, types_pb2
from tfs_subset.tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def content_modelserver(servable_base: pathlib.Path) -> Iterator[ServerProcess]:
    server = start_modelserver(
        "--model_name=deeplab",
        f"--model_base_path={servable_base}",
        "--enable_serialization_as_tensor_content=true",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stubs(
    gateway: ServerProcess, content_modelserver: ServerProcess
) -> Iterator[dict[str, pb_grpc.SegmentationServiceStub]]:
    """The session's gateway (its modelserver in the default mode) and one in front of the tensor_content one."""
    content_gateway = start_gateway(content_modelserver.target, "--profile=deeplab-zoo")  # the session gateway's
    try:
        wait_for_health(content_gateway.target, SERVING)
        with grpc.insecure_channel(gateway.target) as typed, grpc.insecure_channel(content_gateway.target) as content:
            yield {
                "typed": pb_grpc.SegmentationServiceStub(typed),
                "tensor_content": pb_grpc.SegmentationServiceStub(content),
            }
    finally:
        assert content_gateway.stop() == 0, content_gateway.output()


def _backend_mask(target: str) -> tensor_pb2.TensorProto:
    """The raw Predict answer of a modelserver for a small image."""
    image = images.bgr("chelsea.png")[:32, :48, ::-1]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "deeplab"
    tensor = request.inputs["ImageTensor"]
    tensor.dtype = types_pb2.DT_UINT8
    for size in (1, *image.shape):
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.ascontiguousarray(image).tobytes()
    with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    return response.outputs["SemanticPredictions"]


def test_the_two_backends_really_encode_differently(
    modelserver: ServerProcess, content_modelserver: ServerProcess
) -> None:
    typed = _backend_mask(modelserver.target)
    content = _backend_mask(content_modelserver.target)
    assert typed.dtype == content.dtype == types_pb2.DT_INT64
    assert len(typed.int64_val) == 32 * 48 and not typed.tensor_content
    assert len(content.tensor_content) == 8 * 32 * 48 and not content.int64_val
    np.testing.assert_array_equal(np.array(typed.int64_val, dtype="<i8"), np.frombuffer(content.tensor_content, "<i8"))


def _classes(response: pb.SegmentImageResponse) -> list[tuple]:
    return [
        (
            c.class_id,
            c.label,
            c.pixel_count,
            c.fraction,
            (c.bounding_box.x, c.bounding_box.y, c.bounding_box.width, c.bounding_box.height),
        )
        for c in response.classes
    ]


@pytest.mark.parametrize(
    ("image", "mask_format", "mask_size"),
    [
        (lambda: images.png("chelsea.png"), pb.MASK_FORMAT_RAW, pb.MASK_SIZE_ORIGINAL),
        (lambda: images.jpeg("astronaut.png"), pb.MASK_FORMAT_RAW, pb.MASK_SIZE_MODEL),
        (lambda: images.jpeg("coffee.png"), pb.MASK_FORMAT_PNG, pb.MASK_SIZE_ORIGINAL),
        (lambda: images.png("astronaut.png"), pb.MASK_FORMAT_RLE, pb.MASK_SIZE_MODEL),
    ],
    ids=["chelsea-raw", "astronaut-raw-model-size", "coffee-png", "astronaut-rle"],
)
def test_the_gateway_gives_identical_masks_and_classes_from_both(
    stubs: dict[str, pb_grpc.SegmentationServiceStub], image: Callable[[], bytes], mask_format: int, mask_size: int
) -> None:
    request = pb.SegmentImageRequest(image=image(), mask_format=mask_format, mask_size=mask_size)
    typed = stubs["typed"].SegmentImage(request, timeout=60)
    content = stubs["tensor_content"].SegmentImage(request, timeout=60)
    assert typed.mask == content.mask
    assert _classes(typed) == _classes(content)
    assert len(typed.classes) >= 2  # background and at least one object
    assert (typed.image_width, typed.image_height) == (content.image_width, content.image_height)
