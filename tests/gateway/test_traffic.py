"""Traffic splits, shadow traffic and config reloads, in-process over fake backends."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from service.config import BackendConfig, Config, ModelConfig, Shadow, Variant
from service.errors import InvalidRequest, ModelNotFound
from service.mask.agreement import agreement
from service.pipeline import Options, Pipeline
from service.routing import ModelChoice, Router, choose_variant
from service.shadow import ShadowRunner
from tests import images
from tests.fakes import FakeBackend, bright_is_person
from tests.gateway.inprocess import BASE, split

pytestmark = pytest.mark.unit  # make test-unit: in-process, nothing but the venv

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


def test_calls_the_split_sends_to_the_shadow_s_variant_are_not_mirrored_to_it() -> None:
    router = router_for(split(50, 50, shadow_percent=100))
    routes = [router.route(ModelChoice(), key) for key in KEYS[:400]]
    assert {r.variant for r in routes} == {"stable", "canary"}
    assert all((r.shadow is None) == (r.variant == "canary") for r in routes)


def test_a_variant_may_be_another_served_model_at_another_backend() -> None:
    other = replace(BASE, backend="b", served_name="deeplab-lite")
    model = replace(BASE, variants=(Variant("lite", 1, other),))
    backends = {"a": FakeBackend(name="a"), "b": FakeBackend(name="b")}
    route = router_for(model, backends).route(ModelChoice(), "k")
    assert route.backend is backends["b"] and route.spec.name == "deeplab-lite" and route.model.name == "deeplab"


def test_agreement_is_exact_on_known_masks() -> None:
    mask = np.array([[0, 0, 15, 15], [0, 8, 8, 15]], dtype=np.uint8)
    assert agreement(mask, mask) == agreement(mask, mask.copy())
    assert (agreement(mask, mask).pixels, agreement(mask, mask).mean_iou) == (1.0, 1.0)
    disjoint = agreement(np.zeros((2, 4), np.uint8), np.ones((2, 4), np.uint8))
    assert (disjoint.pixels, disjoint.mean_iou) == (0.0, 0.0)
    other = np.array([[0, 15, 15, 15], [0, 0, 8, 15]], dtype=np.uint8)
    # Equal pixels: 6 of 8. IoU: class 0 2/4, class 8 1/2, class 15 3/4 -> mean (0.5 + 0.5 + 0.75) / 3.
    result = agreement(mask, other)
    assert result.pixels == 6 / 8 and result.mean_iou == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    # A shadow at another size is compared at the primary's, by nearest neighbour.
    assert agreement(mask, np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)).pixels == 1.0


def _segment_many(pipeline: Pipeline, router: Router, count: int) -> tuple[list[float], list[bytes]]:
    """Latencies and PNG masks of `count` calls, one after another."""
    data = images.png("chelsea.png")

    async def run() -> tuple[list[float], list[bytes]]:
        latencies, masks = [], []
        for i in range(count):
            start = time.perf_counter()
            result = await pipeline.segment(data, router.route(ModelChoice(), f"k{i}"), Options(), None)
            latencies.append(time.perf_counter() - start)
            masks.append(result.mask.encoded.data)
        await asyncio.sleep(0)
        return latencies, masks

    return asyncio.run(run())


def test_a_slow_shadow_changes_neither_the_caller_s_answer_nor_its_latency() -> None:
    slow = FakeBackend(name="b", delay_s=2.0, answer=lambda spec, t: 15 - bright_is_person(spec, t))
    shadowed = replace(split(100, 0), shadow=Shadow("canary", 100.0))
    shadowed = replace(
        shadowed,
        variants=(
            shadowed.variants[0],
            replace(shadowed.variants[1], model=replace(shadowed.variants[1].model, backend="b")),
        ),
    )
    plain = router_for(split(100, 0), {"a": FakeBackend(name="a"), "b": slow})
    mirrored = router_for(shadowed, {"a": FakeBackend(name="a"), "b": slow})
    shadows = ShadowRunner(max_in_flight=2, predict_timeout_s=5)
    _segment_many(Pipeline(Config().limits, 5.0), plain, 3)  # warm-up
    without, plain_masks = _segment_many(Pipeline(Config().limits, 5.0), plain, 20)
    with_shadow, shadowed_masks = _segment_many(Pipeline(Config().limits, 5.0, shadows), mirrored, 20)
    # The shadow answers differently and sleeps 2 s: the caller gets the same answer, as fast (a caller that
    # waited for the shadow would take 2 s longer; the margin is for a busy machine).
    assert shadowed_masks == plain_masks
    assert statistics.median(with_shadow) < statistics.median(without) * 1.5 + 0.2, (with_shadow, without)
    figures = shadows.figures("deeplab", "canary")
    assert figures.dropped == 18  # two in flight, sleeping; the other eighteen were dropped


def test_shadow_agreement_failures_and_skips_are_counted() -> None:
    backends = {"a": FakeBackend(name="a"), "b": FakeBackend(name="b")}
    model = replace(split(100, 0), shadow=Shadow("canary", 100.0))
    shadows = ShadowRunner(max_in_flight=8, predict_timeout_s=5)
    pipeline = Pipeline(Config().limits, 5.0, shadows)
    data = images.png("astronaut.png")

    async def run(router: Router) -> None:
        await pipeline.segment(data, router.route(ModelChoice(), "k"), Options(), None)
        while shadows.in_flight:
            await asyncio.sleep(0.01)

    asyncio.run(run(router_for(model, backends)))
    figures = shadows.figures("deeplab", "canary")
    assert (figures.compared, figures.pixel_agreement, figures.mean_iou) == (1, 1.0, 1.0)
    # A shadow that answers something else: the figures follow it exactly.
    inverted = FakeBackend(name="b", answer=lambda spec, t: 15 - bright_is_person(spec, t))
    variants = (model.variants[0], replace(model.variants[1], model=replace(model.variants[1].model, backend="b")))
    asyncio.run(run(router_for(replace(model, variants=variants), {"a": backends["a"], "b": inverted})))
    assert figures.compared == 2 and figures.pixel_agreement == 0.5 and figures.mean_iou == 0.5
    inverted.down = True
    asyncio.run(run(router_for(replace(model, variants=variants), {"a": backends["a"], "b": inverted})))
    assert figures.failed == 1 and figures.compared == 2
