"""Running a bench: the servers on loopback (modelserver, the gateway, Triton and KServe where measured), the photos,
each scenario's load in a load-generator process of its own (bench/load.py), the pinned, mixed-load, profile and
agreement phases; the figures as a RunResult (bench/results.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import capacity, fidelity, pinning, profile
from bench.host import this_host
from bench.inputs import decode_cost_per_mp, decode_ms, make_jpeg
from bench.outputs import output_costs
from bench.plans import FROZEN_GRAPH, LABELS, PROFILE, PROFILE_SECONDS, UNFAIR_FLAGS, Plan
from bench.results import Cell, Cells, PinnedCell, PinnedCells, RunResult
from deploy.local import ROOT, ServerProcess, free_port, memory_mb, start_gateway, start_modelserver, start_triton
from service.profiles import BUILTIN_PROFILES, Profile, ResizePolicy


@dataclass(frozen=True)
class Servers:
    gateway: str
    model: str
    rest: str  # the model server's REST API, http://HOST:PORT
    kserve: str  # the KServe transformer, http://HOST:PORT; empty when it could not be set up
    triton: str  # Triton's gRPC target (triton/serve.py); empty when it could not be started
    gateway_pid: int
    model_pid: int
    kserve_pid: int | None = None  # the KServe transformer's process
    triton_pid: int | None = None  # triton/serve.py, which starts tritonserver


def load(
    scenarios: tuple[str, ...],
    image: pathlib.Path,
    plan: Plan,
    servers: Servers,
    concurrencies: tuple[int, ...],
    *,
    cpus: set[int] | None = None,
) -> list[dict]:
    """Runs the load generator on `scenarios`; on `cpus` only, when given."""
    placed = ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus)))] if cpus else []
    args = [*placed, sys.executable, "-m", "bench.load", f"--scenarios={','.join(scenarios)}", f"--image={image}"]
    args += [f"--gateway={servers.gateway}", f"--model={servers.model}", f"--rest={servers.rest}"]
    args += [
        f"--kserve={servers.kserve}",
        f"--triton={servers.triton}",
        f"--watch-pid={servers.gateway_pid}",
        f"--backend-pid={servers.model_pid}",
    ]
    if servers.kserve_pid:
        args += [f"--transformer-pid={servers.kserve_pid}"]
    if servers.triton_pid:
        args += [f"--triton-pid={servers.triton_pid}"]
    args += [f"--profile={PROFILE}"]
    args += [f"--concurrency={','.join(map(str, concurrencies))}", f"--seconds={plan.seconds}"]
    args += [f"--rounds={plan.rounds}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"load generator {scenarios} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_to_serving(backend: str, tries: int = 3) -> float:
    """Median seconds from starting a gateway process to its health check answering SERVING."""
    times = []
    for _ in range(tries):
        start = time.monotonic()
        gateway = start_gateway(f"--backend={backend}", f"--labels={LABELS}", "--health-poll=1")
        with grpc.insecure_channel(gateway.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.005)
        times.append(time.monotonic() - start)
        gateway.stop()
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarise(result: dict) -> Cell:
    """bench/load.py's raw figures of one scenario at one concurrency as a cell."""
    lat = result["latencies_ms"]
    requests = result["requests"]
    return Cell(
        p50=percentile(lat, 50),
        p95=percentile(lat, 95),
        p99=percentile(lat, 99),
        throughput=requests / result["wall_s"] if result["wall_s"] else 0.0,
        requests=requests,
        errors=len(result["errors"]),
        request_bytes=result["request_bytes"],
        response_bytes=result["response_bytes"],
        client_cpu_pct=100 * result["client_cpu_s"] / result["wall_s"] if result["wall_s"] else 0.0,
        server_cpu_ms=1000 * result["server_cpu_s"] / requests if result["server_cpu_s"] and requests else None,
        backend_cpu_ms=1000 * result["backend_cpu_s"] / requests if result["backend_cpu_s"] and requests else None,
        encode_us=result["stages_us"].get("encode_us"),
        stages_us=result["stages_us"],
    )


def export(directory: pathlib.Path, name: str, *options: str) -> pathlib.Path:
    base = directory / name
    command = [sys.executable, "-m", "exporter", "--frozen-graph", str(FROZEN_GRAPH), "--export-dir", str(base)]
    subprocess.run([*command, *options], check=True, capture_output=True, cwd=ROOT)
    return base


