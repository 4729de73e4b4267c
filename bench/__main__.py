"""python -m bench: the gateway, the floor and the seed-style chain, side by side in one run.

Starts modelserver and the gateway on loopback, derives JPEGs (quality 90) at several sizes from a shared
photo, runs each scenario at each concurrency in a load-generator process of its own, and writes
BENCHMARKS.md (tables, machine, versions, date), a plot, and a last line of JSON with the target ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import fidelity, photos, pinning, profile
from deploy.local import ROOT, ServerProcess, free_port, memory_mb, start_gateway, start_modelserver, start_triton
from service.__main__ import tune_malloc
from service.config import Limits
from service.image.decode import decode
from service.image.probe import probe
from service.image.resize import model_size
from service.profiles import BUILTIN_PROFILES, Profile, ResizePolicy

# The shared real data beside the checkout (see the README).
SHARED = ROOT.parent / "shared"
IMAGES = SHARED / "images"
FROZEN_GRAPH = SHARED / "models" / "deeplabv3_mnv2_pascal" / "frozen_inference_graph.pb"
LABELS = SHARED / "models" / "deeplabv3_mnv2_pascal" / "labels.txt"

SIZES = {"640x480": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
PLOTTED = ("floor", "gateway-png", "gateway-rle", "seed")
# The gateway's model as shipped (make run, deploy/, examples/): the exported graph at its own working size. The floor
# and the peers that resize send the same tensor; the in-graph peer resizes to it in the graph.
PROFILE = "deeplab-257"


@dataclass(frozen=True)
class Plan:
    sizes: tuple[str, ...]
    concurrencies: tuple[int, ...]
    seconds: float  # per scenario and concurrency, split over `rounds` interleaved phases
    rounds: int
    fidelity: str | None  # bench/fidelity.py's plan, for the agreement beside the speed; None: not measured
    out: pathlib.Path


PLANS = {
    "full": (tuple(SIZES), (1, 4, 8), 6.0, 6, "full"),
    "quick": (("1080p", "4k"), (1, 4), 2.0, 2, "short"),
    "smoke": (("640x480",), (1,), 0.2, 1, None),
}


def make_jpeg(size: str, directory: pathlib.Path) -> pathlib.Path:
    """A mosaic of real photos at native scale (bench/photos.py), JPEG quality 90."""
    width, height = SIZES[size]
    path = directory / f"{size}.jpg"
    path.write_bytes(photos.jpeg(photos.mosaic(photos.photos(IMAGES), width, height)))
    return path


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


def summarise(result: dict) -> dict:
    lat = result["latencies_ms"]
    requests = result["requests"]
    return {
        "p50": percentile(lat, 50),
        "p95": percentile(lat, 95),
        "p99": percentile(lat, 99),
        "throughput": requests / result["wall_s"] if result["wall_s"] else 0.0,
        "requests": requests,
        "errors": len(result["errors"]),
        "request_bytes": result["request_bytes"],
        "response_bytes": result["response_bytes"],
        "client_cpu_pct": 100 * result["client_cpu_s"] / result["wall_s"] if result["wall_s"] else 0.0,
        "server_cpu_ms": 1000 * result["server_cpu_s"] / requests if result["server_cpu_s"] and requests else None,
        "backend_cpu_ms": 1000 * result["backend_cpu_s"] / requests if result["backend_cpu_s"] and requests else None,
        "encode_us": result["stages_us"].get("encode_us"),
        "stages_us": result["stages_us"],
    }


def versions() -> dict[str, str]:
    import google.protobuf  # noqa: PLC0415

    found = {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    tf = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('tensorflow'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["tensorflow (modelserver, seed client)"] = tf.stdout.strip() or "?"
    return found


def machine() -> str:
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = pathlib.Path("/proc/meminfo").read_text().splitlines()
    memory = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    return f"{os.cpu_count()} CPUs ({model}), {int(memory) // 1024 // 1024} GiB, {platform.platform()}"


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


def decode_ms(image: pathlib.Path, reduced: bool, tries: int = 30) -> float:
    """Median time of entropy-decoding the JPEG on one thread, as the gateway does: every pixel (what an exact
    answer needs), or at the reduced scale the `decode = "reduced"` option uses for the model's input size (the
    cost no gateway avoids, which the targets are measured against)."""
    data = image.read_bytes()
    info = probe(data, Limits())
    target = model_size(*info.oriented_size, BUILTIN_PROFILES[PROFILE]) if reduced else None
    cv2.setNumThreads(0)
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        decode(data, info, target)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def decode_cost_per_mp(size: str, tries: int) -> dict[str, dict[str, float]]:
    """What the gateway's probe and full decode cost per megapixel for each format phones send, on the `size`
    mosaic encoded at quality 90 by each codec: the median wall time and process CPU time (libheif and libavif
    decode on several threads; OpenCV's JPEG decoder on one), and the file's bytes per megapixel."""
    width, height = SIZES[size]
    megapixels = width * height / 1e6
    image = photos.mosaic(photos.photos(IMAGES), width, height)
    costs = {}
    for kind in photos.ENCODERS:
        data = photos.encoded(image, kind)
        walls, cpus = [], []
        for _ in range(tries):
            wall, cpu = time.perf_counter(), time.process_time()
            decode(data, probe(data, Limits()))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        costs[kind] = {
            "ms_per_mp": round(1000 * statistics.median(walls) / megapixels, 2),
            "cpu_ms_per_mp": round(1000 * statistics.median(cpus) / megapixels, 2),
            "bytes_per_mp": round(len(data) / megapixels),
        }
    return costs


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


def per_model_core(images: dict[str, pathlib.Path], servers: Servers, plan: Plan) -> dict[str, dict[str, dict]]:
    """Each size's pinned scenarios at the plan's highest concurrency up to 4 (the model's core saturates there),
    with each process's share of a core: the requests a second here are per core of the model server."""
    c = max(c for c in plan.concurrencies if c <= 4)
    scenarios = PINNED + (("kserve",) if servers.kserve else ()) + (TRITON_1080P if servers.triton else ())
    # Triton's processes on the model's core too: they and modelserver take turns, the idle one costs nothing.
    model_pids = [servers.model_pid, *([servers.triton_pid] if servers.triton_pid else [])]
    front_pids = [servers.gateway_pid, *([servers.kserve_pid] if servers.kserve_pid else [])]
    found: dict[str, dict[str, dict]] = {}
    with pinning.placed(model_pids, front_pids) as front:
        for size, image in images.items():
            found[size] = {}
            for r in load(scenarios, image, plan, servers, (c,), cpus=front):
                wall = r["wall_s"] or 1.0
                found[size][r["scenario"]] = summarise(r) | {
                    "concurrency": c,
                    # Shares of one core over the measured phases: the model server has exactly one.
                    "model_server_share": round((r["backend_cpu_s"] or 0.0) / wall, 3),
                    "front_share": None if r["server_cpu_s"] is None else round(r["server_cpu_s"] / wall, 3),
                    "load_generator_share": round(r["client_cpu_s"] / wall, 3),
                }
                s = found[size][r["scenario"]]
                print(
                    f"  pinned {size:>8} {r['scenario']:<22} c{c}: {s['throughput']:5.1f}/s, model server "
                    f"{s['model_server_share']:.2f} of its core, front {s['front_share']}",
                    flush=True,
                )
    return found


def saturating(cell: dict, front_cores: int) -> str:
    """Which side bounds a pinned scenario's throughput: the process whose core is (nearly) full."""
    model = cell["model_server_share"]
    front = (cell["front_share"] or 0.0) + cell["load_generator_share"]
    if model >= 0.9 and model >= front / front_cores:
        return "model server"
    if front >= 0.9 * front_cores:
        return "front core" + ("s" if front_cores > 1 else "")
    return "neither core full"


# The fairness limits lifted, for the mixed-load tails' comparison: as many places as callers could want, no
# share per caller, waits as long as a call's deadline.
UNFAIR_FLAGS = ("--max-concurrent-calls=64", "--max-calls-per-caller=1000", "--max-queue-wait=60")


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


PROFILE_SECONDS = 10


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


def run(plan: Plan, model_base: pathlib.Path | None) -> dict:
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
        results: dict[str, dict[str, dict[int, dict]]] = {}
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
                line = "  ".join(f"c{c}: p50 {s['p50']:7.1f} ms {s['throughput']:5.1f}/s" for c, s in cells.items())
                print(f"  {size:>8} {scenario:<22} {line}", flush=True)
        pinned = per_model_core(made, servers, plan) if pinning.shape_fits() else {}
        memory = memory_mb(gateway.process.pid)  # before the mixed load's 4K calls, as the phases above
        peak, rss_now = memory["VmHWM"], memory["VmRSS"]
        unfair = start_gateway(f"--config={config}", "--health-poll=0.2", *UNFAIR_FLAGS)
        started.callback(unfair.stop)
        for size in ("640x480", "1080p", "4k"):
            made.setdefault(size, make_jpeg(size, work))
        tails = mixed_tails(made, {"fair": gateway.target, "unfair": unfair.target}, plan)
        serving = start_to_serving(modelserver.target, tries=1 if plan.seconds < 1 else 3)
        started.close()  # the agreement is measured by servers of its own
        agreed = agreement(plan, bases["deeplab"])
    return {
        "results": results,
        "pinned": pinned,
        "mixed_tails": tails,
        "image_bytes": image_bytes,
        "decode_ms": decode_times,
        "decode_full_ms": full_decode_times,
        "decode_per_mp": decode_costs,
        "fidelity": agreed,
        "profile_1080p": flame,
        "gateway_rss_peak_mb": peak,
        "gateway_rss_mb": rss_now,
        "gateway_memory_mb": {"idle": idle_memory, "end": memory, "peak_anon": sampler.peak_anon},
        "start_to_serving_s": serving,
    }


def ratios(run_result: dict, plan: Plan) -> dict[str, float | int | str | None]:
    results = run_result["results"]

    def cell(size: str, scenario: str, c: int, key: str) -> float | None:
        try:
            return results[size][scenario][c][key]
        except KeyError:
            return None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    def difference(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    size = "1080p" if "1080p" in results else plan.sizes[0]
    c4 = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    width, height = SIZES[size]
    decode_1080p = run_result["decode_ms"][size]
    decode_full = run_result.get("decode_full_ms", {}).get(size)
    agreed = run_result.get("fidelity") or {}
    # The gateway against the in-graph peer: both answer with a mask at the model's size.
    gateway = "gateway-rle-model"
    overlay_us = difference(
        cell("4k", "gateway-png-overlay", 1, "encode_us"), cell("4k", "gateway-png", 1, "encode_us")
    )
    pinned = run_result.get("pinned", {}).get(size, {})

    def per_core(scenario: str, peer: str) -> float | None:
        return ratio(pinned.get(scenario, {}).get("throughput"), pinned.get(peer, {}).get("throughput"))

    front_cores = len(pinning.cores()[1]) if pinning.shape_fits() else 1
    return {
        "size": size,
        "image_bytes_per_mp_1080p": round(run_result["image_bytes"][size] / (width * height / 1e6)),
        "decode_ms_1080p": round(decode_1080p, 2),
        "decode_full_ms_1080p": None if decode_full is None else round(decode_full, 2),
        # The probe and full decode of the 1080p mosaic as JPEG, HEIC and AVIF, per megapixel.
        "decode_per_mp_1080p": run_result.get("decode_per_mp"),
        "fidelity_min_agreement": agreed.get("fidelity_min_agreement"),
        "fidelity_mean_agreement": agreed.get("fidelity_mean_agreement"),
        "overhead_vs_decode_1080p": ratio(
            difference(cell(size, "gateway-rle", 1, "p50"), cell(size, "floor", 1, "p50")), decode_1080p
        ),
        "gateway_cpu_vs_decode_1080p": ratio(cell(size, "gateway-rle", 1, "server_cpu_ms"), decode_1080p),
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
        "pinned_saturating_1080p": {scenario: saturating(c, front_cores) for scenario, c in pinned.items()},
        # The model server's CPU per call on its core: what each way of calling it costs the model host.
        "pinned_model_server_cpu_ms_1080p": {
            scenario: round(1000 * c["model_server_share"] / c["throughput"], 1)
            for scenario, c in pinned.items()
            if c["throughput"]
        },
        # p99 of small photos beside 4K calls and a stream over their p99 alone, with the fairness limits as shipped
        # and lifted.
        "p99_small_under_mixed_ms_ratio": run_result.get("mixed_tails", {}).get("fair", {}).get("p99_ratio"),
        "p99_small_under_mixed_ms_ratio_unfair": run_result.get("mixed_tails", {}).get("unfair", {}).get("p99_ratio"),
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
        "gateway_rss_mb": round(run_result["gateway_rss_peak_mb"], 1),
        # Its private part (the RSS less mapped shared libraries), at its peak.
        "gateway_anon_peak_mb": round(run_result.get("gateway_memory_mb", {}).get("peak_anon", 0.0), 1) or None,
        "start_to_serving_s": round(run_result["start_to_serving_s"], 3),
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
    "overhead_vs_decode_1080p": ("<=", 1.3),
    "gateway_cpu_vs_decode_1080p": ("<=", 1.6),
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
    "gateway_rss_mb": ("<=", 150),
    "start_to_serving_s": ("<=", 1.0),
}


def met(name: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    op, bound = TARGETS[name]
    ok = value <= bound if op == "<=" else value >= bound
    return "met" if ok else "**missed**"


def plot(results: dict, path: pathlib.Path, plan: Plan) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = list(results)
    megapixels = [SIZES[s][0] * SIZES[s][1] / 1e6 for s in sizes]
    c_hi = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for scenario in PLOTTED:
        left.plot(megapixels, [results[s][scenario][1]["p50"] for s in sizes], marker="o", label=scenario)
        right.plot(megapixels, [results[s][scenario][c_hi]["throughput"] for s in sizes], marker="o", label=scenario)
    left.set(xlabel="image megapixels (JPEG q90)", ylabel="p50 latency, ms (log)", title="latency, concurrency 1")
    left.set_yscale("log")
    right.set(xlabel="image megapixels (JPEG q90)", ylabel="requests / s", title=f"throughput, concurrency {c_hi}")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_per_core(pinned: dict[str, dict[str, dict]], path: pathlib.Path) -> None:
    """Requests a second per model-server core by image size, for the gateway and each peer (pinned runs)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = list(pinned)
    fig, axis = plt.subplots(figsize=(7.5, 4.4))
    for scenario in dict.fromkeys(name for cells in pinned.values() for name in cells):
        points = [
            (SIZES[s][0] * SIZES[s][1] / 1e6, pinned[s][scenario]["throughput"]) for s in sizes if scenario in pinned[s]
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
    return [*lines, ""]


def pinned_lines(pinned: dict[str, dict[str, dict]]) -> list[str]:
    """The pinned runs' table: each scenario's requests a second per model-server core, and which process saturates."""
    if not pinned:
        return ["(Not measured: the deployment's shape needs two CPUs.)", ""]
    model_core, front = pinning.cores()
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
            front_share = "" if c["front_share"] is None else f"{c['front_share']:.2f}"
            lines.append(
                f"| {size} | {scenario} | {c['concurrency']} | {c['throughput']:.2f} | {c['p50']:.1f} | {c['p99']:.1f} "
                f"| {c['model_server_share']:.2f} | {front_share} | {c['load_generator_share']:.2f} "
                f"| {saturating(c, len(front))} |"
            )
    return [*lines, "", "![requests a second per model-server core](benchmarks-per-core.png)", ""]


def analysis(results: dict, summary: dict, plan: Plan, run_profile: dict | None) -> list[str]:
    """Where the gateway's time and CPU go at the headline size, and what stands in the way of each missed
    target, computed from this run's own figures."""
    size = summary["size"]
    try:
        rle, floor = results[size]["gateway-rle"][1], results[size]["floor"][1]
    except KeyError:
        return []
    stages = rle["stages_us"]
    cpu_stage_keys = ("probe_us", "decode_us", "resize_us", "pack_us", "unpack_us", "postprocess_us", "encode_us")
    cpu_stages = sum(stages.get(k, 0) for k in cpu_stage_keys) / 1000
    cpu = rle["server_cpu_ms"] or 0.0
    c4 = 4 if 4 in plan.concurrencies else plan.concurrencies[-1]
    floor_c4 = results[size]["floor"][c4]
    cores = os.cpu_count() or 2
    model_cpu = floor_c4["backend_cpu_ms"] or 1000 * cores / floor_c4["throughput"]
    expected = model_cpu / (model_cpu + cpu) if model_cpu else 0.0
    decode = summary["decode_ms_1080p"]
    predict_extra_ms = stages.get("predict_us", 0) / 1000 - floor["p50"]
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
        f"- Latency at concurrency 1: the gateway's p50 (RLE) is {rle['p50'] - floor['p50']:.1f} ms above the",
        f"  floor's, {summary['overhead_vs_decode_1080p']} times the decode. Its CPU stages take {cpu_stages:.1f} ms",
        f"  of wall time (decode {stages.get('decode_us', 0) / 1000:.1f} ms inside the gateway, where threads and the",
        f"  event loop share the cores), its Predict leg {predict_extra_ms:+.1f} ms against the floor's whole call;",
        "  the rest is the extra gRPC hop from the client (the JPEG in, the mask out).",
        f"- CPU: {cpu:.1f} ms per call in the gateway process ({summary['gateway_cpu_vs_decode_1080p']} times the",
        f"  decode), of which the pipeline stages account for about {cpu_stages:.1f} ms; the rest",
        f"  ({max(cpu - cpu_stages, 0):.1f} ms) is gRPC, asyncio and protobuf work on the event loop.",
        f"- Throughput at concurrency {c4}: the model server saturates the {cores} cores, at about",
        f"  {model_cpu:.0f} ms of CPU per call; the gateway's {cpu:.1f} ms run on the same cores, so the best ratio",
        f"  to expect is {model_cpu:.0f} / ({model_cpu:.0f} + {cpu:.1f}) = {expected:.2f}; measured",
        f"  {summary['throughput_ratio_c4_1080p']}.",
        "  Beside a GPU model server, on cores of its own, the ratio is set by latency, not by shared CPU.",
        f"- The answers: the RLE mask at {size} is {rle['response_bytes']} bytes. The mosaic's tiles are photos at",
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
    flame = run_profile
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
        "overhead_vs_decode_1080p": f"{exactness}; beyond the decode, each call costs the client's gRPC hop to the"
        " gateway, grpc.aio's server and client, two thread hops and the interceptors: about 3 ms, spread thin (the"
        " profile above); the floor has none of it. bench/LEVERS.md lists what was tried on them (a synchronous"
        " server, uvloop, an inline finish, reading the answer and the request without copies): none moved the"
        " latency beyond the noise",
        "gateway_cpu_vs_decode_1080p": f"{exactness}; the rest is the same per-call gRPC, asyncio and protobuf work",
        "throughput_ratio_c4_1080p": f"shared cores: the expected ratio is {expected:.2f} (above)",
        "speedup_vs_ingraph_1080p": "both give the graph 257 x 257 and both decode every pixel of the JPEG; the"
        " in-graph peer does it inside TF Serving, in C++, with no second hop, where the gateway pays a gRPC hop and"
        " Python per call, which the reduced decode used to pay for (overhead_vs_decode_1080p); the peer's answers"
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


def agreement_lines(results: dict, summary: dict, plan: Plan) -> list[str]:
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
        throughput = f"{cells[c4]['throughput']:.1f}" if c4 in cells else ""  # the levers run one call at a time
        cpu = cells[1]["server_cpu_ms"]
        lines.append(
            f"| {scenario} | {shares} | {cells[1]['p50']:.1f} | {throughput} | {'' if cpu is None else f'{cpu:.1f}'} |"
        )
    return lines


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


def memory_lines(run_result: dict) -> list[str]:
    line = (
        f"Gateway memory: peak RSS {run_result['gateway_rss_peak_mb']:.0f} MB, "
        f"{run_result['gateway_rss_mb']:.0f} MB at the end."
    )
    memory = run_result.get("gateway_memory_mb")
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


def write_report(run_result: dict, plan: Plan, kind: str) -> dict:
    results = run_result["results"]
    summary = ratios(run_result, plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    plot(results, plan.out / "benchmarks.png", plan)
    pinned = run_result.get("pinned") or {}
    if pinned:
        plot_per_core(pinned, plan.out / "benchmarks-per-core.png")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` ({kind} run) on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {machine()}. Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
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
    lines += ["", "## The deployment's shape: a core for the model server", "", *pinned_lines(pinned)]
    lines += ["## Tails under mixed load", "", *mixed_lines(run_result.get("mixed_tails") or {})]
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
                cpu = f"{s['server_cpu_ms']:.1f}" if s["server_cpu_ms"] is not None else ""
                lines.append(
                    f"| {size} | {scenario} | {c} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | "
                    f"{s['throughput']:.2f} | {s['request_bytes']:,} | {s['response_bytes']:,} | {s['errors']} | "
                    f"{cpu} | {s['client_cpu_pct']:.0f} |"
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
            st = scenarios[scenario][1]["stages_us"]
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
    lines += [
        "",
        *memory_lines(run_result),
        f"Start to SERVING with the backend up: {run_result['start_to_serving_s']:.2f} s "
        "(median, process start included).",
        "",
        *analysis(results, summary, plan, run_result.get("profile_1080p")),
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


RUN_FILE = "benchmarks-run.json"


def _int_keys(mapping: dict) -> dict:
    """JSON turned the concurrency keys into strings; they are ints again."""
    return {int(k) if k.isdigit() else k: v for k, v in mapping.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--plan", choices=sorted(PLANS), default="full")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench")
    parser.add_argument("--model-base", type=pathlib.Path, default=None, help="an exported servable to use")
    parser.add_argument(
        "--render", action="store_true", help=f"write the report again from OUT/{RUN_FILE}, the last run's figures"
    )
    args = parser.parse_args(argv)
    plan = Plan(*PLANS[args.plan], out=args.out)
    started = time.monotonic()
    tune_malloc()  # decode_ms measures the decode as the gateway runs it
    if args.render:
        result = json.loads((args.out / RUN_FILE).read_text(), object_hook=_int_keys)
    else:
        sizes = ", ".join(plan.sizes)
        print(f"bench ({args.plan}): sizes {sizes}; concurrency {plan.concurrencies}; {plan.seconds} s a cell")
        result = run(plan, args.model_base)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / RUN_FILE).write_text(json.dumps(result))
    summary = write_report(result, plan, args.plan)
    print(f"wrote {plan.out / 'BENCHMARKS.md'} in {time.monotonic() - started:.0f} s")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
