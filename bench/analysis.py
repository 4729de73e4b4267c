"""A bench run's figures judged: the ratios the targets are set on, the targets, and which side bounds a pinned
scenario. Pure functions of a RunResult (bench/results.py): tested without servers."""

from __future__ import annotations

from collections.abc import Callable

from bench import pinning
from bench.plans import SIZES, Plan
from bench.results import PinnedCell, RunResult


def saturating(cell: PinnedCell, front_cores: int) -> str:
    """Which side bounds a pinned scenario's throughput: the process whose core is (nearly) full."""
    model = cell.model_server_share
    front = (cell.front_share or 0.0) + cell.load_generator_share
    if model >= 0.9 and model >= front / front_cores:
        return "model server"
    if front >= 0.9 * front_cores:
        return "front core" + ("s" if front_cores > 1 else "")
    return "neither core full"


def front_cores(run: RunResult) -> int:
    """The cores beside the model server's in the run's pinned phases (this machine's, for runs saved before the
    run recorded its host)."""
    if run.host is not None:
        return len(run.host.front_cores) or 1
    return len(pinning.cores()[1]) if pinning.shape_fits() else 1


def ratios(run: RunResult, plan: Plan) -> dict[str, float | int | str | None]:
    """The figures the targets are set on, and the others the report tells, by name."""

    def cell(size: str, scenario: str, c: int, key: str) -> float | None:
        found = run.cell(size, scenario, c)
        return None if found is None else getattr(found, key)

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    def difference(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    size = "1080p" if "1080p" in run.cells else plan.sizes[0]
    c4 = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    width, height = SIZES[size]
    decode_1080p = run.decode_ms[size]
    decode_full = run.decode_full_ms.get(size)
    agreed = run.fidelity or {}
    # The gateway against the in-graph peer: both answer with a mask at the model's size.
    gateway = "gateway-rle-model"
    overlay_us = difference(
        cell("4k", "gateway-png-overlay", 1, "encode_us"), cell("4k", "gateway-png", 1, "encode_us")
    )
    pinned = run.pinned.get(size, {})

    def per_core(scenario: str, peer: str) -> float | None:
        mine, theirs = pinned.get(scenario), pinned.get(peer)
        return ratio(mine.throughput, theirs.throughput) if mine and theirs else None

    def capacity(at: str, key: str) -> float | None:
        return run.capacity.get(at, {}).get("original", {}).get(key)

    fronts = front_cores(run)
    return {
        "size": size,
        "image_bytes_per_mp_1080p": round(run.image_bytes[size] / (width * height / 1e6)),
        "decode_ms_1080p": round(decode_1080p, 2),
        "decode_full_ms_1080p": None if decode_full is None else round(decode_full, 2),
        # The probe and full decode of the 1080p mosaic as JPEG, HEIC and AVIF, per megapixel.
        "decode_per_mp_1080p": run.decode_per_mp,
        "fidelity_min_agreement": agreed.get("fidelity_min_agreement"),
        "fidelity_mean_agreement": agreed.get("fidelity_mean_agreement"),
        # The gateway's own capacity beside an instant model server (bench/capacity.py): images per gateway
        # CPU-second on one core against the full decodes a core does, the exact answer at the photo's size; and the
        # same gateway free on two cores against one.
        "gateway_capacity_per_core_vs_decode_1080p": capacity(size, "vs_decode"),
        "gateway_scaling_2_cores_1080p": capacity(size, "scaling"),
        # Two gateway processes sharing the port, free on two cores, against one process on one.
        "gateway_scaling_2_processes_1080p": capacity(size, "scaling_two_processes"),
        "gateway_capacity": {
            at: {
                answer: {key: figures[key] for key in CAPACITY_KEYS}
                | {"errors": sum((figures[shape] or {}).get("errors", 0) for shape in CAPACITY_SHAPES)}
                for answer, figures in answers.items()
            }
            for at, answers in run.capacity.items()
        },
        # The gateway's CPU per exact call (concurrency 1, beside the real model server) over the full decode.
        "gateway_cpu_vs_full_decode_1080p": ratio(cell(size, "gateway-rle", 1, "server_cpu_ms"), decode_full),
        "throughput_ratio_c4_1080p": ratio(
            cell(size, "gateway-rle", c4, "throughput"), cell(size, "floor", c4, "throughput")
        ),
        "speedup_vs_ingraph_1080p": ratio(cell(size, "ingraph", 1, "p50"), cell(size, gateway, 1, "p50")),
        "throughput_vs_ingraph_c4_1080p": ratio(
            cell(size, gateway, c4, "throughput"), cell(size, "ingraph", c4, "throughput")
        ),
        # Against the graph's own full-size answer from the bytes: the exact answer, which the gateway's is too.
        "speedup_vs_ingraph_exact_1080p": ratio(
            cell(size, "ingraph-exact", 1, "p50"), cell(size, "gateway-rle", 1, "p50")
        ),
        "throughput_vs_ingraph_exact_c4_1080p": ratio(
            cell(size, "gateway-rle", c4, "throughput"), cell(size, "ingraph-exact", c4, "throughput")
        ),
        "throughput_vs_kserve_c4_1080p": ratio(
            cell(size, gateway, c4, "throughput"), cell(size, "kserve", c4, "throughput")
        ),
        # The gateway in front of Triton against Triton alone with the tensor made beforehand (its floor).
        "triton_gateway_vs_floor_p50_1080p": ratio(
            cell(size, "gateway-rle-triton", 1, "p50"), cell(size, "triton-floor", 1, "p50")
        ),
        "triton_throughput_vs_floor_c4_1080p": ratio(
            cell(size, "gateway-rle-triton", c4, "throughput"), cell(size, "triton-floor", c4, "throughput")
        ),
        # The model server alone on a core (bench/pinning.py): requests a second per model-server core, the
        # gateway's against each peer's; at the model's size against the in-graph peer and KServe, exact against
        # the exact in-graph peer and against the very Predict the gateway sends (what the gateway costs the
        # model host).
        "throughput_per_model_core_vs_ingraph_1080p": per_core("gateway-rle-model", "ingraph"),
        "throughput_per_model_core_vs_ingraph_exact_1080p": per_core("gateway-rle", "ingraph-exact"),
        "throughput_per_model_core_vs_kserve_1080p": per_core("gateway-rle-model", "kserve"),
        "throughput_per_model_core_vs_floor_1080p": per_core("gateway-rle", "floor"),
        # The same in front of Triton, against Triton's floor (the ModelInfer the gateway sends it).
        "throughput_per_model_core_triton_vs_floor_1080p": per_core("gateway-rle-triton", "triton-floor"),
        "pinned_saturating_1080p": {scenario: saturating(c, fronts) for scenario, c in pinned.items()},
        # The model server's CPU per call on its core: what each way of calling it costs the model host.
        "pinned_model_server_cpu_ms_1080p": {
            scenario: round(1000 * c.model_server_share / c.throughput, 1)
            for scenario, c in pinned.items()
            if c.throughput
        },
        # p99 of small photos beside 4K calls and a stream over their p99 alone, with the fairness limits as shipped
        # and lifted.
        "p99_small_under_mixed_ms_ratio": run.mixed_tails.get("fair", {}).get("p99_ratio"),
        "p99_small_under_mixed_ms_ratio_unfair": run.mixed_tails.get("unfair", {}).get("p99_ratio"),
        "throughput_vs_rest_c4_1080p": ratio(
            cell(size, gateway, c4, "throughput"), cell(size, "tfserving-rest", c4, "throughput")
        ),
        "backend_cpu_vs_ingraph_1080p": ratio(
            cell(size, gateway, c4, "backend_cpu_ms"), cell(size, "ingraph", c4, "backend_cpu_ms")
        ),
        "speedup_vs_seed_1080p": ratio(cell(size, "gateway-png", 1, "throughput"), cell(size, "seed", 1, "throughput")),
        "speedup_vs_seed_4k": ratio(cell("4k", "gateway-png", 1, "throughput"), cell("4k", "seed", 1, "throughput")),
        "request_bytes_ratio_1080p": ratio(
            cell(size, "seed", 1, "request_bytes"), cell(size, "gateway-png", 1, "request_bytes")
        ),
        "response_bytes_ratio_1080p": ratio(
            cell(size, "seed", 1, "response_bytes"), cell(size, "gateway-png", 1, "response_bytes")
        ),
        "overlay_ms_4k": None if overlay_us is None else round(overlay_us / 1000, 1),
        "gateway_cpu_ms_1080p": round(cell(size, "gateway-rle", 1, "server_cpu_ms") or 0.0, 2),
        # The Predict the gateway sends the model server and its answer (the floor sends the same request).
        "backend_request_bytes_1080p": cell(size, "floor", 1, "request_bytes"),
        "backend_response_bytes_1080p": cell(size, "floor", 1, "response_bytes"),
        "gateway_rss_mb": round(run.gateway_rss_peak_mb, 1),
        # Its private part (the RSS less mapped shared libraries), at its peak.
        "gateway_anon_peak_mb": round(run.gateway_memory_mb.get("peak_anon", 0.0), 1) or None,
        "start_to_serving_s": round(run.start_to_serving_s, 3),
        # The levers beside the gateway as shipped (RLE, concurrency 1): p50 ms and the gateway's CPU ms per call.
        "lever_p50_ms_1080p": _levers(lambda scenario: cell(size, scenario, 1, "p50")),
        "lever_cpu_ms_1080p": _levers(lambda scenario: cell(size, scenario, 1, "server_cpu_ms")),
        # Each scenario's agreement with the model's own output, (min, mean) over bench/fidelity.py's cases.
        "agreement_by_scenario": {
            scenario: [figures[key] for key in AGREEMENT_KEYS]
            for scenario, subject in SCENARIO_SUBJECTS.items()
            if (figures := agreed.get("subjects", {}).get(subject))
        },
    }


# What gateway_capacity gives for each size and answer, from bench/capacity.py's figures.
CAPACITY_KEYS = (
    "images_per_gateway_cpu_s",
    "decodes_per_core_s",
    "vs_decode",
    "scaling",
    "scaling_two_processes",
    "decode_ms",
)


# The shapes of bench/capacity.py's figures, whose errors gateway_capacity counts.
CAPACITY_SHAPES = ("one_core", "two_cores", "two_processes")


# name in lever_*_1080p -> scenario: the gateway as shipped (exact, at the original size), each speed option alone
# and all together, and the same at the model's size.
LEVERS = {
    "exact": "gateway-rle-shipped",
    "reduced_decode": "gateway-rle-reduced",
    "nearest_upscale": "gateway-rle-nearest",
    "uint8_input": "gateway-rle-uint8",
    "fast": "gateway-rle-fast",
    "model_size": "gateway-rle-model-shipped",
    "model_size_fast": "gateway-rle-model-fast",
    "model_size_uint8_output": "gateway-rle-model-u8",
}

# scenario -> bench/fidelity.py's subject whose answers are the scenario's (its agreement is the scenario's).
SCENARIO_SUBJECTS = {
    "gateway-png": "deeplab",
    "gateway-rle": "deeplab",
    "gateway-rle-model": "deeplab/model-size",
    "gateway-rle-shipped": "deeplab",
    "gateway-rle-model-shipped": "deeplab/model-size",
    "floor": "deeplab/model-size",  # the same request as the gateway's, its model-size answer enlarged
    "gateway-rle-model-u8": "deeplab/model-size",
    "gateway-rle-reduced": "deeplab-reduced",
    "gateway-rle-nearest": "deeplab-nearest",
    "gateway-rle-uint8": "deeplab-uint8",
    "tfserving-rest": "deeplab-uint8",  # the same rounded pixels to serving_default, its answer enlarged
    "gateway-rle-fast": "deeplab-fast",
    "gateway-rle-model-fast": "deeplab-fast",
    "ingraph": "ingraph",
    "ingraph-exact": "ingraph-exact",
}

# What agreement_by_scenario gives for each scenario, from bench/fidelity.py's figures of its subject.
AGREEMENT_KEYS = ("min_agreement", "mean_agreement", "min_agreement_upright", "mean_agreement_upright")


def _levers(figure: Callable[[str], float | None]) -> dict[str, float | None]:
    return {name: None if (value := figure(scenario)) is None else round(value, 2) for name, scenario in LEVERS.items()}


TARGETS = {
    "fidelity_min_agreement": (">=", 0.995),
    "fidelity_mean_agreement": (">=", 0.999),
    "gateway_capacity_per_core_vs_decode_1080p": (">=", 0.6),
    "gateway_scaling_2_cores_1080p": (">=", 1.6),
    "gateway_cpu_vs_full_decode_1080p": ("<=", 1.6),
    "throughput_ratio_c4_1080p": (">=", 0.9),
    "speedup_vs_ingraph_1080p": (">=", 0.9),
    "throughput_vs_ingraph_c4_1080p": (">=", 1.0),
    "speedup_vs_ingraph_exact_1080p": (">=", 2.5),
    "throughput_vs_ingraph_exact_c4_1080p": (">=", 2.5),
    "throughput_vs_kserve_c4_1080p": (">=", 1.5),
    "throughput_per_model_core_vs_ingraph_1080p": (">=", 1.4),
    "throughput_per_model_core_vs_floor_1080p": (">=", 0.95),
    "p99_small_under_mixed_ms_ratio": ("<=", 3),
    "backend_cpu_vs_ingraph_1080p": ("<=", 0.8),
    "speedup_vs_seed_1080p": (">=", 5),
    "speedup_vs_seed_4k": (">=", 20),
    "request_bytes_ratio_1080p": (">=", 15),
    "response_bytes_ratio_1080p": (">=", 1000),
    "overlay_ms_4k": ("<=", 60),
    "gateway_rss_mb": ("<=", 250),
    "start_to_serving_s": ("<=", 1.0),
}


def met(name: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    op, bound = TARGETS[name]
    ok = value <= bound if op == "<=" else value >= bound
    return "met" if ok else "**missed**"
