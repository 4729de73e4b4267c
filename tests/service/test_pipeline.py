"""service/pipeline.py in-process against a fake backend: profiles, mask sizes, stage times, bad answers."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest

from segmentation.v1 import segmentation_service_pb2 as pb
from service.api.convert import segment_response
from service.backends import ModelSpec
from service.config import Config, Limits, ModelConfig
from service.errors import BackendFailed, BackendUnavailable, LimitExceeded, NotSupportedByModel
from service.mask.cutout import Box, CutoutFormat, CutoutRequest, Edge
from service.mask.formats import MaskFormat
from service.pipeline import MaskSize, Options, Pipeline, Segmentation
from service.profiles import DEEPLAB_257
from service.routing import ModelChoice, Router
from service.stages import STAGES
from tests import images
from tests.bilinear import enlarged
from tests.fakes import FakeBackend, bright_is_person, scores_of
from tests.inprocess import LITE_MODEL, ZOO_MODEL
from tests.paths import PERSON


def two_models() -> tuple[Router, FakeBackend, FakeBackend]:
    zoo, lite = FakeBackend(name="a"), FakeBackend(name="b", answer=scores_of(bright_is_person))
    config = Config(models=(ZOO_MODEL, LITE_MODEL), default_model="deeplab")
    return Router(config, {"a": zoo, "b": lite}), zoo, lite


DEFAULT = ModelChoice()


def segment(router: Router, data: bytes, choice: ModelChoice = DEFAULT, **options: object) -> Segmentation:
    pipeline = Pipeline(Limits(), predict_timeout_s=5.0)
    return asyncio.run(pipeline.segment(data, router.route(choice), Options(**options), deadline=None))  # type: ignore[arg-type]


def full_size_mask(result: Segmentation) -> np.ndarray:
    assert result.mask.format == MaskFormat.RAW
    return np.frombuffer(result.mask.encoded.data, np.uint8).reshape(result.mask.height, result.mask.width)


def test_zoo_profile_sends_uint8_at_513_on_the_longest_side_and_maps_the_mask_back() -> None:
    router, zoo, lite = two_models()
    data = images.large_jpeg("astronaut.png", 1920, 1080)
    result = segment(router, data, mask_format=MaskFormat.RAW)
    (call,) = zoo.calls
    assert not lite.calls
    assert call.spec == ModelSpec("deeplab", "serving_default")
    assert (call.input_key, call.output_keys) == ("ImageTensor", ("SemanticPredictions",))
    assert call.tensor.dtype == np.uint8 and call.tensor.shape == (1, 289, 513, 3)
    assert (result.mask.width, result.mask.height) == (1920, 1080)
    # The mask at the original size is the fake's answer scaled by nearest neighbour.
    small = bright_is_person(call.spec, call.tensor)[0].astype(np.uint8)
    expected = cv2.resize(small, (1920, 1080), interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.array_equal(full_size_mask(result), expected)
    person = next(c for c in result.mask.classes if c.class_id == PERSON)
    assert person.pixel_count == int((expected == PERSON).sum())


def test_fixed_float_profile_scales_the_input_and_takes_the_argmax_of_scores() -> None:
    router, zoo, lite = two_models()
    data = images.png("astronaut.png")
    result = segment(router, data, ModelChoice(name="deeplab-lite"), mask_format=MaskFormat.RAW)
    (call,) = lite.calls
    assert not zoo.calls
    assert call.spec == ModelSpec("lite", "serving_default")
    assert (call.input_key, call.output_keys) == ("sub_7", ("ResizeBilinear_3",))
    assert call.tensor.dtype == np.float32 and call.tensor.shape == (1, 257, 257, 3)
    # Bilinear from every pixel in float, not rounded to uint8 (bit for bit TensorFlow's: tests/model).
    rgb = cv2.cvtColor(images.bgr("astronaut.png"), cv2.COLOR_BGR2RGB).astype(np.float32)
    resized = cv2.resize(rgb, (257, 257), interpolation=cv2.INTER_LINEAR)
    assert np.allclose(call.tensor[0], (resized - 127.5) / 127.5, atol=1e-4)
    assert call.tensor.min() >= -1.0 and call.tensor.max() <= 1.0
    assert not np.array_equal(call.tensor[0] * 127.5 + 127.5, np.rint(call.tensor[0] * 127.5 + 127.5))
    # The mask at 512x512 is the argmax of the scores enlarged as the model enlarges them.
    scores = scores_of(bright_is_person)(call.spec, call.tensor)[0]
    assert (result.mask.width, result.mask.height) == (512, 512)
    assert np.array_equal(full_size_mask(result), np.argmax(enlarged(scores, 512, 512), axis=2))
    assert result.route.model.name == "deeplab-lite"


def _graph_like(spec: ModelSpec, tensor: np.ndarray) -> dict[str, np.ndarray]:
    """As the exported DeepLab graph answers serving_scores: 33 x 33 logits (here, from the image's brightness),
    and the class ids of those logits enlarged with aligned corners to the tensor's size."""
    brightness = cv2.resize(tensor[0].mean(axis=2), (33, 33), interpolation=cv2.INTER_AREA)
    logits = np.zeros((33, 33, 21), np.float32)
    logits[..., PERSON] = (brightness - 127.5) / 10
    ids = np.argmax(enlarged(logits, *tensor.shape[1:3], align_corners=True), axis=2)
    return {"SemanticPredictions": ids[np.newaxis].astype(np.int64), "scores": logits[np.newaxis]}


def test_the_deeplab_257_profile_sends_float_pixels_and_decides_full_size_pixels_from_the_scores() -> None:
    graph = FakeBackend(name="a", answer=_graph_like)
    model = ModelConfig(name="deeplab", backend="a", profile=DEEPLAB_257)
    router = Router(Config(models=(model,), default_model="deeplab"), {"a": graph})
    result = segment(router, images.jpeg("astronaut.png"), mask_format=MaskFormat.RAW)
    (call,) = graph.calls
    assert call.spec == ModelSpec("deeplab", "serving_scores")
    assert (call.input_key, call.output_keys) == ("image", ("SemanticPredictions", "scores"))
    assert call.tensor.dtype == np.float32 and call.tensor.shape == (1, 257, 257, 3) and call.tensor.max() <= 255
    logits = _graph_like(call.spec, call.tensor)["scores"][0]
    expected = np.argmax(enlarged(enlarged(logits, 257, 257, align_corners=True), 512, 512), axis=2)
    assert np.array_equal(full_size_mask(result), expected)
    # Nearest neighbour would have been wrong at the boundary.
    ids = _graph_like(call.spec, call.tensor)["SemanticPredictions"][0].astype(np.uint8)
    assert not np.array_equal(expected, cv2.resize(ids, (512, 512), interpolation=cv2.INTER_NEAREST_EXACT))
    at_model_size = segment(router, images.jpeg("astronaut.png"), mask_format=MaskFormat.RAW, mask_size=MaskSize.MODEL)
    assert np.array_equal(full_size_mask(at_model_size), ids)
    assert graph.calls[1].output_keys == ("SemanticPredictions",)  # no pixel to decide: no scores asked for


def test_fixed_profile_mask_at_model_size_is_the_fixed_size_and_never_upscales_the_zoo_input() -> None:
    router, zoo, _ = two_models()
    lite_result = segment(router, images.png("chelsea.png"), ModelChoice(name="deeplab-lite"), mask_size=MaskSize.MODEL)
    assert (lite_result.mask.width, lite_result.mask.height) == (257, 257)
    zoo_result = segment(router, images.png("chelsea.png"), mask_size=MaskSize.MODEL, mask_format=MaskFormat.RLE)
    assert zoo.calls[0].tensor.shape == (1, 300, 451, 3)
    assert (zoo_result.mask.width, zoo_result.mask.height) == (451, 300)
    assert int(zoo_result.mask.encoded.run_counts.sum()) == 451 * 300  # type: ignore[union-attr]


def test_stage_times_are_filled_in_and_add_up_within_the_total() -> None:
    router, _, _ = two_models()
    timings = segment(router, images.jpeg("chelsea.png"), include_overlay=True).timings
    assert [stage for stage, _ in timings.stages_us] == list(STAGES)
    stages = [us for _, us in timings.stages_us]
    assert all(t >= 0 for t in stages) and timings["decode"] > 0 and timings["encode"] > 0
    assert sum(stages) <= timings.total_us


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda spec, t: np.zeros((1, 5, 5), np.int64), r"shape \[1, 5, 5\]"),
        (lambda spec, t: np.zeros((1, *t.shape[1:3]), np.float32), "dtype float32; expected integers"),
        (lambda spec, t: np.full((1, *t.shape[1:3]), 256, np.int64), r"outside 0\.\.255"),
        (lambda spec, t: np.full((1, *t.shape[1:3]), -1, np.int32), r"outside 0\.\.255"),
    ],
    ids=["wrong-shape", "float-ids", "id-256", "negative-id"],
)
def test_unusable_class_id_answers_are_backend_failures(answer, message: str) -> None:
    router, zoo, _ = two_models()
    zoo.answer = answer
    with pytest.raises(BackendFailed, match=message):
        segment(router, images.png("chelsea.png"))


