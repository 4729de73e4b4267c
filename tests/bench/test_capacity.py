"""bench/capacity.py's figures without servers: what the load generator's runs add up to, and the two ratios."""

from __future__ import annotations

import pytest

from bench.capacity import Capacity, Shape, _shape


def run(requests: int, wall_s: float, gateway_cpu_s: float, p50_ms: float = 10.0, p99_ms: float = 20.0) -> dict:
    """One bench/light_load.py result."""
    return {
        "requests": requests,
        "errors": [],
        "wall_s": wall_s,
        "client_cpu_s": 0.01 * requests,
        "watched_cpu_s": gateway_cpu_s,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
    }


def test_a_shape_adds_its_rounds_up_per_call() -> None:
    shape = _shape([run(100, 2.0, 1.6, p99_ms=30.0), run(60, 1.0, 0.8, p99_ms=50.0)], backend_cpu_s=0.32)
    assert shape.images_per_s == pytest.approx(160 / 3.0, abs=0.05)
    assert shape.gateway_cpu_ms == pytest.approx(2400 / 160, abs=0.01)
    assert shape.backend_cpu_ms == pytest.approx(2.0) and shape.client_cpu_ms == pytest.approx(10.0)
    assert shape.p99_ms == 50.0 and shape.requests == 160 and shape.errors == 0
    assert shape.images_per_gateway_cpu_s == pytest.approx(1000 / 15.0)


def test_capacity_is_images_per_gateway_cpu_second_over_decodes_per_core_second() -> None:
    one = Shape(50.0, 12.5, 1.0, 0.5, 100.0, 150.0, 500, 0)
    two = Shape(85.0, 13.0, 1.0, 0.5, 60.0, 90.0, 850, 0)
    capacity = Capacity(one_core=one, two_cores=two, decode_ms=7.5)
    assert capacity.vs_decode == pytest.approx((1000 / 12.5) / (1000 / 7.5))
    assert capacity.scaling == pytest.approx(85.0 / 50.0)
    figures = capacity.figures()
    assert figures["images_per_gateway_cpu_s"] == 80.0 and figures["decodes_per_core_s"] == pytest.approx(133.3)
    assert figures["one_core"]["gateway_cpu_ms"] == 12.5 and figures["two_cores"]["images_per_s"] == 85.0
