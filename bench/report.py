"""A bench run written up: BENCHMARKS.md (the targets, the tables, where the time goes, what stands in the way of
each missed target) and its plots, from a RunResult alone (bench/results.py): `python -m bench --render` writes
the report again from a saved run, on any machine."""

from __future__ import annotations

import json
import pathlib

from bench import capacity, outputs
from bench.analysis import LEVERS, TARGETS, front_cores, met, ratios, saturating
from bench.host import this_host
from bench.plans import PLOTTED, PROFILE, PROFILE_SECONDS, SIZES, UNFAIR_FLAGS, Plan
from bench.results import Cells, PinnedCells, RunResult


def plot(results: Cells, path: pathlib.Path, plan: Plan) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = list(results)
    megapixels = [SIZES[s][0] * SIZES[s][1] / 1e6 for s in sizes]
    c_hi = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for scenario in PLOTTED:
        left.plot(megapixels, [results[s][scenario][1].p50 for s in sizes], marker="o", label=scenario)
        right.plot(megapixels, [results[s][scenario][c_hi].throughput for s in sizes], marker="o", label=scenario)
    left.set(xlabel="image megapixels (JPEG q90)", ylabel="p50 latency, ms (log)", title="latency, concurrency 1")
    left.set_yscale("log")
    right.set(xlabel="image megapixels (JPEG q90)", ylabel="requests / s", title=f"throughput, concurrency {c_hi}")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_per_core(pinned: PinnedCells, path: pathlib.Path) -> None:
    """Requests a second per model-server core by image size, for the gateway and each peer (pinned runs)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = list(pinned)
    fig, axis = plt.subplots(figsize=(7.5, 4.4))
    for scenario in dict.fromkeys(name for cells in pinned.values() for name in cells):
        points = [
            (SIZES[s][0] * SIZES[s][1] / 1e6, pinned[s][scenario].throughput) for s in sizes if scenario in pinned[s]
        ]
        axis.plot(*zip(*points, strict=True), marker="o", label=scenario)
    axis.set(
        xlabel="image megapixels (JPEG q90)",
        ylabel="requests / s per model-server core",
        title="the model server alone on a core, the rest on the other",
    )
    axis.set_xscale("log")
    axis.grid(True, alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def mixed_lines(tails: dict[str, dict]) -> list[str]:
    if not tails:
        return ["(Not measured.)", ""]
    lines = [
        "One client sends a 640x480 photo one call at a time, alone, then while two clients send 4K photos in a loop",
        "and a stream pipelines 1080p photos (bench/mixed.py), each on a connection of its own; against the gateway",
        f"as shipped (fair shares) and one with the limits lifted ({' '.join(UNFAIR_FLAGS)}).",
        "",
        "| gateway | small p50 / p99 alone, ms | small p50 / p99 mixed, ms | p99 ratio | 4K calls done "
        "| stream items done |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in tails.items():
        alone, mixed = t["small_alone"], t["small_mixed"]
        lines.append(
            f"| {name} | {alone['p50_ms']} / {alone['p99_ms']} | {mixed['p50_ms']} / {mixed['p99_ms']} "
            f"| {t['p99_ratio']} | {t['large_calls_done']} | {t['stream_items_done']} |"
        )
    where = []
    for name, t in tails.items():
        alone, mixed = t["small_alone"].get("mean_stage_ms"), t["small_mixed"].get("mean_stage_ms")
        if alone and mixed:
            cpu = {
                k: round(sum(v for stage, v in m.items() if stage not in ("predict", "total")), 1)
                for k, m in (("alone", alone), ("mixed", mixed))
            }
            where.append(
                f"- {name}: a small call's mean time alone / mixed, ms: the Predict (the model server's queue and"
                f" work) {alone['predict']} / {mixed['predict']}, the gateway's CPU stages {cpu['alone']} /"
                f" {cpu['mixed']}, the rest (waits for a place and a worker thread, hops)"
                f" {round(alone['total'] - alone['predict'] - cpu['alone'], 1)} /"
                f" {round(mixed['total'] - mixed['predict'] - cpu['mixed'], 1)}."
            )
    return [*lines, "", *where, ""] if where else [*lines, ""]


def pinned_lines(run: RunResult) -> list[str]:
    """The pinned runs' table: each scenario's requests a second per model-server core, and which process saturates."""
    pinned = run.pinned
    if not pinned:
        return ["(Not measured: the deployment's shape needs two CPUs.)", ""]
    host = run.host or this_host()
    model_core, front = host.model_cores, host.front_cores
    lines = [
        f"The model server alone on CPU {min(model_core)}; the gateway (or KServe's transformer) and the load",
        f"generator on CPU {', '.join(map(str, sorted(front)))} (`taskset`; bench/pinning.py), as a model-server host",
        "and the front pods it serves are apart in production. Each process's CPU is its share of one core over the",
        "measured phases.",
        "",
        "| size | scenario | c | req/s per model core | p50 ms | p99 ms | model server "
        "| front (gateway or transformer) | load generator | saturates |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, cells in pinned.items():
        for scenario, c in cells.items():
            front_share = "" if c.front_share is None else f"{c.front_share:.2f}"
            lines.append(
                f"| {size} | {scenario} | {c.concurrency} | {c.throughput:.2f} | {c.p50:.1f} | {c.p99:.1f} "
                f"| {c.model_server_share:.2f} | {front_share} | {c.load_generator_share:.2f} "
                f"| {saturating(c, front_cores(run))} |"
            )
    return [*lines, "", "![requests a second per model-server core](benchmarks-per-core.png)", ""]


def capacity_lines(run: RunResult) -> list[str]:
    """The gateway's capacity beside an instant model server (bench/capacity.py): what a GPU deployment pays."""
    if not run.capacity:
        return ["(Not measured: the capacity scenario needs two CPUs.)", ""]
    lines = [
        "The model server answers instantly (bench/instant.py: the real model server's answer to the same tensor,",
        "recorded once and sent back), as a GPU that answers a 257 x 257 tensor in a few milliseconds would; the cost",
        "left is the gateway's. One core: the gateway alone on one core, the instant model server and the load",
        "generator (bench/light_load.py: prepared bytes on one event loop) on the other. Two cores: the same three",
        "free on both. Two processes: a second gateway process on the same port (SO_REUSEPORT: the kernel hands each",
        "connection to one of them), all free on both cores. A full decode of the same JPEG on the gateway's core",
        f"takes turns with them. Exact answers, RLE, {capacity.CONCURRENCY} calls in flight over"
        f" {capacity.CONNECTIONS} connections.",
        "",
        "| size | answer | one core: images/s | gateway CPU ms a call | images per gateway CPU-second "
        "| full decodes per core-second | ratio | two cores: images/s | scaling | two processes: images/s "
        "| scaling | model server ms a call | load generator ms a call |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, answers in run.capacity.items():
        for answer, f in answers.items():
            one, two, processes = f["one_core"], f["two_cores"], f.get("two_processes") or {}
            lines.append(
                f"| {size} | {answer} | {one['images_per_s']} | {one['gateway_cpu_ms']} "
                f"| {f['images_per_gateway_cpu_s']} | {f['decodes_per_core_s']} | {f['vs_decode']} "
                f"| {two['images_per_s']} | {f['scaling']} | {processes.get('images_per_s')} "
                f"| {f.get('scaling_two_processes')} | {two['backend_cpu_ms']} | {two['client_cpu_ms']} |"
            )
    tiny = run.capacity.get(f"{capacity.TINY[0]}x{capacity.TINY[1]}", {}).get("original")
    lines.append("")
    if tiny:
        fixed = tiny["one_core"]["gateway_cpu_ms"]
        lines += [
            f"Where a call's CPU goes: the {capacity.TINY[0]}x{capacity.TINY[1]} photo costs {fixed} ms of the"
            " gateway's CPU a call, nearly all of it",
            "what any call costs beside its pixels (both gRPC calls, the event loop, the thread hops, the",
            "interceptors, the access log). Of each size's exact call, on one core:",
            "",
            *(
                f"- {size}: {f['one_core']['gateway_cpu_ms']} ms = {fixed} ms a call's own + {f['decode_ms']} ms"
                f" the full decode + {round(f['one_core']['gateway_cpu_ms'] - fixed - f['decode_ms'], 2)} ms the"
                " rest (the resize, the mask's pixels at the photo's size, copies of the photo and the tensor)"
                for size, answers in run.capacity.items()
                if (f := answers.get("original")) and f is not tiny
            ),
            "",
        ]
    return lines


def findings(run: RunResult, summary: dict, plan: Plan) -> list[str]:
    """Where the gateway's time and CPU go at the headline size, and what stands in the way of each missed
    target, computed from this run's own figures."""
    size = summary["size"]
    c4 = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    rle, floor, floor_c4 = (run.cell(size, s, c) for s, c in (("gateway-rle", 1), ("floor", 1), ("floor", c4)))
    if rle is None or floor is None or floor_c4 is None:
        return []
    stages = rle.stages_us
    cpu_stage_keys = ("probe_us", "decode_us", "resize_us", "pack_us", "unpack_us", "postprocess_us", "encode_us")
    cpu_stages = sum(stages.get(k, 0) for k in cpu_stage_keys) / 1000
    cpu = rle.server_cpu_ms or 0.0
    cores = (run.host or this_host()).cpus
    model_cpu = floor_c4.backend_cpu_ms or 1000 * cores / floor_c4.throughput
    expected = model_cpu / (model_cpu + cpu) if model_cpu else 0.0
    decode = summary["decode_ms_1080p"]
    predict_extra_ms = stages.get("predict_us", 0) / 1000 - floor.p50
    levers = summary.get("lever_p50_ms_1080p", {})
    lines = [
        f"## Where the time goes ({size}, computed from this run)",
        "",
        f"- Decoding this JPEG at reduced scale, alone, on one thread: {decode:.2f} ms (the cost no gateway avoids;",
        f"  the targets below are measured against it); every pixel, as an exact answer needs: "
        f"{summary.get('decode_full_ms_1080p')} ms.",
        "- Decoding the 1080p mosaic per megapixel, by format (quality 90; probe and every pixel, wall / process CPU"
        " ms, bytes):",
        *(
            f"  {kind}: {cost['ms_per_mp']} / {cost['cpu_ms_per_mp']} ms, {cost['bytes_per_mp']:,} bytes"
            for kind, cost in (summary.get("decode_per_mp_1080p") or {}).items()
        ),
        f"- Latency at concurrency 1: the gateway's p50 (RLE) is {rle.p50 - floor.p50:.1f} ms above the",
        f"  floor's. Its CPU stages take {cpu_stages:.1f} ms",
        f"  of wall time (decode {stages.get('decode_us', 0) / 1000:.1f} ms inside the gateway, where threads and the",
        f"  event loop share the cores), its Predict leg {predict_extra_ms:+.1f} ms against the floor's whole call;",
        "  the rest is the extra gRPC hop from the client (the JPEG in, the mask out).",
        f"- CPU: {cpu:.1f} ms per call in the gateway process ({summary['gateway_cpu_vs_full_decode_1080p']} times",
        f"  the full decode), of which the pipeline stages account for about {cpu_stages:.1f} ms; the rest",
        f"  ({max(cpu - cpu_stages, 0):.1f} ms) is gRPC, asyncio and protobuf work on the event loop.",
        f"- Throughput at concurrency {c4}: the model server saturates the {cores} cores, at about",
        f"  {model_cpu:.0f} ms of CPU per call; the gateway's {cpu:.1f} ms run on the same cores, so the best ratio",
        f"  to expect is {model_cpu:.0f} / ({model_cpu:.0f} + {cpu:.1f}) = {expected:.2f}; measured",
        f"  {summary['throughput_ratio_c4_1080p']}.",
        "  Beside a GPU model server, on cores of its own, the ratio is set by latency, not by shared CPU.",
        f"- The answers: the RLE mask at {size} is {rle.response_bytes} bytes. The mosaic's tiles are photos at",
        "  their own scale, so at 1080p and 4K each subject is small for the model's input: where DeepLab finds no",
        "  object the mask is one run of background, and mask work and answers are at their cheapest; bytes and",
        "  postprocessing of a photo with a large subject cost more (see 640x480).",
        "- Levers (RLE, concurrency 1, p50 ms / the gateway's CPU ms per call; their agreement in the table above):",
        *(
            f"  {name.replace('_', ' ')}: {levers.get(name)} / {summary.get('lever_cpu_ms_1080p', {}).get(name)}"
            for name in LEVERS
        ),
        "  (exact: as shipped; reduced decode, nearest upscale, uint8 input: one speed option of the profile each;",
        "  fast: all three, the gateway before its answers were exact; model size: MASK_SIZE_MODEL; bench/LEVERS.md)",
        "",
    ]
    flame = run.profile_1080p
    if flame:
        lines += [
            f"Where the gateway's time goes at {size} (py-spy, {flame['samples']} samples of every thread over",
            f"{PROFILE_SECONDS} s at concurrency 4, RLE; grouped by the deepest frame of the gateway's own code, or",
            "the library frame where there is none; bench/profile.py):",
            "",
            "| share | where |",
            "| --- | --- |",
            *(f"| {100 * share:.1f}% | `{where}` |" for share, where in flame["top"]),
        ]
    lines += [
        "",
        "## Targets missed, and what stands in the way",
        "",
    ]
    missed = [name for name in TARGETS if met(name, summary.get(name)) != "met"]
    exact_cost = _difference(levers.get("exact"), levers.get("fast"))
    exact_cpu = _difference(
        summary.get("lever_cpu_ms_1080p", {}).get("exact"), summary.get("lever_cpu_ms_1080p", {}).get("fast")
    )
    exactness = (
        f"an exact answer needs every pixel decoded ({summary.get('decode_full_ms_1080p')} ms here, against"
        f" {decode} ms at the reduced scale the target is set against): exactness costs {exact_cpu} ms of the"
        f" gateway's CPU and {exact_cost} ms of latency per call against the fast lever (the same gateway with the"
        " profile's speed options; levers above), whose answers are not the model's (Agreement beside speed)"
    )
    model_ms = summary.get("pinned_model_server_cpu_ms_1080p") or {}
    own_ms, ingraph_ms = model_ms.get("gateway-rle-model"), model_ms.get("ingraph")
    ceiling = round(ingraph_ms / own_ms, 2) if own_ms and ingraph_ms else None
    reasons = {
        "throughput_per_model_core_vs_ingraph_1080p": "the model server saturates its core in both (the table"
        f" above); its CPU per call is {own_ms} ms behind the gateway at the model's size (no scores asked),"
        f" {model_ms.get('floor')} ms for the floor (the Predict of an exact call, scores included) and {ingraph_ms}"
        " ms for the in-graph peer, whose JPEG decode and resize run there. The model's own work is what no front"
        f" can take off it, so {ceiling} is the most the gateway can reach against that peer with this model on this"
        " CPU; the gateway costs the model host no more than its floor (throughput_per_model_core_vs_floor_1080p). A"
        " larger model or a GPU changes the model's share, not the decode's",
        "p99_small_under_mixed_ms_ratio": "the two cores are shared by the model server, the gateway's decodes of"
        " the 4K photos (every one of their 8.3 megapixels) and the stream's, and the small photo's own call: it"
        " waits for CPU as much as for a place. With the fairness limits lifted the ratio is"
        f" {summary.get('p99_small_under_mixed_ms_ratio_unfair')}: fair shares shorten the wait, they cannot make"
        " the cores larger. Fewer places (max_concurrent_calls) shorten the model server's queue further, at the"
        " cost of the stream's throughput",
        "gateway_cpu_vs_full_decode_1080p": f"{exactness}; beyond the decode, each call costs the client's gRPC"
        " hop to the gateway, grpc.aio's server and client, two thread hops and the interceptors, spread thin (the"
        " profile above), and the resize and the mask's pixels decided at the photo's size",
        "gateway_capacity_per_core_vs_decode_1080p": "the same per-call work as gateway_cpu_vs_full_decode_1080p,"
        " fewer event-loop wake-ups per call at saturation; the table in The gateway's capacity",
        "gateway_scaling_2_cores_1080p": "one process: its event loop, the protobuf and gRPC work and the Python"
        " between the GIL-free stages (decode, resize) hold the GIL, so two cores give less than two; the instant"
        " model server and the load generator take their share of the same two cores. Two processes sharing the"
        f" port scale {summary.get('gateway_scaling_2_processes_1080p')} times (the table in The gateway's"
        " capacity): a pod is best one process a core",
        "throughput_ratio_c4_1080p": f"shared cores: the expected ratio is {expected:.2f} (above)",
        "speedup_vs_ingraph_1080p": "both give the graph 257 x 257 and both decode every pixel of the JPEG; the"
        " in-graph peer does it inside TF Serving, in C++, with no second hop, where the gateway pays a gRPC hop and"
        " Python per call, which the reduced decode used to pay for; the peer's answers"
        " are the model's only at 257 x 257, its pixels rounded (Agreement beside speed)",
        "throughput_vs_ingraph_c4_1080p": "shared cores: the model server and the gateway's whole decode share two"
        " cores (as for throughput_ratio_c4_1080p); on a model server of its own the gateway takes the decode off it"
        " (backend_cpu_vs_ingraph_1080p)",
        "backend_cpu_vs_ingraph_1080p": "the exact answer sends float32 pixels (four times the bytes of uint8) and"
        " asks for the 33 x 33 scores beside the class ids: about 1-2 ms of the model server's CPU per call",
        "speedup_vs_seed_4k": "the exact answer decodes all 8.3 megapixels of a 4K JPEG (about 35 ms), as the seed"
        " chain does; the reduced decode took 16 ms at 1/8 scale",
        "request_bytes_ratio_1080p": "a camera-like JPEG is larger than an upscaled one (the bytes per megapixel"
        " above), while the seed's raw tensor is the same size, so the ratio falls",
        "response_bytes_ratio_1080p": "the seed's answer is TF Serving's default typed-field int64 mask, one byte a"
        " pixel for ids below 128, an eighth of the tensor_content answer the target was set against; the PNG mask"
        " is compared, and deflate cannot shrink data more than about 1032 times, so no PNG of a one-byte-a-pixel"
        " mask reaches 1000 (the RLE mask of the same size is in the table above)",
        "gateway_rss_mb": "the peak of the whole run, in which one gateway serves eight models and every size, 4K"
        " images and overlays at concurrency 8 included. The exact answer decodes every pixel: 25 MB for a 4K image,"
        " two at a time (the worker threads), where the reduced decode took 0.4 MB; the heap keeps such buffers for"
        " the next call (service/__main__.py, tune_malloc: 14 ms less CPU per 4K call). RSS also counts the shared"
        " libraries' mapped pages (OpenCV, gRPC, NumPy, Python: 60-80 MB; see the memory line above); its private"
        f" memory peaked at {summary.get('gateway_anon_peak_mb')} MB. By phase: bench/LEVERS.md",
    }
    for name in missed:
        value = summary.get(name)
        why = "not measured in this plan" if value is None else reasons.get(name, "see the tables above")
        lines.append(f"- `{name}` = {value}: {why}.")
    if not missed:
        lines.append("- none")
    lines.append("")
    return lines


def agreement_lines(results: Cells, summary: dict, plan: Plan) -> list[str]:
    """Each scenario's agreement with the model's own output (bench/fidelity.py's cases) beside its 1080p speed."""
    agreed = summary.get("agreement_by_scenario") or {}
    if "1080p" not in results or not agreed:
        return []
    c4 = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    lines = [
        "## Agreement beside speed (1080p)",
        "",
        "Agreement: the share of pixels where a scenario's answer, at the photo's size (a model-size answer enlarged",
        "by nearest neighbour, as a client would), has the class the model itself gives on the whole photo; min and",
        "mean over bench/FIDELITY.md's cases (real photos with subjects, as given, EXIF-rotated, PNG, WebP, 1080p,",
        "4K), and over those stored upright (no EXIF orientation, which TensorFlow's decoders, and so the in-graph",
        "peers, ignore). Speed: this run's mosaic.",
        "",
        "| scenario | agreement min | mean | min, upright | mean, upright | p50 ms (c1) | req/s (c4) "
        "| gateway CPU ms (c1) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, cells in results["1080p"].items():
        if scenario not in agreed:
            continue
        shares = " | ".join(f"{100 * share:.3f} %" for share in agreed[scenario])
        throughput = f"{cells[c4].throughput:.1f}" if c4 in cells else ""  # the levers run one call at a time
        cpu = cells[1].server_cpu_ms
        lines.append(
            f"| {scenario} | {shares} | {cells[1].p50:.1f} | {throughput} | {'' if cpu is None else f'{cpu:.1f}'} |"
        )
    return lines


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


def memory_lines(run: RunResult) -> list[str]:
    line = f"Gateway memory: peak RSS {run.gateway_rss_peak_mb:.0f} MB, {run.gateway_rss_mb:.0f} MB at the end."
    memory = run.gateway_memory_mb
    if not memory:  # a run recorded before the parts were
        return [line]
    idle, end = memory["idle"], memory["end"]
    return [
        line[:-1] + f"; idle at the start {idle['VmRSS']:.0f} MB. Of the RSS, the process's own memory (RssAnon) was"
        f" {idle['RssAnon']:.0f} MB idle, {memory['peak_anon']:.0f} MB at most (sampled every 0.2 s) and"
        f" {end['RssAnon']:.0f} MB at the end; the rest is mapped shared libraries (RssFile: {idle['RssFile']:.0f}"
        f" MB idle, {end['RssFile']:.0f} MB at the end; OpenCV alone about 30 MB), shared and reclaimable, and larger",
        "when their files sit in the page cache.",
    ]


def write_report(run: RunResult, plan: Plan, kind: str) -> dict:
    """BENCHMARKS.md and the plots in plan.out; the ratios, by name."""
    results = run.cells
    summary = ratios(run, plan)
    host = run.host or this_host()  # this machine, for runs saved before the run recorded its own
    plan.out.mkdir(parents=True, exist_ok=True)
    plot(results, plan.out / "benchmarks.png", plan)
    if run.pinned:
        plot_per_core(run.pinned, plan.out / "benchmarks-per-core.png")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` ({kind} run) on {host.finished} UTC.",
        f"Machine: {host.machine}. Versions: " + ", ".join(f"{k} {v}" for k, v in host.versions.items()) + ".",
        "",
        "Everything runs on this one machine, on loopback: modelserver (TensorFlow, the model), the gateway, and the",
        "load generators, each in its own process, so the model server and the gateway share the same cores.",
        "Images: mosaics of real photos at their native scale, never resized (the shared photos and scikit-image's",
        f"sample photos; bench/photos.py), JPEG quality 90: {summary.get('image_bytes_per_mp_1080p')} bytes per",
        "megapixel at 1080p, as a camera's photos (an upscaled picture is smoother and decodes faster).",
        f"Each cell runs for {plan.seconds} s after a warm-up call, in {plan.rounds} phases that take turns with",
        "the other scenarios (they alternate, so a noisy machine's drift falls on all of them alike).",
        f"The gateway's model as shipped: profile {PROFILE}, whose answers are the graph's own (the float pixels the",
        "graph's resize makes, to `serving_scores`; pixels at the photo's size decided from the scores it returns).",
        "",
        "- **floor**: the very Predict the gateway sends, made by the client beforehand (the model plus transport).",
        "- **gateway-png / gateway-rle**: `SegmentImage` with the JPEG bytes, mask at the original size (exact);",
        "  `-model`: at the model's size; `-fast`, `-reduced`, `-nearest`, `-uint8`: the profile's speed options",
        "  (bench/fidelity.py's LEVERS); `-u8`: uint8 class ids from the graph.",
        "- **ingraph**: the JPEG bytes to TF Serving, decoded and resized to 257 x 257 in the graph, the mask at that",
        "  size (`exporter --bytes-signature-size 257x257`); **ingraph-exact**: decoded in the graph, the graph's own",
        "  answer at the image's size (`--bytes-signature-size full`), the exact answer the gateway's matches.",
        "- **tfserving-rest**, **kserve**: TF Serving's REST API with uint8 pixels as JSON; a KServe transformer.",
        "- **gateway-rle-triton**: the gateway's model on NVIDIA Triton (kind kserve-v2; the same servable, run by",
        "  TensorFlow in Triton's Python backend: triton/serve.py); **triton-floor**: the very ModelInfer the",
        "  gateway sends Triton, made beforehand. Triton's CPU is counted over its processes (tritonserver, the stub).",
        "- **seed**: the client decodes the full image, `tf.make_tensor_proto`, Predict at full resolution,",
        "  `tf.make_ndarray` on the int64 mask.",
        "",
        "## Targets (ratios from this run)",
        "",
        "| measure | value | target | |",
        "| --- | --- | --- | --- |",
    ]
    for name, (op, bound) in TARGETS.items():
        lines.append(f"| `{name}` | {summary.get(name)} | {op} {bound} | {met(name, summary.get(name))} |")
    lines += ["", "## The gateway's capacity: what a GPU deployment pays", "", *capacity_lines(run)]
    lines += ["## The deployment's shape: a core for the model server", "", *pinned_lines(run)]
    lines += ["## Tails under mixed load", "", *mixed_lines(run.mixed_tails)]
    lines += [
        "",
        "## Latency, throughput and bytes",
        "",
        "| size | scenario | c | p50 ms | p95 ms | p99 ms | req/s | request bytes | response bytes | errors "
        "| gateway CPU ms/req | load-generator CPU % |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, scenarios in results.items():
        for scenario, cells in scenarios.items():
            for c, s in cells.items():
                cpu = f"{s.server_cpu_ms:.1f}" if s.server_cpu_ms is not None else ""
                lines.append(
                    f"| {size} | {scenario} | {c} | {s.p50:.1f} | {s.p95:.1f} | {s.p99:.1f} | "
                    f"{s.throughput:.2f} | {s.request_bytes:,} | {s.response_bytes:,} | {s.errors} | "
                    f"{cpu} | {s.client_cpu_pct:.0f} |"
                )
    lines += ["", *agreement_lines(results, summary, plan), ""]
    lines += [
        "",
        "## Gateway stages (mean wall time per call in µs, concurrency 1, as the gateway reports them)",
        "",
        "| size | mask | probe | decode | resize | pack | predict | unpack | postprocess | encode | total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, scenarios in results.items():
        for scenario in ("gateway-png", "gateway-rle"):
            st = scenarios[scenario][1].stages_us
            keys = [
                "probe_us",
                "decode_us",
                "resize_us",
                "pack_us",
                "predict_us",
                "unpack_us",
                "postprocess_us",
                "encode_us",
                "total_us",
            ]
            lines.append(f"| {size} | {scenario[8:]} | " + " | ".join(f"{st.get(k, 0):.0f}" for k in keys) + " |")
    if run.outputs:
        lines += [
            "",
            "## Outputs: what each costs and weighs (concurrency 1, bench/outputs.py)",
            "",
            "The gateway's time outside the model (its total less the Predict), median of the calls, and the output's",
            'bytes in the answer, on astronaut.png enlarged; "extra" is beyond the mask alone\'s.',
            "",
            *outputs.table(run.outputs),
        ]
    lines += [
        "",
        *memory_lines(run),
        f"Start to SERVING with the backend up: {run.start_to_serving_s:.2f} s (median, process start included).",
        "",
        *findings(run, summary, plan),
        "The load generator is not the bottleneck: its CPU use is in the last column (percent of one core over the",
        "run); the gateway and floor clients only send prepared bytes, far below a core. The seed client's CPU is",
        "part of what the seed-style chain costs (decoding and tensor building happen in the client).",
        "",
        "![latency and throughput against image size](benchmarks.png)",
        "",
        json.dumps(summary),
        "",
    ]
    (plan.out / "BENCHMARKS.md").write_text("\n".join(lines))
    return summary
