"""service/routing.py: the default and named models, versions, labels and signatures, and traffic splits (shares,
stickiness, weights, a request's own choice)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from service.backends import ModelSpec
from service.config import BackendConfig, Config, ModelConfig, Variant
from service.errors import InvalidRequest, ModelNotFound
from service.routing import ModelChoice, Router, choose_variant
from tests.fakes import FakeBackend, bright_is_person, scores_of
from tests.inprocess import BASE, LITE_MODEL, ZOO_MODEL, split


def two_models() -> tuple[Router, FakeBackend, FakeBackend]:
    zoo, lite = FakeBackend(name="a"), FakeBackend(name="b", answer=scores_of(bright_is_person))
    config = Config(models=(ZOO_MODEL, LITE_MODEL), default_model="deeplab")
    return Router(config, {"a": zoo, "b": lite}), zoo, lite


def test_router_picks_the_default_a_named_model_and_refuses_unknown_ones() -> None:
    router, zoo, lite = two_models()
    assert router.route(ModelChoice()).model is ZOO_MODEL
    assert router.route(ModelChoice()).backend is zoo
    route = router.route(ModelChoice(name="deeplab-lite"))
    assert route.backend is lite and route.spec.name == "lite"
    with pytest.raises(
        ModelNotFound, match="'nope' is not configured on this service; configured: deeplab, deeplab-lite"
    ):
        router.route(ModelChoice(name="nope"))
    with pytest.raises(InvalidRequest, match="positive integer, got -2"):
        router.route(ModelChoice(version=-2))


def test_a_request_s_version_or_label_wins_over_the_pinned_one_and_signature_overrides() -> None:
    pinned = ModelConfig(name="deeplab", backend="a", version_label="stable", signature="serving_default")
    router = Router(Config(models=(pinned,), default_model="deeplab"), {"a": FakeBackend()})
    assert router.route(ModelChoice()).spec == ModelSpec("deeplab", "serving_default", None, "stable")
    assert router.route(ModelChoice(version=2)).spec == ModelSpec("deeplab", "serving_default", 2, "")
    assert router.route(ModelChoice(version_label="canary")).spec.version_label == "canary"
    assert router.route(ModelChoice(signature="other")).spec == ModelSpec("deeplab", "other", None, "stable")


KEYS = [f"user-{i}" for i in range(2000)]


def router_for(model: ModelConfig, backends: dict[str, FakeBackend] | None = None, seed: int = 0) -> Router:
    config = Config(backends=(BackendConfig("a"), BackendConfig("b")), models=(model,), default_model=model.name)
    return Router(config, backends or {"a": FakeBackend(name="a"), "b": FakeBackend(name="b")}, random.Random(seed))


def assignments(router: Router) -> dict[str, str]:
    return {key: router.route(ModelChoice(), key).variant for key in KEYS}


def test_split_shares_over_2000_keys_are_within_statistical_bounds() -> None:
    for stable, canary in ((90, 10), (50, 50), (1, 3)):
        counts = Counter(assignments(router_for(split(stable, canary))).values())
        expected = len(KEYS) * canary / (stable + canary)
        sd = (len(KEYS) * canary / (stable + canary) * stable / (stable + canary)) ** 0.5
        assert abs(counts["canary"] - expected) < 4 * sd, (stable, canary, counts)


def test_the_same_key_gets_the_same_variant_and_its_version_label() -> None:
    first, second = router_for(split(90, 10), seed=1), router_for(split(90, 10), seed=2)
    for key in KEYS[:200]:
        routes = [first.route(ModelChoice(), key) for _ in range(3)] + [second.route(ModelChoice(), key)]
        assert len({r.variant for r in routes}) == 1
        assert routes[0].spec.version_label == routes[0].variant


def test_a_weight_change_moves_about_the_fewest_keys_possible() -> None:
    before = assignments(router_for(split(90, 10)))
    after = assignments(router_for(split(80, 20)))
    moved = [key for key in KEYS if before[key] != after[key]]
    # 10% of the keys must move to canary for its share to double; rendezvous hashing moves those and no others.
    assert all(before[key] == "stable" and after[key] == "canary" for key in moved)
    assert 0.07 * len(KEYS) < len(moved) < 0.13 * len(KEYS)


def test_without_a_key_the_draw_is_weighted_and_a_zero_weight_is_never_drawn() -> None:
    router = router_for(split(90, 10))
    counts = Counter(router.route(ModelChoice()).variant for _ in range(2000))
    assert 200 - 4 * 13.4 < counts["canary"] < 200 + 4 * 13.4
    rng = random.Random(0)
    only = split(100, 0).variants
    assert {choose_variant(only, key, rng).name for key in KEYS[:300]} == {"stable"}
    assert {choose_variant(only, "", rng).name for _ in range(300)} == {"stable"}


def test_a_request_s_own_version_or_label_wins_over_the_split_and_the_shadow() -> None:
    router = router_for(split(50, 50, shadow_percent=100))
    route = router.route(ModelChoice(version=7), "user-1")
    assert (route.spec.version, route.spec.version_label, route.variant, route.shadow) == (7, "", "", None)
    route = router.route(ModelChoice(version_label="stable"), "user-1")
    assert (route.spec.version_label, route.variant, route.shadow) == ("stable", "", None)
    on_stable = next(key for key in KEYS if router.route(ModelChoice(), key).variant == "stable")
    mirrored = router.route(ModelChoice(), on_stable)
    assert mirrored.shadow is not None and mirrored.shadow.variant == "canary"
    assert mirrored.shadow.spec.version_label == "canary"


def test_a_request_may_choose_a_variant_by_name_instead_of_the_split() -> None:
    router = router_for(split(100, 0, shadow_percent=100))
    for key in KEYS[:50]:
        route = router.route(ModelChoice(variant="canary"), key)
        assert (route.variant, route.spec.version_label, route.shadow) == ("canary", "canary", None)
    # An unknown name is NOT_FOUND, as an unknown model is; naming a version too is a bad request.
    with pytest.raises(ModelNotFound, match="no variant 'beta'; its variants: stable, canary"):
        router.route(ModelChoice(variant="beta"))
    with pytest.raises(InvalidRequest, match="not both"):
        router.route(ModelChoice(variant="canary", version=2))
    with pytest.raises(ModelNotFound, match="has no traffic split"):
        router_for(BASE).route(ModelChoice(variant="canary"))


def test_a_variant_may_be_another_served_model_at_another_backend() -> None:
    other = replace(BASE, backend="b", served_name="deeplab-lite")
    model = replace(BASE, variants=(Variant("lite", 1, other),))
    backends = {"a": FakeBackend(name="a"), "b": FakeBackend(name="b")}
    route = router_for(model, backends).route(ModelChoice(), "k")
    assert route.backend is backends["b"] and route.spec.name == "deeplab-lite" and route.model.name == "deeplab"