def test_unusable_score_answers_are_backend_failures() -> None:
    router, _, lite = two_models()
    lite.answer = lambda spec, t: np.zeros((1, 257, 257), np.float32)
    with pytest.raises(BackendFailed, match="classes"):
        segment(router, images.png("chelsea.png"), ModelChoice(name="deeplab-lite"))
    lite.answer = lambda spec, t: np.zeros((1, 257, 257, 21), np.int64)
    with pytest.raises(BackendFailed, match="scores of dtype int64"):
        segment(router, images.png("chelsea.png"), ModelChoice(name="deeplab-lite"))


def test_backend_errors_pass_through_as_they_are() -> None:
    router, zoo, _ = two_models()
    zoo.down = True
    with pytest.raises(BackendUnavailable, match="the model backend is unavailable") as error:
        segment(router, images.png("chelsea.png"))
    assert error.value.detail.startswith("fake:0")  # for the log, not the caller


def test_mask_format_none_counts_the_same_classes_and_writes_no_mask() -> None:
    router, _, _ = two_models()
    data = images.large_jpeg("astronaut.png", 640, 480)
    raw, counted = (segment(router, data, mask_format=fmt) for fmt in (MaskFormat.RAW, MaskFormat.NONE))
    assert counted.mask.classes == raw.mask.classes and (counted.mask.width, counted.mask.height) == (640, 480)
    assert counted.mask.encoded.data == b"" and counted.mask.encoded.run_values is None
    response = segment_response(counted)
    assert response.mask.format == pb.MASK_FORMAT_NONE and response.mask.WhichOneof("payload") is None
    assert [c.class_id for c in response.classes] == [c.class_id for c in raw.mask.classes]


