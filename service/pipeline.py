"""One image through every stage: probe, decode, resize, pack, predict, unpack, postprocess, encode.

Backend-agnostic: the route names a Backend, which takes and returns numpy arrays. The stages before and after
Predict are CPU work (OpenCV and numpy release the GIL), run in worker threads so the event loop keeps serving
other calls while one image decodes. Each thread returns its stage times; only the event loop assembles them.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from dataclasses import dataclass

import numpy as np

from service import inference, tracing
from service.backends import Prediction
from service.config import Limits
from service.errors import DeadlineExceeded
from service.image.decode import decode
from service.image.probe import probe
from service.image.resize import model_size, resize_to
from service.image.tensor import model_input, tensor_for
from service.mask.classes import ModelMask
from service.mask.encode import encode_png, encode_raw, run_lengths
from service.mask.grid import grid_for
from service.mask.overlay import overlay_picture, overlay_png
from service.mask.statistics import ClassStats, class_statistics
from service.mask.upscale import upscale
from service.profiles import Decode, Profile
from service.routing import Route
from service.shadow import ShadowRunner


class MaskFormat(enum.Enum):
    PNG = "png"
    RAW = "raw"
    RLE = "rle"


class MaskSize(enum.Enum):
    ORIGINAL = "original"
    MODEL = "model"


@dataclass(frozen=True)
class Options:
    mask_format: MaskFormat = MaskFormat.PNG
    mask_size: MaskSize = MaskSize.ORIGINAL
    include_overlay: bool = False

    @property
    def needs_scores(self) -> bool:
        """Whether pixels at another size than the model's are decided: then the model's scores are asked for."""
        return self.mask_size == MaskSize.ORIGINAL or self.include_overlay


@dataclass(frozen=True)
class Timings:
    """Microseconds per stage."""

    probe_us: int = 0
    decode_us: int = 0
    resize_us: int = 0
    pack_us: int = 0
    predict_us: int = 0
    unpack_us: int = 0
    postprocess_us: int = 0
    encode_us: int = 0
    total_us: int = 0


class _Clock:
    def __init__(self) -> None:
        self.started_ns = self._last = time.perf_counter_ns()

    def lap(self) -> int:
        now = time.perf_counter_ns()
        elapsed, self._last = (now - self._last) // 1000, now
        return elapsed


@dataclass(frozen=True)
class Prepared:
    tensor: np.ndarray  # [1, h, w, 3], what the model gets
    shadow_tensor: np.ndarray | None  # what a shadow of another profile gets, when there is one
    picture: np.ndarray | None  # the image at the overlay's size (BGR), only for an overlay
    width: int  # the image once oriented
    height: int
    probe_us: int
    decode_us: int
    resize_us: int
    pack_us: int
    started_ns: int  # perf_counter_ns at the probe's start, for trace spans

    @property
    def model_shape(self) -> tuple[int, int]:
        return self.tensor.shape[1], self.tensor.shape[2]


@dataclass(frozen=True)
class EncodedMask:
    model_mask: np.ndarray  # (h, w) uint8 class ids at the model's size, as the model answered
    width: int
    height: int
    format: MaskFormat
    data: bytes  # PNG or RAW
    rle_values: np.ndarray | None
    rle_counts: np.ndarray | None
    classes: list[ClassStats]
    overlay: bytes
    unpack_us: int
    postprocess_us: int
    encode_us: int
    started_ns: int  # perf_counter_ns at the unpack's start, for trace spans


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
) -> Prepared:
    """Bytes to the model's input tensor, and what else the call needs from the decoded image: a picture for an
    overlay the size of a mask of size `overlay`, the input of a shadow of another profile. The decoded image itself
    (25 MB at 4K) is not kept."""
    clock = _Clock()
    info = probe(data, limits)
    probe_us = clock.lap()
    reduced_to = model_size(*info.oriented_size, profile) if profile.decode == Decode.REDUCED else None
    decoded = decode(data, info, reduced_to)
    decode_us = clock.lap()
    # From the decoded size: the decoder may orient an image whose header the probe could not read.
    tensor_size = model_size(decoded.width, decoded.height, profile)
    resized = resize_to(decoded.bgr, tensor_size)
    picture = None
    if overlay is not None:
        picture = overlay_picture(decoded.bgr, *(tensor_size if overlay == MaskSize.MODEL else decoded.size))
    resize_us = clock.lap()
    tensor = model_input(resized, profile)
    shadow_tensor = None
    if shadow_profile is not None and shadow_profile != profile:
        shadow_tensor = tensor_for(decoded.bgr, decoded.size, shadow_profile)
    pack_us = clock.lap()
    return Prepared(
        tensor,
        shadow_tensor,
        picture,
        decoded.width,
        decoded.height,
        probe_us,
        decode_us,
        resize_us,
        pack_us,
        clock.started_ns,
    )


def finish(prepared: Prepared, prediction: Prediction, route: Route, options: Options) -> EncodedMask:
    """The model's answer to a class-id mask at the requested size, its statistics, and its encoding."""
    clock = _Clock()
    answer: ModelMask = inference.read_answer(prediction, route, prepared.tensor, options.needs_scores)
    small = answer.classes
    unpack_us = clock.lap()
    if options.mask_size == MaskSize.MODEL:
        grid = grid_for(small, small.shape[1], small.shape[0])
    else:
        grid = upscale(answer, prepared.width, prepared.height)
    classes = class_statistics(grid)
    postprocess_us = clock.lap()
    data, values, counts = b"", None, None
    if options.mask_format == MaskFormat.PNG:
        data = encode_png(grid)
    elif options.mask_format == MaskFormat.RAW:
        data = encode_raw(grid)
    else:
        values, counts = run_lengths(grid)
    overlay = b""
    if prepared.picture is not None:
        overlay = overlay_png(prepared.picture, answer, grid.width, grid.height)
    encode_us = clock.lap()
    return EncodedMask(
        small,
        grid.width,
        grid.height,
        options.mask_format,
        data,
        values,
        counts,
        classes,
        overlay,
        unpack_us,
        postprocess_us,
        encode_us,
        clock.started_ns,
    )


