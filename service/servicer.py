"""SegmentationService: translates between proto messages and the pipeline, and nothing more."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.errors import GatewayError, InvalidRequest, Overloaded
from service.pipeline import MaskFormat, MaskSize, ModelChoice, Options, Pipeline, Segmentation
from service.predict import Backend
from service.status import to_status

log = logging.getLogger("service")

_FORMATS = {
    pb.MASK_FORMAT_UNSPECIFIED: MaskFormat.PNG,
    pb.MASK_FORMAT_PNG: MaskFormat.PNG,
    pb.MASK_FORMAT_RAW: MaskFormat.RAW,
    pb.MASK_FORMAT_RLE: MaskFormat.RLE,
}
_FORMAT_ENUMS = {
    MaskFormat.PNG: pb.MASK_FORMAT_PNG,
    MaskFormat.RAW: pb.MASK_FORMAT_RAW,
    MaskFormat.RLE: pb.MASK_FORMAT_RLE,
}
_SIZES = {
    pb.MASK_SIZE_UNSPECIFIED: MaskSize.ORIGINAL,
    pb.MASK_SIZE_ORIGINAL: MaskSize.ORIGINAL,
    pb.MASK_SIZE_MODEL: MaskSize.MODEL,
}
# ModelVersionStatus.State numbers (10, 20, ...) to ours.
_STATES = {
    10: pb.MODEL_VERSION_STATE_START,
    20: pb.MODEL_VERSION_STATE_LOADING,
    30: pb.MODEL_VERSION_STATE_AVAILABLE,
    40: pb.MODEL_VERSION_STATE_UNLOADING,
    50: pb.MODEL_VERSION_STATE_END,
}
MAX_STREAM_ID_BYTES = 256


def options_from(request: pb.SegmentImageRequest) -> Options:
    selector = request.model
    version_choice = selector.WhichOneof("version_choice")
    if request.mask_format not in _FORMATS:
        raise InvalidRequest(f"unknown mask_format {request.mask_format}; use MASK_FORMAT_PNG, _RAW or _RLE")
    if request.mask_size not in _SIZES:
        raise InvalidRequest(f"unknown mask_size {request.mask_size}; use MASK_SIZE_ORIGINAL or _MODEL")
    return Options(
        model=ModelChoice(
            name=selector.name,
            version=selector.version if version_choice == "version" else None,
            version_label=selector.version_label if version_choice == "version_label" else "",
            signature=selector.signature_name,
        ),
        mask_format=_FORMATS[request.mask_format],
        mask_size=_SIZES[request.mask_size],
        include_overlay=request.include_overlay,
    )


def response_from(result: Segmentation) -> pb.SegmentImageResponse:
    mask = pb.Mask(width=result.mask_width, height=result.mask_height, format=_FORMAT_ENUMS[result.mask_format])
    if result.mask_format == MaskFormat.RLE:
        assert result.rle_values is not None and result.rle_counts is not None
        mask.rle.values.extend(result.rle_values.tolist())
        mask.rle.counts.extend(result.rle_counts.tolist())
    else:
        mask.data = result.mask_data
    t = result.timings
    return pb.SegmentImageResponse(
        mask=mask,
        classes=[
            pb.ClassStat(
                class_id=c.class_id,
                label=result.labels[c.class_id] if c.class_id < len(result.labels) else f"class_{c.class_id}",
                pixel_count=c.pixel_count,
                fraction=c.fraction,
                bounding_box=pb.BoundingBox(x=c.x, y=c.y, width=c.width, height=c.height),
            )
            for c in result.classes
        ],
        model=pb.ModelRef(name=result.model_name, version=result.model_version, signature_name=result.signature),
        image_width=result.image_width,
        image_height=result.image_height,
        overlay=result.overlay,
        timing=pb.Timing(
            probe_us=t.probe_us,
            decode_us=t.decode_us,
            resize_us=t.resize_us,
            pack_us=t.pack_us,
            predict_us=t.predict_us,
            unpack_us=t.unpack_us,
            postprocess_us=t.postprocess_us,
            encode_us=t.encode_us,
            total_us=t.total_us,
        ),
    )


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class SegmentationServicer(pb_grpc.SegmentationServiceServicer):
    def __init__(self, pipeline: Pipeline, backend: Backend) -> None:
        self._pipeline = pipeline
        self._backend = backend
        self._config = pipeline.config
        self._in_flight = 0

    async def _segment(self, request: pb.SegmentImageRequest, deadline: float | None) -> pb.SegmentImageResponse:
        result = await self._pipeline.segment(request.image, options_from(request), deadline)
        return response_from(result)

    async def SegmentImage(self, request, context):  # noqa: N802 (gRPC method name)
        start = time.perf_counter()
        size = len(request.image)
        try:
            if self._in_flight >= self._config.max_concurrent_calls:
                raise Overloaded(
                    f"the service is at its limit of {self._config.max_concurrent_calls} calls in progress; "
                    "retry with backoff"
                )
            self._in_flight += 1
            try:
                response = await self._segment(request, _deadline(context))
            finally:
                self._in_flight -= 1
        except Exception as exc:
            code, message = to_status(exc)
        else:
            code, message = grpc.StatusCode.OK, ""
        log.info("SegmentImage %s bytes=%d %.1fms", code.name, size, (time.perf_counter() - start) * 1000)
        if code != grpc.StatusCode.OK:
            # abort() raises, and gRPC keeps that exception with its traceback, which holds this frame: drop the
            # request first, or every refused 20 MB image stays in memory.
            del request
            await context.abort(code, message)
        return response

    async def _stream_item(
        self, index: int, item: pb.SegmentImageStreamRequest, deadline: float | None
    ) -> pb.SegmentImageStreamResponse:
        start = time.perf_counter()
        response = pb.SegmentImageStreamResponse(index=index, id=item.id)
        code = grpc.StatusCode.OK
        try:
            response.result.CopyFrom(await self._segment(item.request, deadline))
        except Exception as exc:
            code, message = to_status(exc)
            response.error.CopyFrom(pb.ItemError(code=code.value[0], message=message))
        log.info(
            "SegmentImageStream[%d] %s bytes=%d %.1fms",
            index,
            code.name,
            len(item.request.image),
            (time.perf_counter() - start) * 1000,
        )
        return response

    async def SegmentImageStream(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.SegmentImageStreamRequest], context
    ) -> AsyncIterator[pb.SegmentImageStreamResponse]:
        deadline = _deadline(context)
        window = asyncio.Semaphore(self._config.stream_window)
        pending: asyncio.Queue[asyncio.Task[pb.SegmentImageStreamResponse] | None] = asyncio.Queue()

        async def read_requests() -> None:
            index = 0
            try:
                async for item in request_iterator:
                    if len(item.id.encode()) > MAX_STREAM_ID_BYTES:
                        item.id = item.id.encode()[:MAX_STREAM_ID_BYTES].decode("utf-8", "ignore")
                    await window.acquire()  # back-pressure: the client's writes wait while the window is full
                    await pending.put(asyncio.create_task(self._stream_item(index, item, deadline)))
                    index += 1
            finally:
                # Whatever ends the reading, the writer must not wait forever; `await reader` re-raises.
                await pending.put(None)

        reader = asyncio.create_task(read_requests())
        try:
            while True:
                task = await pending.get()
                if task is None:
                    break
                try:
                    yield await task
                finally:
                    window.release()
            await reader
        finally:
            reader.cancel()
            while not pending.empty():
                leftover = pending.get_nowait()
                if leftover is not None:
                    leftover.cancel()

    async def ListModels(self, request, context):  # noqa: N802
        response = pb.ListModelsResponse()
        for model in self._config.models:
            info = response.models.add(
                name=model.name,
                is_default=model is self._config.model,
                signature_name=model.signature,
                labels=list(model.labels),
                input_size=model.input_size,
            )
            try:
                status = await self._backend.model_status(model.name, timeout=5.0)
            except GatewayError as exc:
                info.backend_error = exc.message
                continue
            for version in sorted(status.model_version_status, key=lambda s: s.version):
                info.versions.add(
                    version=version.version,
                    state=_STATES.get(version.state, pb.MODEL_VERSION_STATE_UNSPECIFIED),
                    status_message=version.status.error_message,
                )
        log.info("ListModels OK models=%d", len(response.models))
        return response
