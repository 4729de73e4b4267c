"""python -m bench.soak [--minutes 10] [--concurrency 16] [--model-base DIR]: the gateway under a long mixed load.

Starts modelserver and the gateway on loopback, then CONCURRENCY clients send, for MINUTES, a mix drawn at
random: JPEG, PNG and WebP photos at 640x480 to 1080p and HEIC and AVIF ones at 640x480 (made from the shared
photos at start), every mask format and size, some overlays, and hostile files (bench/hostile.py: text, a GIF,
truncated JPEG, HEIC and AVIF files, size claims past the limits, scrambled boxes and coded data). Each must get a
code its sample allows (OK for a photo, INVALID_ARGUMENT for a bad file); anything else is an unexpected error.
Prints one JSON line: counts, unexpected errors, the gateway's RSS slope (MB/min, after the first minute) and the
p99 latency of the first and the last minute; exits 1 when an unexpected error occurred.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter

import cv2
import grpc
import numpy as np

from bench import hostile, photos
from bench.hostile import Sample
from bench.plans import IMAGES, LABELS
from bench.run import export
from deploy.local import rss_mb, start_gateway, start_modelserver
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

SIZES = ((640, 480), (1280, 720), (1920, 1080))
FORMATS = (pb.MASK_FORMAT_PNG, pb.MASK_FORMAT_RAW, pb.MASK_FORMAT_RLE)
MASK_SIZES = (pb.MASK_SIZE_ORIGINAL, pb.MASK_SIZE_MODEL)


def inputs() -> list[Sample]:
    made = []
    for photo in ("astronaut.png", "chelsea.png", "coffee.png"):
        image = cv2.imread(str(IMAGES / photo), cv2.IMREAD_COLOR)
        for width, height in SIZES:
            # Photos are never upscaled for timing work, but here any size will do: the soak is about stability.
            resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            name = f"{photo}-{width}x{height}"
            for ext in (".jpg", ".png", ".webp"):
                made.append(Sample(f"{name}{ext}", cv2.imencode(ext, resized)[1].tobytes(), hostile.OK))
            if width == SIZES[0][0]:  # HEIC and AVIF at the smallest size: encoding them at 1080p takes seconds
                made.append(Sample(f"{name}.heic", photos.encoded(resized, "HEIC"), hostile.OK))
                made.append(Sample(f"{name}.avif", photos.encoded(resized, "AVIF"), hostile.OK))
    return made + hostile.samples(cv2.imread(str(IMAGES / "chelsea.png"), cv2.IMREAD_COLOR))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model-base", default=None, help="an exported servable (default: export one now)")
    args = parser.parse_args()
    samples = inputs()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        base = args.model_base or str(export(pathlib.Path(tmp), "deeplab"))
        modelserver = start_modelserver("--model_name=deeplab", f"--model_base_path={base}")
        gateway = start_gateway(f"--backend={modelserver.target}", f"--labels={LABELS}")
        try:
            return run(gateway.target, gateway.process.pid, samples, args.minutes * 60, args.concurrency)
        finally:
            gateway.stop()
            modelserver.stop()


def run(target: str, pid: int, samples: list[Sample], seconds: float, concurrency: int) -> int:
    start = time.monotonic()
    stop = threading.Event()
    latencies: list[tuple[float, float]] = []  # (seconds since start, latency) of good inputs
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()  # calls with a photo, calls with a hostile file
    unexpected: list[str] = []
    rss: list[tuple[float, float]] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 1 << 28)]) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            while not stop.is_set():
                sample = rng.choice(samples)
                request = sample.request()
                request.mask_format = rng.choice(FORMATS)
                request.mask_size = rng.choice(MASK_SIZES)
                request.include_overlay = rng.random() < 0.1
                began = time.monotonic()
                try:
                    stub.SegmentImage(request, timeout=60)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                outcomes[code.name] += 1
                kinds["photo" if sample.codes == hostile.OK else "hostile"] += 1
                if code.name not in sample.codes:
                    unexpected.append(f"{sample.name}: {code.name}")
                elif sample.codes == hostile.OK:
                    latencies.append((began - start, time.monotonic() - began))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    while time.monotonic() - start < seconds:
        rss.append((time.monotonic() - start, rss_mb(pid)))
        time.sleep(min(5.0, seconds / 20))
    stop.set()
    for thread in threads:
        thread.join(90)
    warm = [(t, mb) for t, mb in rss if t >= min(60.0, seconds / 4)]
    slope = float(np.polyfit([t / 60 for t, _ in warm], [mb for _, mb in warm], 1)[0]) if len(warm) > 2 else 0.0
    window = min(60.0, seconds / 4)

    def p99(lo: float, hi: float) -> float:
        values = [latency for t, latency in latencies if lo <= t < hi]
        return round(float(np.percentile(values, 99)) * 1000, 1) if values else float("nan")

    summary = {
        "minutes": round(seconds / 60, 2),
        "concurrency": concurrency,
        "calls": sum(outcomes.values()),
        "hostile_calls": kinds["hostile"],
        "outcomes": dict(outcomes),
        "unexpected_errors": len(unexpected),
        "unexpected_examples": unexpected[:5],
        "rss_mb_first": round(rss[0][1], 1),
        "rss_mb_last": round(rss[-1][1], 1),
        "rss_mb_max": round(max(mb for _, mb in rss), 1),
        "rss_slope_mb_per_min": round(slope, 2),
        "p99_ms_first_minute": p99(0, window),
        "p99_ms_last_minute": p99(seconds - window, seconds),
        "p50_ms": round(statistics.median(latency for _, latency in latencies) * 1000, 1) if latencies else None,
    }
    print(json.dumps(summary))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