class Pipeline:
    def __init__(self, limits: Limits, predict_timeout_s: float, shadows: ShadowRunner | None = None) -> None:
        self.limits = limits
        self.predict_timeout_s = predict_timeout_s
        self.shadows = shadows or ShadowRunner(max_in_flight=0, predict_timeout_s=predict_timeout_s)

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
        prepared = await asyncio.to_thread(prepare, data, route.model.profile, self.limits, overlay, shadow_profile)
        if route.shadow is None:
            return await self._finish(prepared, route, options, deadline, start)
        primary_mask: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        shadow_tensor = prepared.shadow_tensor if prepared.shadow_tensor is not None else prepared.tensor
        self.shadows.start(route.shadow, shadow_tensor, primary_mask)
        try:
            result = await self._finish(prepared, route, options, deadline, start)
        except BaseException:
            primary_mask.cancel()
            raise
        primary_mask.set_result(result.mask.model_mask)
        return result

    async def _finish(
        self, prepared: Prepared, route: Route, options: Options, deadline: float | None, start: int
    ) -> Segmentation:
        timeout = self.predict_timeout_s
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("the deadline passed before the image reached the model")
            timeout = min(timeout, remaining)
        before = time.perf_counter_ns()
        with tracing.span("predict", client=True, backend=route.backend.name, model=route.spec.name):
            prediction = await inference.predict(route, prepared.tensor, timeout, options.needs_scores)
        predict_us = (time.perf_counter_ns() - before) // 1000
        mask = await asyncio.to_thread(finish, prepared, prediction, route, options)
        if tracing.on():
            _trace_stages(prepared, mask)
        timings = Timings(
            probe_us=prepared.probe_us,
            decode_us=prepared.decode_us,
            resize_us=prepared.resize_us,
            pack_us=prepared.pack_us,
            predict_us=predict_us,
            unpack_us=mask.unpack_us,
            postprocess_us=mask.postprocess_us,
            encode_us=mask.encode_us,
            total_us=(time.perf_counter_ns() - start) // 1000,
        )
        return Segmentation(route, prediction.version, prepared.width, prepared.height, mask, timings)


def _trace_stages(prepared: Prepared, mask: EncodedMask) -> None:
    """Spans for the CPU stages, from the times their threads measured, laid end to end from each part's start."""
    stages: list[tuple[str, int, int]] = []
    parts = (
        (
            prepared.started_ns,
            ("probe", "decode", "resize", "pack"),
            (prepared.probe_us, prepared.decode_us, prepared.resize_us, prepared.pack_us),
        ),
        (mask.started_ns, ("unpack", "postprocess", "encode"), (mask.unpack_us, mask.postprocess_us, mask.encode_us)),
    )
    for started_ns, names, durations_us in parts:
        offsets_ns = itertools.accumulate(durations_us[:-1], lambda total, us: total + us * 1000, initial=0)
        stages += [
            (name, started_ns + offset, us) for name, offset, us in zip(names, offsets_ns, durations_us, strict=True)
        ]
    tracing.record_stages(stages)