class AnonSampler:
    """The peak of a process's private resident memory (RssAnon), sampled every 0.2 s on a thread of its own:
    the kernel keeps a peak only for the whole RSS, shared-library pages included."""

    def __init__(self, pid: int) -> None:
        self.peak_anon = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()

    def _run(self, pid: int) -> None:
        while not self._done.wait(0.2):
            try:
                self.peak_anon = max(self.peak_anon, memory_mb(pid)["RssAnon"])
            except (OSError, KeyError):
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def ingraph_size(profile: Profile = BUILTIN_PROFILES[PROFILE]) -> tuple[str, ...]:
    """The exporter's option that makes the in-graph peer resize as the gateway's profile does."""
    return (f"--bytes-signature-size={profile.width}x{profile.height}",) if profile.resize == ResizePolicy.FIXED else ()


def model_config(path: pathlib.Path, bases: dict[str, pathlib.Path]) -> pathlib.Path:
    """TF Serving's model config for the servables the run serves side by side from one model server."""
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{base.resolve()}" model_platform: "tensorflow" }}\n'
        for name, base in bases.items()
    )
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path


def start_triton_or_none(model_base: pathlib.Path) -> ServerProcess | None:
    """Triton serving the servable (triton/serve.py in triton/.venv), or None if it cannot be set up or started."""
    setup = subprocess.run(["bash", "triton/setup.sh"], cwd=ROOT, capture_output=True, text=True, check=False)
    if setup.returncode != 0:
        print(f"  Triton skipped: {setup.stderr.strip()[-300:]}", flush=True)
        return None
    try:
        return start_triton(model_base)
    except (RuntimeError, TimeoutError) as error:
        print(f"  Triton skipped: {str(error)[-300:]}", flush=True)
        return None


def gateway_config(path: pathlib.Path, backend: str, triton: str = "") -> pathlib.Path:
    """The gateway's models: the servable as exported (int64 ids) with the shipped profile, and the levers: uint8
    ids from the graph (1 byte a pixel from TF Serving instead of 8 in tensor_content), and the profile's speed
    options, whose cost in agreement bench/fidelity.py measures under the same names (fidelity.LEVERS)."""
    text = f'[[backends]]\nname = "local"\ntargets = ["{backend}"]\n\n'
    text += f'[[models]]\nname = "deeplab"\nlabels = "{LABELS}"\nprofile = "{PROFILE}"\n\n'
    text += f'[[models]]\nname = "deeplab-u8"\nserved_name = "deeplab-u8"\nlabels = "{LABELS}"\nprofile = "{PROFILE}"\n'
    # The shipped model again under another name, for the levers' own process to have it beside them.
    text += (
        f'\n[[models]]\nname = "deeplab-shipped"\nserved_name = "deeplab"\nlabels = "{LABELS}"\nprofile = "{PROFILE}"\n'
    )
    for name, options in fidelity.LEVERS.items():
        text += f'\n[[models]]\nname = "{name}"\nserved_name = "deeplab"\nlabels = "{LABELS}"\nprofile = {options}\n'
    if triton:
        text = text.replace("[[models]]\n", '[[models]]\nbackend = "local"\n')
        text += f'\n[[backends]]\nname = "triton"\nkind = "kserve-v2"\ntargets = ["{triton}"]\n'
        text += '\n[[models]]\nname = "deeplab-triton"\nbackend = "triton"\nserved_name = "deeplab"\n'
        text += f'labels = "{LABELS}"\nprofile = "{PROFILE}"\n'
    path.write_text(text)
    return path


def agreement(plan: Plan, model_base: pathlib.Path) -> dict | None:
    """bench/fidelity.py's figures for the shipped models, their levers and the in-graph peers (it starts servers of
    its own, once this run's have stopped), for the report to show each scenario's agreement beside its speed."""
    if plan.fidelity is None:
        return None
    plan.out.mkdir(parents=True, exist_ok=True)
    report = plan.out / "FIDELITY.md"
    args = [sys.executable, "-m", "bench.fidelity", f"--plan={plan.fidelity}", "--levers", "--peers"]
    args += [f"--model-base={model_base}", f"--report={report}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT, env=env)
    lines = result.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"bench.fidelity failed:\n{result.stderr[-3000:]}")
    print(f"  agreement: {plan.fidelity} plan of bench/fidelity.py, written to {report}", flush=True)
    return json.loads(lines[-1])


