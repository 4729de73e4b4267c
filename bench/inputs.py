"""The bench's input photos, and what decoding them costs on one thread: what the gateway's figures are set against.
Shared by bench/run.py and bench/capacity.py."""

from __future__ import annotations

import pathlib
import statistics
import time

import cv2

from bench import photos
from bench.plans import IMAGES, PROFILE, SIZES
from service.config import Limits
from service.image.decode import decode
from service.image.probe import probe
from service.image.resize import model_size
from service.profiles import BUILTIN_PROFILES


def make_jpeg(size: str, directory: pathlib.Path) -> pathlib.Path:
    """A mosaic of real photos at native scale (bench/photos.py), JPEG quality 90."""
    width, height = SIZES[size]
    path = directory / f"{size}.jpg"
    path.write_bytes(photos.jpeg(photos.mosaic(photos.photos(IMAGES), width, height)))
    return path


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
