"""The kinds of model backend: a kind's name in the configuration, the module and class that speak its protocol,
and what the protocol can express.

A table and nothing else: the configuration reads it, and processes that load the configuration beside TensorFlow
(bench/fidelity.py) must not load a protocol's stubs, which register the same protobuf names as TensorFlow's own;
`service.backends.make_backend` imports a kind's module when a backend of that kind is made.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    module: str  # of the class below
    cls: str  # made with the BackendConfig
    version_labels: bool  # whether a model may be pinned to a version label there
    signatures: bool  # whether a call names a signature of the model


KINDS: dict[str, Kind] = {
    "tfserving": Kind("service.backends.tfserving", "TFServingBackend", version_labels=True, signatures=True),
    "kserve-v2": Kind("service.backends.kserve_v2", "KServeV2Backend", version_labels=False, signatures=False),
}
DEFAULT_KIND = "tfserving"