def start_kserve(rest_port: int) -> tuple[subprocess.Popen[str] | None, str]:
    """The KServe transformer in its own virtual environment (bench/kserve), or (None, "") if it cannot be set up."""
    setup = subprocess.run(["bash", "bench/kserve/setup.sh"], cwd=ROOT, capture_output=True, text=True, check=False)
    if setup.returncode != 0:
        print(f"KServe peer not measured: setup failed:\n{setup.stderr[-2000:]}", flush=True)
        return None, ""
    port = free_port()
    command = [str(ROOT / "bench" / ".venv-kserve" / "bin" / "python"), "bench/kserve/transformer.py"]
    command += ["--model_name=deeplab", f"--predictor_host=127.0.0.1:{rest_port}", f"--http_port={port}"]
    fixed = BUILTIN_PROFILES[PROFILE]
    if fixed.resize == ResizePolicy.FIXED:  # the same tensor as behind the gateway
        command += [f"--fixed_size={fixed.width}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/v1/models/deeplab", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    print("KServe peer not measured: the transformer did not answer within 60 s", flush=True)
    return None, ""


# Calls of each output at each size, one at a time, taking turns (bench/outputs.py): about 40 s at 1080p and 4K.
OUTPUT_TRIES = 5


# Scenarios by size, each group in a load-generator process of its own, its scenarios taking turns. The peers and
# levers run at 1080p, where the targets are; the seed chain needs TensorFlow in its client.
BASE_GROUP = ("floor", "gateway-png", "gateway-rle")


PEERS_1080P = ("gateway-rle-model", "ingraph", "ingraph-exact", "tfserving-rest")


# The same servable on NVIDIA Triton (triton/serve.py, the kserve-v2 backend): the gateway's model deeplab-triton,
# and Triton's floor, the very ModelInfer the gateway sends it.
TRITON_1080P = ("gateway-rle-triton", "triton-floor")


# The levers, one call at a time (what each costs a call) and taking turns with the shipped model under another name
# ("shipped"): the profile's speed options, each alone and all together ("fast": the gateway before its answers were
# exact), and uint8 ids from the graph.
LEVERS_1080P = (
    "gateway-rle-shipped",
    "gateway-rle-model-shipped",
    "gateway-rle-fast",
    "gateway-rle-model-fast",
    "gateway-rle-reduced",
    "gateway-rle-nearest",
    "gateway-rle-uint8",
    "gateway-rle-model-u8",
)


def groups(size: str, servers: Servers, plan: Plan) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """(scenarios, concurrencies) for each load-generator process at `size`."""
    peers = PEERS_1080P + (("kserve",) if servers.kserve else ()) if size == "1080p" else ()
    found = [(BASE_GROUP + peers, plan.concurrencies), (("seed",), plan.concurrencies)]
    if size == "1080p" and servers.triton:
        # The gateway in front of Triton against Triton alone with the same tensor, taking turns.
        found.append((TRITON_1080P, plan.concurrencies))
    if size == "1080p":
        found.append((LEVERS_1080P, (1,)))
    if size == "4k":
        # For overlay_ms_4k, one call at a time: eight 4K overlays at once would only measure a memory peak.
        found.append((("gateway-png-overlay",), (1,)))
    return found


# The deployment's shape (bench/pinning.py): the model server alone on one core, the fronts (the gateway, KServe's
# transformer) and the load generator on the other. The gateway exact and at the model's size, against the very
# Predict it sends (floor) and the peers that give the model server the JPEG or pixels (ingraph, kserve).
PINNED = ("floor", "gateway-rle", "gateway-rle-model", "ingraph", "ingraph-exact", "tfserving-rest")


def per_model_core(images: dict[str, pathlib.Path], servers: Servers, plan: Plan) -> PinnedCells:
    """Each size's pinned scenarios at the plan's highest concurrency up to 4 (the model's core saturates there),
    with each process's share of a core: the requests a second here are per core of the model server."""
    c = max(c for c in plan.concurrencies if c <= 4)
    scenarios = PINNED + (("kserve",) if servers.kserve else ()) + (TRITON_1080P if servers.triton else ())
    # Triton's processes on the model's core too: they and modelserver take turns, the idle one costs nothing.
    model_pids = [servers.model_pid, *([servers.triton_pid] if servers.triton_pid else [])]
    front_pids = [servers.gateway_pid, *([servers.kserve_pid] if servers.kserve_pid else [])]
    found: PinnedCells = {}
    with pinning.placed(model_pids, front_pids) as front:
        for size, image in images.items():
            found[size] = {}
            for r in load(scenarios, image, plan, servers, (c,), cpus=front):
                wall = r["wall_s"] or 1.0
                s = found[size][r["scenario"]] = PinnedCell(
                    **dataclasses.asdict(summarise(r)),
                    concurrency=c,
                    # Shares of one core over the measured phases: the model server has exactly one.
                    model_server_share=round((r["backend_cpu_s"] or 0.0) / wall, 3),
                    front_share=None if r["server_cpu_s"] is None else round(r["server_cpu_s"] / wall, 3),
                    load_generator_share=round(r["client_cpu_s"] / wall, 3),
                )
                print(
                    f"  pinned {size:>8} {r['scenario']:<22} c{c}: {s.throughput:5.1f}/s, model server "
                    f"{s.model_server_share:.2f} of its core, front {s.front_share}",
                    flush=True,
                )
    return found


def mixed_tails(images: dict[str, pathlib.Path], targets: dict[str, str], plan: Plan) -> dict[str, dict]:
    """bench/mixed.py against each gateway in `targets` (name -> target): small photos' tails alone and beside 4K
    calls and a stream."""
    seconds = max(1.0, min(10.0, plan.seconds * 2))
    args = [sys.executable, "-m", "bench.mixed", f"--small={images['640x480']}", f"--large={images['4k']}"]
    args += [f"--stream-image={images['1080p']}", f"--seconds={seconds}"]
    found = {}
    for name, target in targets.items():
        result = subprocess.run(
            [*args, f"--gateway={target}"], capture_output=True, text=True, timeout=600, check=False, cwd=ROOT
        )
        if result.returncode != 0:
            raise RuntimeError(f"bench.mixed against {name} failed:\n{result.stderr[-3000:]}")
        found[name] = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"  mixed {name}: {found[name]}", flush=True)
    return found


