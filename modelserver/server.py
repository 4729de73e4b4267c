"""The gRPC server: PredictionService and ModelService with the official stubs, reflection, bounded inference."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from modelserver import tls
from modelserver.errors import ServingError, invalid
from modelserver.models import LoadOptions
from modelserver.monitoring import Metrics
from modelserver.options import MAX_MESSAGE_BYTES, ServerOptions
from modelserver.predict import get_model_metadata, predict
from modelserver.registry import ModelRegistry, RegistryOptions

log = logging.getLogger("modelserver")
T = TypeVar("T")


class _Calls:
    """Runs blocking handlers on the inference pool and turns ServingError into the matching status."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor

    async def run(
        self,
        context: grpc.aio.ServicerContext,
        fn: Callable[..., T],
        *args: Any,
        done: Callable[[grpc.StatusCode], None] | None = None,
    ) -> T:
        """fn(*args) on the pool; `done` is given the call's status code however it ends."""
        code = grpc.StatusCode.OK
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except ServingError as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error in the model server; see its log")
        finally:
            if done is not None:
                done(code)
        raise AssertionError("unreachable: abort() raises")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry, calls: _Calls, as_tensor_content: bool, metrics: Metrics) -> None:
        self._registry = registry
        self._calls = calls
        self._as_tensor_content = as_tensor_content
        self._metrics = metrics

    async def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        # Counted and timed as PredictionServiceImpl::Predict does (prediction_service_impl.cc:39-62).
        start = time.monotonic_ns()

        def done(code: grpc.StatusCode) -> None:
            self._metrics.record_request(request.model_spec.name, code, "Predict", "GRPC", start)

        return await self._calls.run(context, predict, self._registry, request, self._as_tensor_content, done=done)

    async def GetModelMetadata(self, request, context):  # noqa: N802
        return await self._calls.run(context, get_model_metadata, self._registry, request)

    async def Classify(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported by this model server")

    async def Regress(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported by this model server")

    async def MultiInference(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported by this model server")


def model_status(
    registry: ModelRegistry, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    return registry.status(request.model_spec)


def reload_config(
    registry: ModelRegistry, request: model_management_pb2.ReloadConfigRequest
) -> model_management_pb2.ReloadConfigResponse:
    """ModelServiceImpl::HandleReloadConfigRequest (model_servers/model_service_impl.cc:44-82): the same reload
    as the config file poll's. Blocking: it waits for new models to load."""
    if request.config.WhichOneof("config") != "model_config_list":
        raise invalid(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently "
            "supported"
        )
    for index, config in enumerate(request.config.model_config_list.config):
        log.info(
            "reload config entry %d: name %s, path %s, platform %s",
            index,
            config.name,
            config.base_path,
            config.model_platform,
        )
    registry.reload(request.config)
    return model_management_pb2.ReloadConfigResponse()  # its status left at the default: OK


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    async def GetModelStatus(self, request, context):  # noqa: N802
        try:
            return model_status(self._registry, request)
        except ServingError as exc:
            await context.abort(exc.code, exc.message)

    async def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        # Not on the inference pool: a reload waits for loads, which must not hold up Predict calls.
        try:
            return await asyncio.to_thread(reload_config, self._registry, request)
        except ServingError as exc:
            log.error("ReloadConfig failed: %s", exc.message)
            await context.abort(exc.code, exc.message)


def build_registry(options: ServerOptions) -> ModelRegistry:
    load_options = LoadOptions(
        intra_op=options.intra_op_threads,
        inter_op=options.inter_op_threads,
        prefer_tflite_model=options.prefer_tflite_model,
        # No more calls than the inference threads run at once, so further interpreters would only take memory.
        num_tflite_interpreters=min(options.num_tflite_pools, options.max_concurrent_inferences),
        max_num_load_retries=options.max_num_load_retries,
        load_retry_interval_seconds=options.load_retry_interval_seconds,
    )
    return ModelRegistry(
        RegistryOptions(
            load=load_options,
            file_system_poll_wait_seconds=options.file_system_poll_wait_seconds,
            allow_version_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
        )
    )


def create_server(
    options: ServerOptions, registry: ModelRegistry, metrics: Metrics
) -> tuple[grpc.aio.Server, int, ThreadPoolExecutor]:
    """A configured, bound, not yet started server, its port, and the inference pool it uses; Predict calls are
    recorded in `metrics`."""
    executor = ThreadPoolExecutor(max_workers=options.max_concurrent_inferences, thread_name_prefix="inference")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            *options.grpc_channel_arguments,
        ]
    )
    calls = _Calls(executor)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(registry, calls, options.enable_serialization_as_tensor_content, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), server)
    reflection.enable_server_reflection(
        (
            prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
            model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"{options.bind_address}:{options.port}"
    if options.ssl_config_file:
        port = server.add_secure_port(address, tls.server_credentials(options.ssl_config_file))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {options.bind_address}:{options.port}")
    return server, port, executor