def _graph_router() -> tuple[Router, FakeBackend]:
    graph = FakeBackend(name="a", answer=_graph_like)
    model = ModelConfig(name="deeplab", backend="a", profile=DEEPLAB_257)
    return Router(Config(models=(model,), default_model="deeplab"), {"a": graph}), graph


@pytest.mark.parametrize("size", [MaskSize.ORIGINAL, MaskSize.MODEL])
def test_a_cut_out_is_the_photo_at_its_size_with_the_mask_or_the_probability_as_alpha(size: MaskSize) -> None:
    router, graph = _graph_router()
    data = images.png("astronaut.png")
    photo = images.bgr("astronaut.png")
    full = segment(router, data, mask_format=MaskFormat.RAW)
    person = full_size_mask(full) == PERSON
    hard = segment(router, data, mask_size=size, cutout=CutoutRequest(classes=(str(PERSON),), crop=True))
    cutout = hard.mask.cutout
    assert cutout is not None and graph.calls[-1].output_keys == ("SemanticPredictions", "scores")
    ys, xs = np.nonzero(person)
    assert cutout.box == Box(xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert cutout.subject_pixels == int(person.sum())
    bgra = cv2.imdecode(np.frombuffer(cutout.image, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(bgra[:, :, 3] == 255, person[cutout.box.rows, cutout.box.columns])
    assert np.array_equal(bgra[:, :, :3], photo[cutout.box.rows, cutout.box.columns])
    matting = CutoutRequest(classes=(str(PERSON),), edge=Edge.SOFT, format=CutoutFormat.ALPHA)
    soft = segment(router, data, mask_size=size, cutout=matting, probability_classes=(str(PERSON),))
    matte = cv2.imdecode(np.frombuffer(soft.mask.cutout.alpha, np.uint8), cv2.IMREAD_UNCHANGED)  # type: ignore[union-attr]
    assert matte.shape == person.shape and len(np.unique(matte)) > 2
    if size == MaskSize.ORIGINAL:  # the person's probability map, level for level
        (person_map,) = soft.mask.probabilities
        assert np.array_equal(matte, cv2.imdecode(np.frombuffer(person_map.png, np.uint8), cv2.IMREAD_UNCHANGED))


def test_a_cut_out_past_its_pixels_is_refused_before_decoding_and_soft_needs_scores() -> None:
    router, graph = _graph_router()
    pipeline = Pipeline(Limits(max_cutout_pixels=1000), predict_timeout_s=5.0)
    options = Options(cutout=CutoutRequest())
    with pytest.raises(LimitExceeded, match=r"512x512, 262144 pixels, over the 1000 a cut-out may have"):
        asyncio.run(pipeline.segment(images.png("astronaut.png"), router.route(DEFAULT), options, deadline=None))
    assert not graph.calls
    zoo_router, _, _ = two_models()
    hard = segment(zoo_router, images.png("chelsea.png"), cutout=CutoutRequest())
    assert hard.mask.cutout is not None and hard.mask.cutout.box == Box(0, 0, 451, 300)
    with pytest.raises(NotSupportedByModel, match="model 'deeplab' gives no probabilities for a soft cut-out"):
        segment(zoo_router, images.png("chelsea.png"), cutout=CutoutRequest(edge=Edge.SOFT))
