"""Probability maps through the real gateway and model: the cat's map agrees with the answer's mask, at either size;
a model without scores, too many maps and unknown classes are refused with what to change."""

from __future__ import annotations

import cv2
import grpc
import numpy as np
import pytest

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from segmentation_client import SegmentationClient
from tests import images
from tests.gateway.test_gateway import mask_of, segment
from tests.helpers import ServerProcess
from tests.paths import CAT, IMAGES, PERSON


def _levels(found: pb.ProbabilityMap) -> np.ndarray:
    levels = cv2.imdecode(np.frombuffer(found.png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert levels.dtype == np.uint8 and levels.shape == (found.height, found.width)
    return levels


@pytest.mark.parametrize("size", [pb.MASK_SIZE_ORIGINAL, pb.MASK_SIZE_MODEL])
def test_the_cat_s_probability_follows_its_mask(scores_stub: pb_grpc.SegmentationServiceStub, size: int) -> None:
    response = segment(
        scores_stub,
        images.jpeg("chelsea.png"),
        mask_format=pb.MASK_FORMAT_RAW,
        mask_size=size,
        probability_classes=["cat", str(PERSON), "0"],
    )
    mask = mask_of(response)
    assert [(m.class_id, m.label) for m in response.probabilities] == [
        (CAT, "cat"),
        (PERSON, "person"),
        (0, "background"),
    ]
    cat, person, background = (_levels(m) for m in response.probabilities)
    assert cat.shape == mask.shape
    # Where the cat's probability is over a half, the pixel is the cat's, and the other way round, but for pixels at
    # its boundary (the mask is decided from the scores, the map from the probabilities enlarged).
    assert ((cat > 127) == (mask == CAT)).mean() > 0.99
    assert cat[mask == CAT].mean() > 200 and person.max() < 128
    # Probabilities of all classes sum to 1; of three of them, to at most 1 (each level rounded).
    assert (cat.astype(int) + person + background <= 255 + 2).all()


def test_a_model_without_scores_too_many_maps_and_unknown_classes_are_refused(
    stub: pb_grpc.SegmentationServiceStub, scores_stub: pb_grpc.SegmentationServiceStub
) -> None:
    data = images.jpeg("chelsea.png")
    with pytest.raises(grpc.RpcError) as error:
        segment(stub, data, probability_classes=["cat"])  # the default profile: class ids only
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "model 'deeplab' gives no probabilities" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        segment(scores_stub, data, probability_classes=["cat", "dog", "person", "sofa", "chair"])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "5 probability maps asked for, over the limit of 4 (max_probability_maps)" in error.value.details()
    for name, message in (("unicorn", "unknown class 'unicorn'"), ("40", "class 40 is beyond the model's 21 classes")):
        with pytest.raises(grpc.RpcError) as error:
            segment(scores_stub, data, probability_classes=[name])
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()
    assert not segment(scores_stub, data, mask_format=pb.MASK_FORMAT_NONE).probabilities


def test_the_library_gives_each_map_as_floats_by_label_or_id(scores_gateway: ServerProcess) -> None:
    with SegmentationClient(scores_gateway.target) as client:
        result = client.segment(IMAGES / "chelsea.png", mask_format="raw", probabilities=("cat", 0))
    cat = result.probability("cat")
    assert cat is result.probability(CAT) and cat.dtype == np.float32 and cat.shape == result.mask.shape
    assert cat.min() >= 0 and cat.max() <= 1 and ((cat > 0.5) == (result.mask == CAT)).mean() > 0.99
    assert result.probability("background").shape == cat.shape
    with pytest.raises(KeyError, match="ask for it with probabilities"):
        result.probability("person")


def test_regions_carry_their_mean_probability_where_the_model_gives_scores(
    stub: pb_grpc.SegmentationServiceStub, scores_stub: pb_grpc.SegmentationServiceStub
) -> None:
    regions = pb.RegionOptions(classes=["cat"])
    data = images.jpeg("chelsea.png")
    [cat] = segment(scores_stub, data, mask_size=pb.MASK_SIZE_MODEL, regions=regions).regions
    assert cat.HasField("mean_probability") and 0.8 < cat.mean_probability <= 1
    assert not any(r.HasField("mean_probability") for r in segment(stub, data, regions=regions).regions)


def test_a_gateway_started_with_no_profile_reads_the_exact_one_from_the_servable(
    scores_gateway: ServerProcess, scores_stub: pb_grpc.SegmentationServiceStub, stub: pb_grpc.SegmentationServiceStub
) -> None:
    (model,) = scores_stub.ListModels(pb.ListModelsRequest(), timeout=10).models
    assert model.exact and not model.approximations and model.signature_name == "serving_scores"
    assert (model.input_width, model.input_height) == (257, 257)
    assert "read from the servable: signature 'serving_scores': a float32 image at 257x257" in scores_gateway.output()
    (zoo,) = stub.ListModels(pb.ListModelsRequest(), timeout=10).models  # --profile=deeplab-zoo, named
    assert not zoo.exact and any("nearest neighbour" in reason for reason in zoo.approximations)
