"""The Open Inference Protocol (KServe v2) over gRPC: Triton Inference Server, KServe, Seldon MLServer, OpenVINO
Model Server.

Tensors travel as raw bytes (`raw_input_contents`, `raw_output_contents`); answers in typed contents are read too.
Versions are the protocol's strings of digits; the protocol has no signatures and no version labels. Health comes
from ModelMetadata (the versions) and ModelReady (each version), and the model's tensors from ModelMetadata.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import grpc
import numpy as np

from oip_subset.inference import grpc_service_pb2 as pb
from oip_subset.inference import grpc_service_pb2_grpc as pb_grpc
from service.backends import NO_SIGNATURE, ModelSpec, ModelTensors, TensorInfo, VersionState, VersionStatus
from service.backends.channel import call_metadata, closed, open_channel, translate
from service.errors import BackendFailed, ModelNotFound

if TYPE_CHECKING:
    from service.config import BackendConfig

SERVICES = ("inference.GRPCInferenceService",)

# The protocol's datatypes the gateway sends or reads, as little-endian numpy dtypes, and the typed contents field
# a server fills when it does not answer in raw bytes.
DTYPES = {
    "UINT8": (np.dtype("u1"), "uint_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "INT64": (np.dtype("<i8"), "int64_contents"),
    "FP32": (np.dtype("<f4"), "fp32_contents"),
}
DATATYPE_OF = {dtype: name for name, (dtype, _) in DTYPES.items()}


def infer_request(
    spec: ModelSpec, input_key: str, array: np.ndarray, output_keys: tuple[str, ...]
) -> pb.ModelInferRequest:
    if spec.version_label:
        raise ModelNotFound(
            f"{spec.describe()}: the Open Inference Protocol has no version labels; ask for a version number"
        )
    if array.dtype not in DATATYPE_OF:
        raise ValueError(f"cannot send a tensor of dtype {array.dtype}; use uint8 or float32")
    request = pb.ModelInferRequest(
        model_name=spec.name,
        model_version=str(spec.version) if spec.version is not None else "",
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=key) for key in output_keys],
        raw_input_contents=[np.ascontiguousarray(array).tobytes()],
    )
    request.inputs.add(name=input_key, datatype=DATATYPE_OF[array.dtype], shape=array.shape)
    return request


def output_array(tensor: pb.ModelInferResponse.InferOutputTensor, raw: bytes | None) -> np.ndarray:
    """The array of one output, from its raw bytes or its typed contents; BackendFailed if it is unusable."""
    if tensor.datatype not in DTYPES:
        raise BackendFailed(
            f"the model returned {tensor.name!r} as {tensor.datatype or 'no datatype'}; expected {', '.join(DTYPES)}"
        )
    dtype, typed_field = DTYPES[tensor.datatype]
    shape = tuple(tensor.shape)
    if any(size < 0 for size in shape):
        raise BackendFailed(f"the model returned {tensor.name!r} of shape {list(shape)}")
    if raw is not None:
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise BackendFailed(
                f"the model's output {tensor.name!r} holds {len(raw)} bytes; its shape says {list(shape)}"
            )
        return np.frombuffer(raw, dtype).reshape(shape)
    values = np.asarray(getattr(tensor.contents, typed_field), dtype=dtype)
    if values.size != math.prod(shape):
        raise BackendFailed(
            f"the model's output {tensor.name!r} holds {values.size} values; its shape says {list(shape)}"
        )
    return values.reshape(shape)


class InferPrediction:
    """A ModelInfer answer whose outputs are read on demand (CPU work: the caller runs it off the loop)."""

    def __init__(self, response: pb.ModelInferResponse, asked_version: int | None) -> None:
        self._response = response
        self._asked_version = asked_version

    @property
    def version(self) -> int:
        answered = self._response.model_version
        if answered.isdigit():
            return int(answered)
        return self._asked_version if self._asked_version is not None else 0

    def output(self, key: str) -> np.ndarray:
        outputs = self._response.outputs
        raw = self._response.raw_output_contents
        if raw and len(raw) != len(outputs):
            raise BackendFailed(f"the model's answer has {len(outputs)} outputs but {len(raw)} raw contents")
        for i, tensor in enumerate(outputs):
            if tensor.name == key:
                return output_array(tensor, raw[i] if raw else None)
        raise BackendFailed(f"the model's answer has no output {key!r}")


def tensor_info(tensor: pb.ModelMetadataResponse.TensorMetadata) -> TensorInfo:
    return TensorInfo(name=tensor.name, datatype=tensor.datatype, shape=tuple(tensor.shape))


class KServeV2Backend:
    """GRPCInferenceService over one channel, kept for the process's life."""

    kind = "kserve-v2"  # its entry in kinds.KINDS

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name
        self.target = ",".join(config.targets)
        self._channel = open_channel(config, SERVICES)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    async def _call(self, method: str, request: object, timeout: float, what: str) -> object:
        try:
            return await getattr(self._stub, method)(request, timeout=timeout, metadata=call_metadata())
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, what) from error
        except grpc.aio.UsageError as error:
            raise closed(self.target) from error

    async def predict(
        self, spec: ModelSpec, input_key: str, tensor: np.ndarray, output_keys: tuple[str, ...], timeout: float
    ) -> InferPrediction:
        request = infer_request(spec, input_key, tensor, output_keys)
        response = await self._call("ModelInfer", request, timeout, spec.describe())
        assert isinstance(response, pb.ModelInferResponse)
        return InferPrediction(response, spec.version)

    async def _metadata(self, name: str, timeout: float) -> pb.ModelMetadataResponse:
        response = await self._call("ModelMetadata", pb.ModelMetadataRequest(name=name), timeout, f"model {name!r}")
        assert isinstance(response, pb.ModelMetadataResponse)
        return response

    async def model_status(self, name: str, timeout: float) -> list[VersionStatus]:
        metadata = await self._metadata(name, timeout)
        # A server that names no versions (MLServer) serves one: "the model", counted as version 0.
        versions = sorted({int(v) for v in metadata.versions if v.isdigit()}) or [0]
        statuses = []
        for version in versions:
            request = pb.ModelReadyRequest(name=name, version=str(version) if version else "")
            ready = await self._call("ModelReady", request, timeout, f"model {name!r} version {version}")
            assert isinstance(ready, pb.ModelReadyResponse)
            state = VersionState.AVAILABLE if ready.ready else VersionState.UNKNOWN
            statuses.append(VersionStatus(version, state, "" if ready.ready else "not ready"))
        return statuses

    async def signatures(self, name: str, timeout: float) -> dict[str, ModelTensors] | None:
        metadata = await self._metadata(name, timeout)
        tensors = ModelTensors(
            inputs=tuple(tensor_info(t) for t in metadata.inputs),
            outputs=tuple(tensor_info(t) for t in metadata.outputs),
        )
        return {NO_SIGNATURE: tensors}

    async def close(self) -> None:
        await self._channel.close()
