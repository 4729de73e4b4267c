"""The gRPC server: PredictionService and ModelService with the official stubs, reflection, bounded inference."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from modelserver.errors import ServingError
from modelserver.models import LoadOptions, Model, ModelRegistry
from modelserver.options import MAX_MESSAGE_BYTES, ServerOptions
from modelserver.predict import get_model_metadata, predict

log = logging.getLogger("modelserver")
T = TypeVar("T")


class _Calls:
    """Runs blocking handlers on the inference pool and turns ServingError into the matching status."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor

    async def run(self, context: grpc.aio.ServicerContext, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except ServingError as exc:
            await context.abort(exc.code, exc.message)
        except Exception:
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error in the model server; see its log")
        raise AssertionError("unreachable: abort() raises")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry, calls: _Calls) -> None:
        self._registry = registry
        self._calls = calls

    async def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        return await self._calls.run(context, predict, self._registry, request)

    async def GetModelMetadata(self, request, context):  # noqa: N802
        return await self._calls.run(context, get_model_metadata, self._registry, request)

    async def Classify(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported by this model server")

    async def Regress(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported by this model server")

    async def MultiInference(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported by this model server")


def model_status(registry: ModelRegistry, request: get_model_status_pb2.GetModelStatusRequest):
    spec = request.model_spec
    model = registry.models.get(spec.name)
    if model is None:
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, status in model.statuses(spec):
        entry = response.model_version_status.add(version=version, state=int(status.state))
        entry.status.error_code = status.error_code
        entry.status.error_message = status.error_message
    return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    async def GetModelStatus(self, request, context):  # noqa: N802
        try:
            return model_status(self._registry, request)
        except ServingError as exc:
            await context.abort(exc.code, exc.message)

    async def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "config reload is not supported; restart with the new --model_config_file",
        )


def build_registry(options: ServerOptions) -> ModelRegistry:
    load_options = LoadOptions(
        intra_op=options.intra_op_threads,
        inter_op=options.inter_op_threads,
        prefer_tflite_model=options.prefer_tflite_model,
        # No more calls than the inference threads run at once, so further interpreters would only take memory.
        num_tflite_interpreters=min(options.num_tflite_pools, options.max_concurrent_inferences),
    )
    models = [
        Model(config, load_options, options.max_num_load_retries) for config in options.config.model_config_list.config
    ]
    return ModelRegistry(models, options.file_system_poll_wait_seconds)


def create_server(options: ServerOptions, registry: ModelRegistry) -> tuple[grpc.aio.Server, int, ThreadPoolExecutor]:
    """A configured, bound, not yet started server, its port, and the inference pool it uses."""
    executor = ThreadPoolExecutor(max_workers=options.max_concurrent_inferences, thread_name_prefix="inference")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    calls = _Calls(executor)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(registry, calls), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), server)
    reflection.enable_server_reflection(
        (
            prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
            model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_insecure_port(f"{options.bind_address}:{options.port}")
    if port == 0:
        raise OSError(f"cannot listen on {options.bind_address}:{options.port}")
    return server, port, executor