def profile_1080p(image: pathlib.Path, servers: Servers) -> dict | None:
    """A py-spy profile of the gateway serving the 1080p image (RLE) at concurrency 4 (bench/profile.py)."""
    args = [sys.executable, "-m", "bench.load", "--scenarios=gateway-rle", f"--image={image}"]
    args += [f"--gateway={servers.gateway}", "--concurrency=4", f"--seconds={PROFILE_SECONDS + 4}", "--rounds=1"]
    load_process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        folded = profile.record(servers.gateway_pid, PROFILE_SECONDS)
    finally:
        load_process.wait(timeout=120)
    if folded is None:
        return None
    samples, top = profile.summarise(folded)
    return {"samples": samples, "top": top}


def capacity_beside_instant(images: dict[str, pathlib.Path], model_target: str, plan: Plan) -> dict[str, dict]:
    """bench/capacity.py at 1080p and 4K where the plan has them (its first size otherwise), with a gateway of its
    own (this run's stays idle meanwhile); nothing where the shape needs more CPUs than there are."""
    if not pinning.shape_fits():
        return {}
    sizes = tuple(s for s in ("1080p", "4k") if s in images) or tuple(images)[:1]
    return capacity.measure({s: images[s] for s in sizes}, model_target, plan.seconds, plan.rounds)


