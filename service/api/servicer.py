"""SegmentationService: each RPC hands off to the router and the pipeline, and translates their answers.

Request ids, the call log, load shedding and status codes are the interceptors' (api/interceptors.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.admission import Places
from service.api import convert
from service.api.receive import PendingRequest, received
from service.api.requests import ImageRequest, StreamItem
from service.api.status import to_status
from service.api.streaming import answer_in_order
from service.context import caller, note_route
from service.errors import GatewayError, Overloaded
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.routing import Router

MAX_STREAM_ID_BYTES = 256
LIST_MODELS_TIMEOUT_S = 5.0


ROUTING_KEY = "x-routing-key"


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _routing_key(context: grpc.aio.ServicerContext) -> str:
    """The caller's x-routing-key header: the same key gets the same variant of a traffic split."""
    for key, value in context.invocation_metadata() or ():
        if key == ROUTING_KEY and isinstance(value, str):
            return value
    return ""


class SegmentationServicer(pb_grpc.SegmentationServiceServicer):
    def __init__(
        self, router: Router, pipeline: Pipeline, stream_window: int, metrics: Metrics, places: Places
    ) -> None:
        # Swapped by a config reload; each call reads it once, so it finishes on the config it started with.
        self.router = router
        self._pipeline = pipeline
        self._stream_window = stream_window
        self._metrics = metrics
        self._places = places

    async def _segment(
        self,
        router: Router,
        request: pb.SegmentImageRequest | ImageRequest | PendingRequest,
        routing_key: str,
        deadline: float | None,
        bounded: bool,
    ) -> pb.SegmentImageResponse:
        """The answer for one image; `bounded`: its wait for a place ends at max_queue_wait (a unary call's does, a
        stream item's lasts as long as its stream). A unary call's request is read once it has its place, so that
        the messages held are those of the images worked on."""
        who = caller.get()
        try:
            # One of the places images are worked on in, shared fairly between callers (service/admission.py).
            async with self._places.place(who.name, deadline, bounded):
                request = await received(request)
                route = router.route(convert.model_choice(request.model), routing_key, who.grants)
                note_route(route.model.name, route.variant)
                result = await self._pipeline.segment(request.image, route, convert.options(request), deadline)
        except Overloaded:
            self._metrics.shed.inc()
            raise
        self._metrics.observe_stages(result.timings)
        return convert.segment_response(result)

    # Over gRPC the requests are api/requests.py's views (the image not copied), read later (api/receive.py); over
    # Connect, protobuf messages.
    async def SegmentImage(self, request, context):  # noqa: N802 (gRPC method name)
        with self.router.in_use() as router:
            return await self._segment(router, request, _routing_key(context), _deadline(context), bounded=True)

    async def SegmentImageStream(  # noqa: N802
        self, request_iterator: AsyncIterator[StreamItem], context
    ) -> AsyncIterator[pb.SegmentImageStreamResponse]:
        router, routing_key, deadline = self.router, _routing_key(context), _deadline(context)

        async def answer(index: int, item: StreamItem) -> pb.SegmentImageStreamResponse:
            item_id = item.id.encode()[:MAX_STREAM_ID_BYTES].decode("utf-8", "ignore")
            response = pb.SegmentImageStreamResponse(index=index, id=item_id)
            try:
                segmented = await self._segment(router, item.request, routing_key, deadline, bounded=False)
                response.result.CopyFrom(segmented)
            except Exception as exc:  # the item fails alone; to_status logs what is unexpected
                code, message = to_status(exc)
                response.error.CopyFrom(pb.ItemError(code=code.value[0], message=message))
            return response

        with router.in_use():
            async for response in answer_in_order(request_iterator, answer, self._stream_window):
                yield response

    async def ListModels(self, request, context):  # noqa: N802
        await received(request)  # nothing in it is used
        with self.router.in_use() as router:
            return await self._list_models(router)

    async def _list_models(self, router: Router) -> pb.ListModelsResponse:

        async def describe(name: str) -> pb.ModelInfo:
            model = router.models[name]
            backend = router.backend_of(model)
            try:
                versions, error = await backend.model_status(model.name_at_backend, LIST_MODELS_TIMEOUT_S), ""
            except GatewayError as exc:
                versions, error = None, exc.message
            shadow = self._pipeline.shadows.figures(model.name, model.shadow.variant) if model.shadow else None
            return convert.model_info(
                model,
                router.signature_of(model),
                is_default=model is router.default,
                versions=versions,
                backend_error=error,
                shadow=shadow,
            )

        # The models this caller may use: the default first, then the others in the configuration's order.
        grants = caller.get().grants
        usable = [name for name in router.models if grants.may_use(name)]
        names = sorted(usable, key=lambda name: router.models[name] is not router.default)
        return pb.ListModelsResponse(models=await asyncio.gather(*(describe(name) for name in names)))
