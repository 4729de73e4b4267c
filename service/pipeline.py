"""One image through every stage: probe, decode, resize, pack, predict, unpack, postprocess, encode.

Backend-agnostic: the route names a Backend, which takes and returns numpy arrays. The stages before and after
Predict are CPU work (OpenCV and numpy release the GIL), run in worker threads so the event loop keeps serving
other calls while one image decodes. Each thread returns its stage times; only the event loop assembles them.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field

import numpy as np

from service import inference, tracing
from service.backends import Prediction
from service.config import Limits
from service.context import caller
from service.cores import usable_cores
from service.errors import DeadlineExceeded, InvalidRequest, LimitExceeded, NotSupportedByModel
from service.image.decode import decode
from service.image.probe import ImageInfo, probe
from service.image.resize import model_size, resize_to
from service.image.tensor import model_input, tensor_for
from service.mask.classes import ModelMask, ScoreMap, named_classes
from service.mask.cutout import (
    Box,
    Cutout,
    CutoutRequest,
    Edge,
    crop_box,
    hard_alpha,
    make_cutout,
    soft_alpha,
    subject_of,
)
from service.mask.formats import DEFAULT_FORMAT, FORMATS, EncodedGrid, MaskFormat
from service.mask.grid import MaskGrid, expand, expand_part, grid_for
from service.mask.overlay import overlay_picture, overlay_png
from service.mask.probability import ProbabilityMap, model_size_probabilities, probability_maps, region_mean
from service.mask.regions import MeanProbability, Region, RegionLimits, RegionRequest, find_regions
from service.mask.statistics import ClassStats, class_statistics
from service.mask.upscale import upscale
from service.profiles import Decode, Profile
from service.routing import Route
from service.shadow import ShadowRunner
from service.stages import StageClock, Timings
from service.workers import FairWorkers


class MaskSize(enum.Enum):
    ORIGINAL = "original"
    MODEL = "model"


@dataclass(frozen=True)
class Options:
    mask_format: MaskFormat = DEFAULT_FORMAT
    mask_size: MaskSize = MaskSize.ORIGINAL
    include_overlay: bool = False
    regions: RegionRequest | None = None
    probability_classes: tuple[str, ...] = ()  # as the request names them (mask.classes.named_classes)
    cutout: CutoutRequest | None = None

    @property
    def needs_scores(self) -> bool:
        """Whether pixels at another size than the model's are decided (the mask, the overlay, a cut-out), or
        probabilities asked for (maps, the regions' mean): then the model's scores are asked for."""
        probabilities = bool(self.probability_classes) or self.regions is not None
        at_another_size = self.mask_size == MaskSize.ORIGINAL or self.include_overlay or self.cutout is not None
        return at_another_size or probabilities


@dataclass(frozen=True)
class Prepared:
    tensor: np.ndarray  # [1, h, w, 3], what the model gets
    shadow_tensor: np.ndarray | None  # what a shadow of another profile gets, when there is one
    picture: np.ndarray | None  # the image at the overlay's size (BGR), only for an overlay
    width: int  # the image once oriented
    height: int
    clock: StageClock  # probe, decode, resize, pack

    @property
    def model_shape(self) -> tuple[int, int]:
        return self.tensor.shape[1], self.tensor.shape[2]


@dataclass(frozen=True)
class EncodedMask:
    model_mask: np.ndarray  # (h, w) uint8 class ids at the model's size, as the model answered
    width: int
    height: int
    format: MaskFormat
    encoded: EncodedGrid
    classes: list[ClassStats]
    overlay: bytes
    clock: StageClock  # unpack, postprocess, encode
    regions: list[Region] | None = None  # when asked for
    probabilities: list[ProbabilityMap] = field(default_factory=list)  # when asked for, in the order asked
    cutout: Cutout | None = None  # when asked for


@dataclass(frozen=True)
class Segmentation:
    route: Route
    model_version: int
    image_width: int
    image_height: int
    mask: EncodedMask
    timings: Timings


def prepare(
    data: bytes | memoryview,
    profile: Profile,
    limits: Limits,
    overlay: MaskSize | None,
    shadow_profile: Profile | None,
    *,
    cutout: bool = False,
    info: ImageInfo | None = None,
) -> Prepared:
    """Bytes to the model's input tensor, and what else the call needs from the decoded image: a picture for an
    overlay the size of a mask of size `overlay`, the input of a shadow of another profile. The decoded image itself
    (25 MB at 4K) is not kept, even for a `cutout` (refused here past its limit, before the decode): that decodes
    the photo again once the model has answered (finish), so that the calls waiting for the model hold no photo.
    `info`: the image's probe, when it was made already."""
    clock = StageClock()
    if info is None:
        info = probe(data, limits)
        clock.lap("probe")
    if cutout and info.width * info.height > limits.max_cutout_pixels:
        raise LimitExceeded(
            f"the image is {info.width}x{info.height}, {info.width * info.height} pixels, over the "
            f"{limits.max_cutout_pixels} a cut-out may have (max_cutout_pixels): ask for a mask, or send it smaller"
        )
    reduced_to = model_size(*info.oriented_size, profile) if profile.decode == Decode.REDUCED else None
    decoded = decode(data, info, reduced_to)
    clock.lap("decode")
    # From the decoded size: the decoder may orient an image whose header the probe could not read.
    tensor_size = model_size(decoded.width, decoded.height, profile)
    resized = resize_to(decoded.bgr, tensor_size)
    picture = None
    if overlay is not None:
        picture = overlay_picture(decoded.bgr, *(tensor_size if overlay == MaskSize.MODEL else decoded.size))
    clock.lap("resize")
    tensor = model_input(resized, profile)
    shadow_tensor = None
    if shadow_profile is not None and shadow_profile != profile:
        shadow_tensor = tensor_for(decoded.bgr, decoded.size, shadow_profile)
    clock.lap("pack")
    return Prepared(tensor, shadow_tensor, picture, decoded.width, decoded.height, clock)


def finish(
    prepared: Prepared,
    prediction: Prediction,
    route: Route,
    options: Options,
    limits: Limits,
    *,
    data: bytes | memoryview = b"",
) -> EncodedMask:
    """The model's answer to a class-id mask at the requested size, its statistics, and its encoding; `data`, the
    image's bytes, for a cut-out's pixels."""
    clock = StageClock()
    answer: ModelMask = inference.read_answer(prediction, route, prepared.tensor, options.needs_scores)
    small = answer.classes
    clock.lap("unpack")
    if options.mask_size == MaskSize.MODEL:
        grid = grid_for(small, small.shape[1], small.shape[0])
    else:
        grid = upscale(answer, prepared.width, prepared.height)
    classes = class_statistics(grid)
    # The model-size softmax, once a call and only when something reads it: the maps, the regions' means (where
    # there is a region), a soft cut-out.
    probabilities = _Softmax(answer.scores) if answer.scores is not None else None
    regions = None
    if options.regions is not None:
        ids = named_classes(options.regions.classes, route.model.labels)
        region_limits = RegionLimits(limits.max_regions, limits.max_polygon_points)
        mean = None if probabilities is None else _mean_probability(probabilities, grid.width, grid.height)
        regions = find_regions(
            expand(grid), classes, options.regions, frozenset(ids) or None, region_limits, mean_probability=mean
        )
    maps = []
    if options.probability_classes:
        ids = _probability_classes(options.probability_classes, route, limits)
        maps = probability_maps(_scored(probabilities, ids, route)(), ids, grid.width, grid.height)
    cutout_alpha = None
    if options.cutout is not None:
        if options.mask_size == MaskSize.ORIGINAL:
            photo_grid, photo_classes = grid, classes
        else:
            photo_grid = upscale(answer, prepared.width, prepared.height)
            photo_classes = class_statistics(photo_grid)
        cutout_alpha = _cutout_alpha(options.cutout, probabilities, photo_grid, photo_classes, route)
    clock.lap("postprocess")
    encoded = FORMATS[options.mask_format](grid)
    overlay = b""
    if prepared.picture is not None:
        overlay = overlay_png(prepared.picture, answer, grid.width, grid.height)
    cutout = None
    if cutout_alpha is not None and options.cutout is not None:
        # The photo decoded again, as prepare decoded it whole: its time is the cut-out's, in encode.
        photo = decode(data, probe(data, limits)).bgr
        cutout = make_cutout(photo, *cutout_alpha, options.cutout)
        del photo
    clock.lap("encode")
    return EncodedMask(
        small, grid.width, grid.height, options.mask_format, encoded, classes, overlay, clock, regions, maps, cutout
    )


def _cutout_alpha(
    request: CutoutRequest,
    probabilities: _Softmax | None,
    photo_grid: MaskGrid,
    classes: list[ClassStats],
    route: Route,
) -> tuple[np.ndarray, Box, int]:
    """A cut-out's alpha over its box, the box, and the subject's pixels, from the mask at the photo's size and its
    statistics: only the box's part of the mask is made."""
    ids = named_classes(request.classes, route.model.labels)
    subject, subject_pixels = subject_of(classes, ids)
    box = crop_box(subject, photo_grid.width, photo_grid.height, request)
    if request.edge == Edge.HARD:
        return hard_alpha(expand_part(photo_grid, box.rows, box.columns), ids), box, subject_pixels
    softmax = _scored(probabilities, ids, route, asking=" for a soft cut-out", instead="; ask for CUTOUT_EDGE_HARD")()
    plane = softmax[:, :, list(ids)].sum(axis=2) if ids else 1 - softmax[:, :, 0]
    size = (photo_grid.width, photo_grid.height)
    return soft_alpha(np.ascontiguousarray(plane, dtype=np.float32), size, box), box, subject_pixels


class _Softmax:
    """The model's probabilities at its size (mask.probability.model_size_probabilities), made when first asked for
    and kept for the call."""

    def __init__(self, scores: ScoreMap) -> None:
        self._scores = scores
        self._made: np.ndarray | None = None

    @property
    def classes(self) -> int:
        return self._scores.scores.shape[2]

    def __call__(self) -> np.ndarray:
        if self._made is None:
            self._made = model_size_probabilities(self._scores)
        return self._made


def _mean_probability(probabilities: _Softmax, width: int, height: int) -> MeanProbability:
    """Each region's mean probability, from the model's probabilities at its size."""

    def mean(class_id: int, x: int, y: int, inside: np.ndarray) -> float:
        return region_mean(probabilities(), class_id, (width, height), (x, y), inside)

    return mean


def _probability_classes(names: tuple[str, ...], route: Route, limits: Limits) -> tuple[int, ...]:
    """The classes whose probability maps a request asks for, checked against the limit."""
    ids = named_classes(names, route.model.labels)
    if len(ids) > limits.max_probability_maps:
        raise LimitExceeded(
            f"{len(ids)} probability maps asked for, over the limit of {limits.max_probability_maps} "
            "(max_probability_maps): ask for fewer classes, or in several calls"
        )
    return ids


def _scored(
    probabilities: _Softmax | None, ids: tuple[int, ...], route: Route, *, asking: str = "", instead: str = ""
) -> _Softmax:
    """The model's probabilities, for the classes `ids`: NotSupportedByModel where the model gives no scores (for
    what is `asking`, and what to ask `instead`), InvalidRequest for a class beyond its classes."""
    if probabilities is None:
        raise NotSupportedByModel(
            f"model {route.model.name!r} gives no probabilities{asking}: its profile names no scores behind its "
            f"class ids (scores_key), or enlarges class ids without them (upscale = nearest){instead}"
        )
    count = probabilities.classes
    beyond = [i for i in ids if i >= count]
    if beyond:
        raise InvalidRequest(f"class {beyond[0]} is beyond the model's {count} classes (0 to {count - 1})")
    return probabilities


@dataclass(frozen=True)
class Job:
    """Whose an image's CPU stages are, and what they cost (service/workers.py)."""

    caller: str
    megapixels: float


class Pipeline:
    def __init__(
        self,
        limits: Limits,
        predict_timeout_s: float,
        shadows: ShadowRunner | None = None,
        workers: FairWorkers | None = None,
    ) -> None:
        self.limits = limits
        self.predict_timeout_s = predict_timeout_s
        self.shadows = shadows or ShadowRunner(max_in_flight=0, predict_timeout_s=predict_timeout_s)
        self.workers = workers or FairWorkers(usable_cores())

    async def segment(
        self, data: bytes | memoryview, route: Route, options: Options, deadline: float | None
    ) -> Segmentation:
        """Segments one image; `deadline` is the caller's, on the time.monotonic() clock, or None.

        A route with a shadow also starts the shadow, which is handed this call's model-size mask once it exists.
        """
        with tracing.span("segment", model=route.model.name, variant=route.variant):
            return await self._segment(data, route, options, deadline)

    async def _segment(
        self, data: bytes | memoryview, route: Route, options: Options, deadline: float | None
    ) -> Segmentation:
        start = time.perf_counter_ns()
        shadow_profile = route.shadow.model.profile if route.shadow is not None else None
        overlay = options.mask_size if options.include_overlay else None
        # The header read here, on the loop (a fraction of a millisecond): the image's pixels are its jobs' cost,
        # which orders them among the other callers' (service/workers.py).
        probing = StageClock()
        info = probe(data, self.limits)
        probing.lap("probe")
        job = Job(caller.get().name, info.width * info.height / 1e6)
        prepared = await self.workers.run(
            job.caller,
            job.megapixels,
            prepare,
            data,
            route.model.profile,
            self.limits,
            overlay,
            shadow_profile,
            cutout=options.cutout is not None,
            info=info,
        )
        if route.shadow is None:
            return await self._finish(prepared, route, options, deadline, start, job=job, probing=probing, data=data)
        primary_mask: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        shadow_tensor = prepared.shadow_tensor if prepared.shadow_tensor is not None else prepared.tensor
        self.shadows.start(route.shadow, shadow_tensor, primary_mask)
        try:
            result = await self._finish(prepared, route, options, deadline, start, job=job, probing=probing, data=data)
        except BaseException:
            primary_mask.cancel()
            raise
        primary_mask.set_result(result.mask.model_mask)
        return result

    async def _finish(
        self,
        prepared: Prepared,
        route: Route,
        options: Options,
        deadline: float | None,
        start: int,
        *,
        job: Job,
        probing: StageClock,
        data: bytes | memoryview,
    ) -> Segmentation:
        timeout = self.predict_timeout_s
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("the deadline passed before the image reached the model")
            timeout = min(timeout, remaining)
        predicting = StageClock()
        with tracing.span("predict", client=True, backend=route.backend.name, model=route.spec.name):
            prediction = await inference.predict(route, prepared.tensor, timeout, options.needs_scores)
        predicting.lap("predict")
        mask = await self.workers.run(
            job.caller, job.megapixels, finish, prepared, prediction, route, options, self.limits, data=data
        )
        if tracing.on():
            # The CPU stages ran in worker threads; their spans are written from the times measured there.
            tracing.record_stages([*probing.spans(), *prepared.clock.spans(), *mask.clock.spans()])
        clocks = (probing, prepared.clock, predicting, mask.clock)
        timings = Timings.of(clocks, total_us=(time.perf_counter_ns() - start) // 1000)
        return Segmentation(route, prediction.version, prepared.width, prepared.height, mask, timings)
