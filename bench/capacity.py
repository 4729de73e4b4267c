"""The gateway's own capacity, as a deployment whose model server is a GPU sees it: how many images a gateway core
serves when the model costs nothing.

The model server is bench/instant.py (the real model server's answers, recorded once per tensor and sent back with
no model time), and the load generator bench/light_load.py (a serialized request sent as bytes on one event loop,
the answers never parsed). Two shapes, taking turns in rounds with a full decode of the same JPEG on the gateway's
core, so that a noisy machine's drift falls on all three alike:

- one core: the gateway alone on one core, the instant model server and the load generator on the other; the
  gateway's CPU per call, and images per gateway CPU-second against images per second one core decodes fully;
- two cores: the same gateway, the instant model server and the load generator free on every core; images per
  second against the one-core figure, and what the model server and the load generator took of it.

    python -m bench.capacity [--sizes 1080p,4k] [--seconds 6] [--rounds 2]

runs it alone (its own model server and gateway) and prints the figures as one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import cv2

from bench import pinning
from bench.inputs import decode_ms, make_jpeg
from bench.load import process_cpu_s
from bench.plans import LABELS, PROFILE
from deploy.local import ROOT, ServerProcess, start_gateway, start_modelserver, start_process
from segmentation.v1 import segmentation_service_pb2 as pb

# Calls in flight from the load generator: enough to keep the gateway's worker threads and event loop busy while
# answers travel, within one caller's share (max_calls_per_caller).
CONCURRENCY = 8
# Connections the calls are spread over, as callers on other machines are: the kernel hands each to one of the
# processes listening on the port.
CONNECTIONS = 4
# One process on one core, the same on every core, and two processes sharing the port on every core.
SHAPES = ("one", "two", "two_processes")
# The answers measured: the exact mask at the photo's size (what the gateway decides per pixel) and at the model's.
ANSWERS = {"original": pb.MASK_SIZE_ORIGINAL, "model": pb.MASK_SIZE_MODEL}
INSTANT_READY = re.compile(r"instant model server on [\d.]+:(\d+)")


@dataclass(frozen=True)
class Shape:
    """One answer at one size in one shape: the load generator's figures over all rounds."""

    images_per_s: float
    gateway_cpu_ms: float  # the gateway's CPU per call
    backend_cpu_ms: float  # the instant model server's
    client_cpu_ms: float  # the load generator's
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    @property
    def images_per_gateway_cpu_s(self) -> float:
        return 1000 / self.gateway_cpu_ms if self.gateway_cpu_ms else 0.0


@dataclass(frozen=True)
class Capacity:
    """One answer at one size: both shapes, and the full decode of its JPEG on the gateway's core beside them."""

    one_core: Shape
    two_cores: Shape
    decode_ms: float  # median full decode, one thread, on the gateway's core
    two_processes: Shape | None = None  # two gateway processes sharing the port, free on every core

    @property
    def vs_decode(self) -> float:
        """Images per gateway CPU-second over images per second one core decodes the JPEG fully."""
        return self.one_core.images_per_gateway_cpu_s / (1000 / self.decode_ms)

    @property
    def scaling(self) -> float:
        """Images per second free on every core over those on one."""
        return self.two_cores.images_per_s / self.one_core.images_per_s if self.one_core.images_per_s else 0.0

    @property
    def scaling_two_processes(self) -> float | None:
        """Images per second of two processes free on every core over those of one process on one."""
        if self.two_processes is None or not self.one_core.images_per_s:
            return None
        return self.two_processes.images_per_s / self.one_core.images_per_s

    def figures(self) -> dict:
        two_processes = self.scaling_two_processes
        return {
            "one_core": asdict(self.one_core),
            "two_cores": asdict(self.two_cores),
            "two_processes": None if self.two_processes is None else asdict(self.two_processes),
            "scaling_two_processes": None if two_processes is None else round(two_processes, 3),
            "decode_ms": round(self.decode_ms, 2),
            "images_per_gateway_cpu_s": round(self.one_core.images_per_gateway_cpu_s, 1),
            "decodes_per_core_s": round(1000 / self.decode_ms, 1),
            "vs_decode": round(self.vs_decode, 3),
            "scaling": round(self.scaling, 3),
        }


def _request(image: pathlib.Path, answer: str, directory: pathlib.Path) -> pathlib.Path:
    request = pb.SegmentImageRequest(image=image.read_bytes(), mask_format=pb.MASK_FORMAT_RLE)
    request.mask_size = ANSWERS[answer]
    path = directory / f"{image.stem}-{answer}.request"
    path.write_bytes(request.SerializeToString())
    return path


def _drive(processes: list[ServerProcess], request: pathlib.Path, seconds: float, cpus: set[int] | None) -> dict:
    """bench/light_load.py against the gateway's processes (which share one port), from `cpus`."""
    placed = ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus)))] if cpus else []
    target = processes[0].target
    args = [*placed, sys.executable, "-m", "bench.light_load", f"--gateway={target}", f"--request={request}"]
    args += [f"--concurrency={CONCURRENCY}", f"--connections={CONNECTIONS}", f"--seconds={seconds}"]
    args += [f"--watch-pid={process.process.pid}" for process in processes]
    result = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"bench.light_load failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _shape(runs: list[dict], backend_cpu_s: float) -> Shape:
    requests = sum(r["requests"] for r in runs)
    wall = sum(r["wall_s"] for r in runs)

    def per_call(seconds: float) -> float:
        return round(1000 * seconds / requests, 2) if requests else 0.0

    return Shape(
        images_per_s=round(requests / wall, 1) if wall else 0.0,
        gateway_cpu_ms=per_call(sum(r["watched_cpu_s"] for r in runs)),
        backend_cpu_ms=per_call(backend_cpu_s),
        client_cpu_ms=per_call(sum(r["client_cpu_s"] for r in runs)),
        p50_ms=round(statistics.median(r["p50_ms"] for r in runs), 1),
        p99_ms=round(max(r["p99_ms"] for r in runs), 1),
        requests=requests,
        errors=sum(len(r["errors"]) for r in runs),
    )


