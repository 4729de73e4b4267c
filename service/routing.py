"""The model registry and router: a client-facing model name to the backend, served name, signature and profile.

A Router is built from one Config and never changes; a new config means a new Router, swapped in between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.backends import Backend, ModelSpec
from service.config import BackendConfig, Config, ModelConfig
from service.errors import InvalidRequest, ModelNotFound


@dataclass(frozen=True)
class ModelChoice:
    """What the caller asked for; empty fields mean the configured defaults."""

    name: str = ""
    version: int | None = None
    version_label: str = ""
    signature: str = ""


@dataclass(frozen=True)
class Route:
    """Where one call goes: the model as configured, its backend, and the spec to send."""

    model: ModelConfig
    backend: Backend
    spec: ModelSpec


class Router:
    def __init__(self, config: Config, backends: Mapping[str, Backend]) -> None:
        self.config = config
        self.backends = dict(backends)
        self.models = {model.name: model for model in config.models}
        self.default = self.models[config.default_model]

    def route(self, choice: ModelChoice) -> Route:
        """The route for a request; InvalidRequest or ModelNotFound when it cannot have one."""
        if choice.version is not None and choice.version <= 0:
            raise InvalidRequest(f"model version must be a positive integer, got {choice.version}")
        model = self.models.get(choice.name) if choice.name else self.default
        if model is None:
            configured = ", ".join(sorted(self.models))
            raise ModelNotFound(f"model {choice.name!r} is not configured on this service; configured: {configured}")
        explicit = choice.version is not None or bool(choice.version_label)
        spec = ModelSpec(
            name=model.name_at_backend,
            signature=choice.signature or model.signature,
            version=choice.version if explicit else model.version,
            version_label=choice.version_label if explicit else model.version_label,
        )
        return Route(model, self.backends[model.backend], spec)

    def backend_of(self, model: ModelConfig) -> Backend:
        return self.backends[model.backend]


def connect(config: Config, make_backend: Callable[[BackendConfig], Backend]) -> Router:
    """A router over one new backend per configured backend."""
    return Router(config, {backend.name: make_backend(backend) for backend in config.backends})
