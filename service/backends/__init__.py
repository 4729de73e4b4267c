"""What the pipeline needs from a model backend, in domain types: no backend protocol's message crosses this line.
Each kind of backend is one module here and one entry in `kinds.KINDS`."""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from service.backends.kinds import KINDS

if TYPE_CHECKING:
    from service.config import BackendConfig


@dataclass(frozen=True)
class ModelSpec:
    """Which model, version and signature to run at a backend (names as the backend knows them)."""

    name: str
    signature: str
    version: int | None = None
    version_label: str = ""

    def describe(self) -> str:
        """ "model 'deeplab' version 3", for error messages."""
        if self.version is not None:
            return f"model {self.name!r} version {self.version}"
        if self.version_label:
            return f"model {self.name!r} label {self.version_label!r}"
        return f"model {self.name!r}"


class VersionState(enum.Enum):
    UNKNOWN = "unknown"
    START = "start"
    LOADING = "loading"
    AVAILABLE = "available"
    UNLOADING = "unloading"
    END = "end"


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: VersionState
    message: str = ""  # the backend's error message for this version, if any


@dataclass(frozen=True)
class TensorInfo:
    """One of a model's tensors as its backend describes it (the Open Inference Protocol's terms)."""

    name: str
    datatype: str  # "FP32", "UINT8", "INT64", ...
    shape: tuple[int, ...] | None  # -1 for a dimension of any size; None: any rank


# The one signature of a protocol without signatures.
NO_SIGNATURE = ""


@dataclass(frozen=True)
class ModelTensors:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]


class Prediction(Protocol):
    """A backend's answer. Reading the output is CPU work, so the pipeline calls it off the event loop."""

    @property
    def version(self) -> int:
        """The version that ran."""
        ...

    def output(self, key: str) -> np.ndarray:
        """The requested output tensor of that alias, batch dimension included."""
        ...


class Backend(Protocol):
    """A model server the gateway sends tensors to."""

    name: str  # as configured, for ListModels and health
    target: str  # where it is, for messages
    kind: str  # its entry in kinds.KINDS

    async def predict(
        self, spec: ModelSpec, input_key: str, tensor: np.ndarray, output_keys: tuple[str, ...], timeout: float
    ) -> Prediction: ...

    async def model_status(self, name: str, timeout: float) -> list[VersionStatus]:
        """Every version the backend knows of the model, ascending."""
        ...

    async def signatures(self, name: str, timeout: float) -> dict[str, ModelTensors] | None:
        """The model's signatures and each one's inputs and outputs, as the backend describes them; one signature
        named "" where the protocol has none (the Open Inference Protocol); None where it cannot describe them."""
        ...

    async def close(self) -> None: ...


def make_backend(config: BackendConfig) -> Backend:
    """A backend of the configured kind; its protocol's module is imported now."""
    kind = KINDS[config.kind]
    backend: Backend = getattr(importlib.import_module(kind.module), kind.cls)(config)
    return backend
