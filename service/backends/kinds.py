"""The kinds of model backend: a kind's name in the configuration, the class that speaks its protocol, and what
the protocol can express."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.backends import Backend
from service.backends.kserve_v2 import KServeV2Backend
from service.backends.tfserving import TFServingBackend

if TYPE_CHECKING:
    from service.config import BackendConfig


@dataclass(frozen=True)
class Kind:
    make: Callable[[BackendConfig], Backend]
    version_labels: bool  # whether a model may be pinned to a version label there
    signatures: bool  # whether a call names a signature of the model


KINDS: dict[str, Kind] = {
    "tfserving": Kind(TFServingBackend, version_labels=True, signatures=True),
    "kserve-v2": Kind(KServeV2Backend, version_labels=False, signatures=False),
}
DEFAULT_KIND = "tfserving"


def make_backend(config: BackendConfig) -> Backend:
    return KINDS[config.kind].make(config)
