"""One image through every stage: probe, decode, resize, pack, predict, unpack, resize back, statistics, encode.

The stages before and after Predict are CPU work (OpenCV and numpy release the GIL), run in worker threads so
the event loop keeps serving other calls while one image decodes.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field

import numpy as np

from service.config import Config, ModelConfig
from service.decode import decode
from service.encode import encode_png, encode_raw, run_lengths
from service.errors import DeadlineExceeded, InvalidRequest, ModelNotFound
from service.overlay import overlay_png
from service.pack import predict_request
from service.predict import Backend
from service.probe import probe
from service.resize import resize_for_model
from service.resize_back import MaskGrid, grid_for
from service.statistics import ClassStats, class_statistics
from service.unpack import mask_from_tensor
from tfs_subset.tensorflow_serving.apis import model_pb2, predict_pb2


class MaskFormat(enum.Enum):
    PNG = "png"
    RAW = "raw"
    RLE = "rle"


class MaskSize(enum.Enum):
    ORIGINAL = "original"
    MODEL = "model"


@dataclass(frozen=True)
class ModelChoice:
    """What the caller asked for; empty fields mean the configured defaults."""

    name: str = ""
    version: int | None = None
    version_label: str = ""
    signature: str = ""


@dataclass(frozen=True)
class Options:
    model: ModelChoice = field(default_factory=ModelChoice)
    mask_format: MaskFormat = MaskFormat.PNG
    mask_size: MaskSize = MaskSize.ORIGINAL
    include_overlay: bool = False


@dataclass
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
        self._last = time.perf_counter_ns()

    def lap(self) -> int:
        now = time.perf_counter_ns()
        elapsed, self._last = (now - self._last) // 1000, now
        return elapsed


@dataclass
class Prepared:
    model: ModelConfig
    request: predict_pb2.PredictRequest
    rgb: np.ndarray  # the decoded image (possibly reduced), kept for the overlay
    model_shape: tuple[int, int]  # (h, w) of the model input
    width: int  # the image once oriented
    height: int


@dataclass
class Segmentation:
    model_name: str
    model_version: int
    signature: str
    image_width: int
    image_height: int
    mask_width: int
    mask_height: int
    mask_format: MaskFormat
    mask_data: bytes
    rle_values: np.ndarray | None
    rle_counts: np.ndarray | None
    classes: list[ClassStats]
    labels: tuple[str, ...]
    overlay: bytes
    timings: Timings


def _describe(spec: model_pb2.ModelSpec) -> str:
    """'model 'deeplab' version 3', for error messages."""
    if spec.WhichOneof("version_choice") == "version":
        return f"model {spec.name!r} version {spec.version.value}"
    if spec.WhichOneof("version_choice") == "version_label":
        return f"model {spec.name!r} label {spec.version_label!r}"
    return f"model {spec.name!r}"


class Pipeline:
    def __init__(self, config: Config, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self._models = {model.name: model for model in config.models}

    def model_for(self, choice: ModelChoice) -> ModelConfig:
        if choice.version is not None and choice.version <= 0:
            raise InvalidRequest(f"model version must be a positive integer, got {choice.version}")
        if not choice.name:
            return self.config.model
        model = self._models.get(choice.name)
        if model is None:
            configured = ", ".join(sorted(self._models))
            raise ModelNotFound(f"model {choice.name!r} is not configured on this service; configured: {configured}")
        return model

    def prepare(self, data: bytes, options: Options, timings: Timings) -> Prepared:
        clock = _Clock()
        model = self.model_for(options.model)
        info = probe(data, self.config.limits)
        timings.probe_us = clock.lap()
        decoded = decode(data, info, model.input_size)
        timings.decode_us = clock.lap()
        resized = resize_for_model(decoded.rgb, model.input_size, (decoded.width, decoded.height))
        timings.resize_us = clock.lap()
        request = predict_request(
            resized,
            model,
            version=options.model.version,
            version_label=options.model.version_label or None,
            signature=options.model.signature or None,
        )
        timings.pack_us = clock.lap()
        return Prepared(model, request, decoded.rgb, resized.shape[:2], decoded.width, decoded.height)

    def finish(
        self, prepared: Prepared, response: predict_pb2.PredictResponse, options: Options, timings: Timings
    ) -> Segmentation:
        clock = _Clock()
        model = prepared.model
        small = mask_from_tensor(response.outputs[model.output_key], prepared.model_shape)
        timings.unpack_us = clock.lap()
        if options.mask_size == MaskSize.MODEL:
            grid: MaskGrid = grid_for(small, small.shape[1], small.shape[0])
        else:
            grid = grid_for(small, prepared.width, prepared.height)
        classes = class_statistics(grid)
        timings.postprocess_us = clock.lap()
        data, values, counts = b"", None, None
        if options.mask_format == MaskFormat.PNG:
            data = encode_png(grid)
        elif options.mask_format == MaskFormat.RAW:
            data = encode_raw(grid)
        else:
            values, counts = run_lengths(grid)
        overlay = overlay_png(prepared.rgb, grid) if options.include_overlay else b""
        timings.encode_us = clock.lap()
        spec = response.model_spec
        return Segmentation(
            model_name=spec.name or model.name,
            model_version=spec.version.value,
            signature=spec.signature_name or prepared.request.model_spec.signature_name,
            image_width=prepared.width,
            image_height=prepared.height,
            mask_width=grid.width,
            mask_height=grid.height,
            mask_format=options.mask_format,
            mask_data=data,
            rle_values=values,
            rle_counts=counts,
            classes=classes,
            labels=model.labels,
            overlay=overlay,
            timings=timings,
        )

    async def segment(self, data: bytes, options: Options, deadline: float | None) -> Segmentation:
        """Segments one image; `deadline` is the caller's, on the time.monotonic() clock, or None."""
        start = time.perf_counter_ns()
        timings = Timings()
        prepared = await asyncio.to_thread(self.prepare, data, options, timings)
        timeout = self.config.predict_timeout_s
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("the deadline passed before the image reached the model")
            timeout = min(timeout, remaining)
        what = _describe(prepared.request.model_spec)
        before = time.perf_counter_ns()
        response = await self.backend.predict(prepared.request, timeout, what)
        timings.predict_us = (time.perf_counter_ns() - before) // 1000
        result = await asyncio.to_thread(self.finish, prepared, response, options, timings)
        timings.total_us = (time.perf_counter_ns() - start) // 1000
        return result
