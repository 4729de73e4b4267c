"""The model registry and router: a client-facing model name to a variant, its backend, served name and profile.

A Router is built from one Config and never changes; a new config means a new Router, swapped in between calls,
so a call keeps the routes it started with.

Traffic splits are sticky: with a routing key, each variant's score is weight / -ln(u), u uniform in (0, 1) from
a hash of the key and the variant's name, and the highest score wins (weighted rendezvous hashing). Each variant
then gets its weight's share of the keys. A weight change between two variants moves only the keys that must move;
among three or more it moves somewhat more than the minimum (50/30/20 -> 40/30/30: 12.4% where 10% must), the
price of needing no table of assignments. Without a key, the choice is a weighted random draw.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from service.auth.grants import EVERYTHING, Grants, RouteFacts
from service.backends import Backend, ModelSpec
from service.backends.kinds import KINDS
from service.config import BackendConfig, Config, ModelConfig, Variant
from service.errors import BackendUnavailable, InvalidRequest, ModelNotFound, PermissionDenied
from service.profiles import DEEPLAB_ZOO, Profile

# The profiles read from servables for models whose configuration leaves theirs to the gateway (the built-in `auto`),
# by (backend, served model): service/profile_detection.py.
ReadProfiles = Mapping[tuple[str, str], Profile]


@dataclass(frozen=True)
class ModelChoice:
    """What the caller asked for; empty fields mean the configured defaults."""

    name: str = ""
    version: int | None = None
    version_label: str = ""
    signature: str = ""
    variant: str = ""  # a variant of the model's split, instead of the split's choice


@dataclass(frozen=True)
class Route:
    """Where one call goes: the model as called (a variant's settings when the split chose one), its backend,
    the spec to send, and the shadow to run beside it, if this call is mirrored."""

    model: ModelConfig
    backend: Backend
    spec: ModelSpec
    variant: str = ""  # the variant of the model's split; empty without a split or when the request chose
    shadow: Route | None = None


def _unit_hash(key: str, variant: str) -> float:
    """A number in (0, 1), uniform over keys, fixed for a (key, variant) pair."""
    digest = hashlib.blake2b(f"{variant}\0{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


def choose_variant(variants: Sequence[Variant], routing_key: str, rng: random.Random) -> Variant:
    """The variant for a request: sticky by routing key (rendezvous hashing), else a weighted random draw."""
    weighted = [v for v in variants if v.weight > 0]
    if not routing_key:
        return rng.choices(weighted, weights=[v.weight for v in weighted])[0]
    return max(weighted, key=lambda v: v.weight / -math.log(_unit_hash(routing_key, v.name)))


def with_read_profiles(model: ModelConfig, read: ReadProfiles) -> ModelConfig:
    """The model, and its variants, with the profile read from its servable where it left its own to the gateway
    and one has been read."""
    profile = model.profile
    if model.reads_profile:
        profile = read.get((model.backend, model.name_at_backend), profile)
    elif profile.detect:
        profile = DEEPLAB_ZOO
    variants = tuple(replace(v, model=with_read_profiles(v.model, read)) for v in model.variants)
    if profile == model.profile and variants == model.variants:
        return model
    return replace(model, profile=profile, variants=variants)


class Router:
    def __init__(
        self,
        config: Config,
        backends: Mapping[str, Backend],
        rng: random.Random | None = None,
        read_profiles: ReadProfiles | None = None,
    ) -> None:
        self.config = config  # as configured: a model's `auto` profile stays so here
        self.backends = dict(backends)
        self.models = {model.name: with_read_profiles(model, read_profiles or {}) for model in config.models}
        self.default = self.models[config.default_model]
        self._rng = rng or random.Random()
        # Calls that use this router: after a reload, its backends that the new one dropped are closed only once
        # this is 0 (and no shadow uses them).
        self.calls = 0

    @contextlib.contextmanager
    def in_use(self) -> Iterator[Router]:
        """Counts a call for as long as it may use this router's backends."""
        self.calls += 1
        try:
            yield self
        finally:
            self.calls -= 1

    def route(self, choice: ModelChoice, routing_key: str = "", grants: Grants = EVERYTHING) -> Route:
        """The route for a request by a caller with `grants`; InvalidRequest, ModelNotFound or PermissionDenied
        when it cannot have one."""
        if choice.version is not None and choice.version <= 0:
            raise InvalidRequest(f"model version must be a positive integer, got {choice.version}")
        model = self.models.get(choice.name) if choice.name else self.default
        if model is None:
            # Only the models this caller may use are named: the others are none of its business.
            usable = ", ".join(sorted(name for name in self.models if grants.may_use(name))) or "none for this caller"
            raise ModelNotFound(f"model {choice.name!r} is not configured on this service; configured: {usable}")
        if not grants.may_use(model.name):
            raise PermissionDenied(f"this caller may not use model {model.name!r}")
        if choice.variant and (choice.version is not None or choice.version_label):
            raise InvalidRequest("choose a variant or a version (or version label), not both")
        if choice.version is not None or choice.version_label:
            # The caller chose the version: no split, no shadow.
            spec = ModelSpec(
                model.name_at_backend, self._signature(model, choice), choice.version, choice.version_label
            )
            route = Route(model, self.backend_of(model), spec)
        elif choice.variant:
            # The caller chose the variant: no split, no shadow.
            variant = self._named_variant(model, choice.variant)
            route = Route(
                variant.model, self.backend_of(variant.model), self._spec(variant.model, choice), variant.name
            )
        else:
            route = self._split(model, choice, routing_key, grants)
        self._check(route, choice, grants)
        if route.model.profile.detect:
            raise BackendUnavailable(
                f"model {model.name!r} is not ready: the gateway reads its profile from its servable's signatures "
                "once its backend serves it; try again shortly"
            )
        if route.shadow is not None and route.shadow.model.profile.detect:
            return replace(route, shadow=None)  # a shadow is a measurement, not owed: it waits for its profile
        return route

    def _split(self, model: ModelConfig, choice: ModelChoice, routing_key: str, grants: Grants) -> Route:
        """The route the model's split (or its pinned version) gives a call that chose none, among the variants
        the caller may use."""
        variants = [v for v in model.variants if grants.may_choose(model.name, _names(v))]
        if model.variants and not variants:
            raise PermissionDenied(f"this caller may not use any variant of model {model.name!r}")
        variant = choose_variant(variants, routing_key, self._rng) if variants else None
        chosen = variant.model if variant else model
        shadow = None
        # A call the split sent to the shadow's own variant is not mirrored to it: it would only agree with itself.
        mirrors = model.shadow and (variant is None or variant.name != model.shadow.variant)
        if model.shadow and mirrors and self._rng.random() * 100 < model.shadow.percent:
            mirrored = self._named_variant(model, model.shadow.variant).model
            # The shadow runs as configured: the caller's signature choice is for the answer it gets.
            shadow = Route(
                mirrored, self.backend_of(mirrored), self._spec(mirrored, ModelChoice()), model.shadow.variant
            )
        return Route(
            chosen, self.backend_of(chosen), self._spec(chosen, choice), variant.name if variant else "", shadow
        )

    def _check(self, route: Route, choice: ModelChoice, grants: Grants) -> None:
        facts = RouteFacts(
            model=route.model.name,
            variant=route.variant or choice.variant,
            version=route.spec.version,
            version_label=route.spec.version_label,
            configured_signature=route.spec.signature == self.signature_of(route.model),
        )
        if grants.allows(facts):
            return
        asked = (
            f" with signature {route.spec.signature!r}"
            if not facts.configured_signature
            else f" at variant {facts.variant!r}"
            if facts.variant
            else f" at version label {facts.version_label!r}"
            if facts.version_label
            else f" at version {facts.version}"
            if facts.version is not None
            else ""
        )
        raise PermissionDenied(f"this caller may not use model {route.model.name!r}{asked}")

    @staticmethod
    def _named_variant(model: ModelConfig, name: str) -> Variant:
        for variant in model.variants:
            if variant.name == name:
                return variant
        if not model.variants:
            raise ModelNotFound(f"model {model.name!r} has no traffic split, so no variant {name!r}")
        known = ", ".join(v.name for v in model.variants)
        raise ModelNotFound(f"model {model.name!r} has no variant {name!r}; its variants: {known}")

    def _spec(self, model: ModelConfig, choice: ModelChoice) -> ModelSpec:
        return ModelSpec(model.name_at_backend, self._signature(model, choice), model.version, model.version_label)

    def signature_of(self, model: ModelConfig) -> str:
        """The signature a call to `model` names unless the caller names another: the model's; none where the
        backend's protocol has no signatures."""
        return model.interface.signature if self._has_signatures(model) else ""

    def _has_signatures(self, model: ModelConfig) -> bool:
        kind = self.backend_of(model).kind
        return kind not in KINDS or KINDS[kind].signatures

    def _signature(self, model: ModelConfig, choice: ModelChoice) -> str:
        """The signature to call: the caller's, else the model's; none where the backend's protocol has none."""
        if self._has_signatures(model):
            return choice.signature or model.interface.signature
        if choice.signature:
            raise InvalidRequest(
                f"model {model.name!r} is served by a {self.backend_of(model).kind} backend, whose protocol has no "
                "signatures; leave signature_name empty"
            )
        return ""

    def backend_of(self, model: ModelConfig) -> Backend:
        return self.backends[model.backend]


def _names(variant: Variant) -> tuple[str, ...]:
    """What a grant may call a variant: its name, version label or version."""
    model = variant.model
    return (variant.name, model.version_label, "" if model.version is None else str(model.version))


def connect(config: Config, make_backend: Callable[[BackendConfig], Backend]) -> Router:
    """A router over one new backend per configured backend."""
    return Router(config, {backend.name: make_backend(backend) for backend in config.backends})