def _decode_ms(image: pathlib.Path, cpus: set[int], tries: int) -> float:
    """The full decode's median on `cpus` (this process moved there meanwhile), as bench/inputs.py's decode_ms."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return decode_ms(image, reduced=False, tries=tries)
    finally:
        os.sched_setaffinity(0, allowed)


# A photo so small that what a call costs beyond its pixels is nearly all there is to it: the gRPC calls both ways,
# the event loop, the thread hops, the interceptors and the access log.
TINY = (64, 36)


def tiny_jpeg(image: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    """`image` shrunk to TINY, JPEG quality 90."""
    path = directory / f"{TINY[0]}x{TINY[1]}.jpg"
    small = cv2.resize(cv2.imread(str(image)), TINY, interpolation=cv2.INTER_AREA)
    path.write_bytes(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return path


def measure(images: dict[str, pathlib.Path], model_target: str, seconds: float, rounds: int) -> dict[str, dict]:
    """size -> answer -> Capacity.figures(), with the real model server at `model_target` serving "deeplab"; the
    sizes of `images`, and TINY last, for the cost of a call beside its pixels. The shapes with one process first,
    the same answers taking turns in rounds; then a second process on the same port, free with the first."""
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp, contextlib.ExitStack() as started:
        images = images | {f"{TINY[0]}x{TINY[1]}": tiny_jpeg(next(iter(images.values())), pathlib.Path(tmp))}
        instant = start_process("instant", ["bench.instant", f"--upstream={model_target}"], INSTANT_READY)
        started.callback(instant.stop)
        flags = (f"--backend={instant.target}", f"--labels={LABELS}", f"--profile={PROFILE}")
        gateway = start_gateway(*flags)
        started.callback(gateway.stop)
        gateway_core, other_cores = pinning.cores()
        everywhere = gateway_core | other_cores
        cells = [(size, answer) for size in images for answer in ANSWERS]
        requests = {(size, answer): _request(images[size], answer, pathlib.Path(tmp)) for size, answer in cells}
        for request in requests.values():
            _drive([gateway], request, 0.5, None)  # the answers recorded, the buffers grown
        runs: dict[tuple[str, str, str], list[dict]] = collections.defaultdict(list)
        backend_cpu: dict[tuple[str, str, str], float] = collections.defaultdict(float)
        decodes: dict[str, list[float]] = collections.defaultdict(list)

        def phase(cell: tuple[str, str], shape: str, processes: list[ServerProcess], placed: tuple[set, set]) -> None:
            for process in processes:
                pinning.pin(process.process.pid, placed[0])
            pinning.pin(instant.process.pid, placed[1])
            before = process_cpu_s(instant.process.pid)
            runs[(*cell, shape)].append(_drive(processes, requests[cell], seconds / rounds, placed[1]))
            backend_cpu[(*cell, shape)] += process_cpu_s(instant.process.pid) - before

        for _ in range(rounds):
            for cell in cells:
                decodes[cell[0]].append(_decode_ms(images[cell[0]], gateway_core, tries=max(5, round(10 * seconds))))
                phase(cell, "one", [gateway], (gateway_core, other_cores))
                phase(cell, "two", [gateway], (everywhere, everywhere))
        second = start_gateway(*flags, f"--listen={gateway.target}")
        started.callback(second.stop)
        for _ in range(rounds):
            for cell in cells:
                phase(cell, "two_processes", [gateway, second], (everywhere, everywhere))
        found: dict[str, dict] = {size: {} for size in images}
        for size, answer in cells:
            shapes = {
                shape: _shape(runs[(size, answer, shape)], backend_cpu[(size, answer, shape)]) for shape in SHAPES
            }
            capacity = Capacity(
                shapes["one"], shapes["two"], statistics.median(decodes[size]), two_processes=shapes["two_processes"]
            )
            found[size][answer] = capacity.figures()
            print(
                f"  capacity {size:>6} {answer:<8}: one core {capacity.one_core.images_per_s:5.1f}/s "
                f"({capacity.one_core.gateway_cpu_ms:.1f} ms CPU a call, {capacity.vs_decode:.2f} of the decodes a "
                f"core does), two cores {capacity.scaling:.2f}x, two processes "
                f"{capacity.scaling_two_processes or 0:.2f}x",
                flush=True,
            )
        return found


def main() -> None:
    from service.__main__ import tune_malloc  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1080p,4k")
    parser.add_argument("--seconds", type=float, default=6.0, help="per shape and answer, over the rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model-base", type=pathlib.Path, default=ROOT / "models" / "deeplab")
    args = parser.parse_args()
    if not pinning.shape_fits():
        raise SystemExit("the capacity scenario needs two CPUs: one for the gateway, one for the rest")
    tune_malloc()  # the decode measured as the gateway runs it
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        images = {size: make_jpeg(size, pathlib.Path(tmp)) for size in args.sizes.split(",")}
        model = start_modelserver("--model_name=deeplab", f"--model_base_path={args.model_base.resolve()}")
        try:
            started = time.monotonic()
            found = measure(images, model.target, args.seconds, args.rounds)
            print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr)
        finally:
            model.stop()
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