def run(plan: Plan, model_base: pathlib.Path | None) -> RunResult:
    # Every server started is stopped, last first, however the run ends.
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, contextlib.ExitStack() as started:
        work = pathlib.Path(tmp)
        bases = {
            "deeplab": model_base or export(work, "deeplab"),
            "deeplab-u8": export(work, "deeplab-u8", "--output-dtype=uint8", "--bytes-signature", *ingraph_size()),
            # The graph's own answer at the image's size, from the bytes: the exact peer.
            "deeplab-exact": export(
                work, "deeplab-exact", "--output-dtype=uint8", "--bytes-signature", "--bytes-signature-size=full"
            ),
        }
        rest_port = free_port()
        modelserver = start_modelserver(
            f"--model_config_file={model_config(work / 'models.config', bases)}", f"--rest_api_port={rest_port}"
        )
        started.callback(modelserver.stop)
        # Only where it is measured: Triton and its TensorFlow take 1.5 GB.
        triton = start_triton_or_none(bases["deeplab"]) if "1080p" in plan.sizes else None
        if triton is not None:
            started.callback(triton.stop)
        config = gateway_config(work / "gateway.toml", modelserver.target, triton.target if triton else "")
        gateway = start_gateway(f"--config={config}", "--health-poll=0.2")
        started.callback(gateway.stop)
        idle_memory = memory_mb(gateway.process.pid)
        sampler = AnonSampler(gateway.process.pid)
        started.callback(sampler.stop)
        # Only where it is measured: its environment is 600 MB of packages.
        kserve, kserve_url = start_kserve(rest_port) if "1080p" in plan.sizes else (None, "")
        if kserve is not None:
            started.callback(kserve.wait, timeout=30)
            started.callback(kserve.terminate)
        servers = Servers(
            gateway.target,
            modelserver.target,
            f"http://127.0.0.1:{rest_port}",
            kserve_url,
            triton.target if triton else "",
            gateway.process.pid,
            modelserver.process.pid,
            kserve.pid if kserve is not None else None,
            triton.process.pid if triton is not None else None,
        )
        results: Cells = {}
        image_bytes: dict[str, int] = {}
        decode_times: dict[str, float] = {}
        full_decode_times: dict[str, float] = {}
        flame: dict | None = None
        decode_costs = decode_cost_per_mp("1080p", tries=3 if plan.seconds < 1 else 20)
        made: dict[str, pathlib.Path] = {}
        for size in plan.sizes:
            image = made[size] = make_jpeg(size, work)
            image_bytes[size] = image.stat().st_size
            decode_times[size] = decode_ms(image, reduced=True)
            full_decode_times[size] = decode_ms(image, reduced=False)
            results[size] = {}
            for group, concurrencies in groups(size, servers, plan):
                for r in load(group, image, plan, servers, concurrencies):
                    results[size].setdefault(r["scenario"], {})[r["concurrency"]] = summarise(r)
            if size == "1080p" and plan.seconds >= 1:
                flame = profile_1080p(image, servers)
            for scenario, cells in results[size].items():
                line = "  ".join(f"c{c}: p50 {s.p50:7.1f} ms {s.throughput:5.1f}/s" for c, s in cells.items())
                print(f"  {size:>8} {scenario:<22} {line}", flush=True)
        pinned = per_model_core(made, servers, plan) if pinning.shape_fits() else {}
        gateway_capacity = capacity_beside_instant(made, modelserver.target, plan)
        memory = memory_mb(gateway.process.pid)  # before the mixed load's 4K calls, as the phases above
        peak, rss_now = memory["VmHWM"], memory["VmRSS"]
        unfair = start_gateway(f"--config={config}", "--health-poll=0.2", *UNFAIR_FLAGS)
        started.callback(unfair.stop)
        for size in ("640x480", "1080p", "4k"):
            made.setdefault(size, make_jpeg(size, work))
        tails = mixed_tails(made, {"fair": gateway.target, "unfair": unfair.target}, plan)
        output_sizes = tuple(s for s in ("1080p", "4k") if s in plan.sizes) or plan.sizes[:1]
        costs = output_costs(gateway.target, output_sizes, OUTPUT_TRIES if plan.seconds >= 1 else 1)
        serving = start_to_serving(modelserver.target, tries=1 if plan.seconds < 1 else 3)
        started.close()  # the agreement is measured by servers of its own
        agreed = agreement(plan, bases["deeplab"])
    return RunResult(
        cells=results,
        pinned=pinned,
        mixed_tails=tails,
        image_bytes=image_bytes,
        decode_ms=decode_times,
        decode_full_ms=full_decode_times,
        decode_per_mp=decode_costs,
        fidelity=agreed,
        profile_1080p=flame,
        gateway_rss_peak_mb=peak,
        gateway_rss_mb=rss_now,
        gateway_memory_mb={"idle": idle_memory, "end": memory, "peak_anon": sampler.peak_anon},
        start_to_serving_s=serving,
        outputs=costs,
        host=this_host(),
        capacity=gateway_capacity,
    )
