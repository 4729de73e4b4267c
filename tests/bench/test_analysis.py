"""bench/analysis.py without servers: the ratios the targets are set on, from runs made up to know the answer."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from bench.analysis import TARGETS, met, ratios, saturating
from bench.plans import Plan
from bench.results import Cell, Host, PinnedCell, RunResult

PLAN = Plan(("1080p",), (1, 4), 1.0, 1, None, pathlib.Path("."))
HOST = Host(cpus=2, model_cores=(0,), front_cores=(1,), machine="", versions={}, finished="")


def cell(p50: float, throughput: float, request_bytes: int = 1000, response_bytes: int = 100, **more: object) -> Cell:
    """A cell with these figures; the others as a quiet run's."""
    figures: dict[str, object] = {
        "p50": p50,
        "p95": p50,
        "p99": p50,
        "throughput": throughput,
        "requests": 10,
        "errors": 0,
        "request_bytes": request_bytes,
        "response_bytes": response_bytes,
        "client_cpu_pct": 1.0,
        "server_cpu_ms": None,
        "backend_cpu_ms": None,
        "encode_us": None,
        "stages_us": {},
    }
    return Cell(**(figures | more))  # type: ignore[arg-type]


def pinned(throughput: float, model: float, front: float | None, generator: float = 0.05) -> PinnedCell:
    return PinnedCell(
        **vars(cell(10.0, throughput)),
        concurrency=4,
        model_server_share=model,
        front_share=front,
        load_generator_share=generator,
    )


def made_up_run() -> RunResult:
    return RunResult(
        cells={
            "1080p": {
                "floor": {1: cell(40.0, 25.0, 600_000, 2_000), 4: cell(80.0, 50.0)},
                "gateway-rle": {1: cell(46.0, 21.0, server_cpu_ms=8.0), 4: cell(90.0, 45.0)},
                "gateway-png": {1: cell(47.0, 20.0, 300_000, 3_000)},
                "seed": {1: cell(400.0, 2.5, 6_000_000, 3_000_000)},
                "ingraph-exact": {1: cell(120.0, 8.0), 4: cell(300.0, 15.0)},
            }
        },
        image_bytes={"1080p": 600_000},
        decode_ms={"1080p": 5.0},
        decode_full_ms={"1080p": 6.4},
        gateway_rss_peak_mb=140.0,
        gateway_rss_mb=120.0,
        start_to_serving_s=0.4,
        pinned={"1080p": {"gateway-rle": pinned(30.0, 0.99, 0.4), "floor": pinned(31.0, 0.99, None)}},
        host=HOST,
        capacity={"1080p": {"original": CAPACITY, "model": CAPACITY | {"vs_decode": 0.9}}},
    )


# bench/capacity.py's figures of one answer, as Capacity.figures() gives them.
CAPACITY = {
    "one_core": {"images_per_s": 60.0, "errors": 0},
    "two_cores": {"images_per_s": 99.0, "errors": 1},
    "decode_ms": 8.0,
    "images_per_gateway_cpu_s": 75.0,
    "decodes_per_core_s": 125.0,
    "vs_decode": 0.6,
    "scaling": 1.65,
    "scaling_two_processes": 1.7,
    "two_processes": None,
}


def test_the_ratios_are_the_measured_figures_over_each_other() -> None:
    summary = ratios(made_up_run(), PLAN)
    assert summary["size"] == "1080p"
    assert summary["gateway_cpu_vs_full_decode_1080p"] == pytest.approx(8.0 / 6.4)
    assert summary["gateway_capacity_per_core_vs_decode_1080p"] == 0.6
    assert summary["gateway_scaling_2_cores_1080p"] == 1.65
    assert summary["gateway_scaling_2_processes_1080p"] == 1.7
    assert summary["gateway_capacity"]["1080p"]["model"]["vs_decode"] == 0.9
    assert summary["gateway_capacity"]["1080p"]["original"]["errors"] == 1
    assert summary["throughput_ratio_c4_1080p"] == pytest.approx(45.0 / 50.0)
    assert summary["speedup_vs_ingraph_exact_1080p"] == pytest.approx(120.0 / 46.0, abs=1e-3)
    assert summary["throughput_vs_ingraph_exact_c4_1080p"] == pytest.approx(45.0 / 15.0)
    assert summary["speedup_vs_seed_1080p"] == pytest.approx(20.0 / 2.5)
    assert summary["request_bytes_ratio_1080p"] == pytest.approx(6_000_000 / 300_000)
    assert summary["response_bytes_ratio_1080p"] == pytest.approx(3_000_000 / 3_000)
    assert summary["throughput_per_model_core_vs_floor_1080p"] == pytest.approx(30.0 / 31.0, abs=1e-3)
    assert summary["image_bytes_per_mp_1080p"] == round(600_000 / (1920 * 1080 / 1e6))
    assert summary["pinned_saturating_1080p"] == {"gateway-rle": "model server", "floor": "model server"}


def test_what_a_run_did_not_measure_is_none_and_not_measured_not_a_verdict() -> None:
    summary = ratios(made_up_run(), PLAN)
    for name in ("speedup_vs_ingraph_1080p", "throughput_vs_kserve_c4_1080p", "speedup_vs_seed_4k", "overlay_ms_4k"):
        assert summary[name] is None
        assert met(name, summary[name]) == "not measured"
    assert set(TARGETS) <= summary.keys()
    without = ratios(dataclasses.replace(made_up_run(), capacity={}), PLAN)
    assert without["gateway_capacity_per_core_vs_decode_1080p"] is None and without["gateway_capacity"] == {}
    assert met("gateway_scaling_2_cores_1080p", without["gateway_scaling_2_cores_1080p"]) == "not measured"


@pytest.mark.parametrize(
    ("name", "value", "verdict"),
    [
        ("gateway_cpu_vs_full_decode_1080p", 1.6, "met"),
        ("gateway_cpu_vs_full_decode_1080p", 1.61, "**missed**"),
        ("gateway_capacity_per_core_vs_decode_1080p", 0.6, "met"),
        ("gateway_capacity_per_core_vs_decode_1080p", 0.59, "**missed**"),
        ("speedup_vs_seed_1080p", 5, "met"),
        ("speedup_vs_seed_1080p", 4.99, "**missed**"),
    ],
)
def test_a_target_is_met_on_its_bound_and_missed_past_it(name: str, value: float, verdict: str) -> None:
    assert met(name, value) == verdict


def test_the_side_whose_core_is_full_bounds_a_pinned_scenario() -> None:
    assert saturating(pinned(30.0, model=0.97, front=0.30), front_cores=1) == "model server"
    assert saturating(pinned(30.0, model=0.50, front=0.90), front_cores=1) == "front core"
    assert saturating(pinned(30.0, model=0.50, front=1.70, generator=0.2), front_cores=2) == "front cores"
    assert saturating(pinned(30.0, model=0.50, front=0.30), front_cores=1) == "neither core full"
