"""service/shadow.py: shadow traffic in the background, compared and counted."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import replace

from service.config import BackendConfig, Config, ModelConfig, Shadow
from service.pipeline import Options, Pipeline
from service.routing import ModelChoice, Router
from service.shadow import ShadowRunner
from tests import images
from tests.fakes import FakeBackend, bright_is_person
from tests.inprocess import split

KEYS = [f"user-{i}" for i in range(2000)]


def router_for(model: ModelConfig, backends: dict[str, FakeBackend] | None = None, seed: int = 0) -> Router:
    config = Config(backends=(BackendConfig("a"), BackendConfig("b")), models=(model,), default_model=model.name)
    return Router(config, backends or {"a": FakeBackend(name="a"), "b": FakeBackend(name="b")}, random.Random(seed))


def test_calls_the_split_sends_to_the_shadow_s_variant_are_not_mirrored_to_it() -> None:
    router = router_for(split(50, 50, shadow_percent=100))
    routes = [router.route(ModelChoice(), key) for key in KEYS[:400]]
    assert {r.variant for r in routes} == {"stable", "canary"}
    assert all((r.shadow is None) == (r.variant == "canary") for r in routes)


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
