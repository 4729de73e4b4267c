"""What each output costs and weighs (issue 31): the gateway's time outside the model and the answer's bytes for a
mask alone and for each output asked beside it, at 1080p and 4K, one call at a time, the outputs taking turns.

    python -m bench.outputs [--sizes 1080p,4k] [--tries 7]

starts a modelserver and a gateway of its own (as `make run`'s: the profile read from the exported servable) and
prints the table and one JSON line; bench/run.py measures the same against the run's gateway for BENCHMARKS.md.

Time is the gateway's own: its total less the Predict (probe, decode, resize, pack, unpack, postprocess, encode),
the median over the tries; "extra" is that less the mask alone's. Bytes are the output's own fields in the answer.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time
from collections.abc import Callable

import cv2
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import photos
from bench.plans import IMAGES, LABELS, SIZES
from deploy.local import start_gateway, start_modelserver
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

# A photo of a person, enlarged: a subject to cut out, regions and a probability map that are not empty.
PHOTO = IMAGES / "astronaut.png"
PERSON = "15"
SOFT = pb.CUTOUT_EDGE_SOFT
MASK_ALONE = "mask alone (RLE)"
# Each output: the request's fields beside the image and an RLE mask, and the answer's bytes for it.
OUTPUTS: dict[str, tuple[dict[str, object], Callable[[pb.SegmentImageResponse], int]]] = {
    MASK_ALONE: ({}, lambda r: r.mask.ByteSize()),
    "regions (boxes, areas, means)": ({"regions": pb.RegionOptions()}, lambda r: sum(g.ByteSize() for g in r.regions)),
    "regions with polygons (1 px) and COCO RLE": (
        {"regions": pb.RegionOptions(include_polygons=True, include_coco_rle=True)},
        lambda r: sum(g.ByteSize() for g in r.regions),
    ),
    "a probability map": ({"probability_classes": [PERSON]}, lambda r: sum(len(m.png) for m in r.probabilities)),
    "overlay": ({"include_overlay": True}, lambda r: len(r.overlay)),
    "cut-out, hard, PNG": ({"cutout": pb.CutoutOptions()}, lambda r: len(r.cutout.image) + len(r.cutout.alpha)),
    "cut-out, soft, PNG": (
        {"cutout": pb.CutoutOptions(edge=SOFT)},
        lambda r: len(r.cutout.image) + len(r.cutout.alpha),
    ),
    "cut-out, soft, WebP (quality 90)": (
        {"cutout": pb.CutoutOptions(edge=SOFT, format=pb.CUTOUT_FORMAT_WEBP)},
        lambda r: len(r.cutout.image) + len(r.cutout.alpha),
    ),
    "cut-out, soft, JPEG and alpha PNG": (
        {"cutout": pb.CutoutOptions(edge=SOFT, format=pb.CUTOUT_FORMAT_JPEG_AND_ALPHA)},
        lambda r: len(r.cutout.image) + len(r.cutout.alpha),
    ),
    "cut-out, soft, alpha alone": (
        {"cutout": pb.CutoutOptions(edge=SOFT, format=pb.CUTOUT_FORMAT_ALPHA)},
        lambda r: len(r.cutout.image) + len(r.cutout.alpha),
    ),
}
OPTIONS = [("grpc.max_receive_message_length", 1 << 28), ("grpc.max_send_message_length", 1 << 28)]


def output_costs(target: str, sizes: tuple[str, ...], tries: int) -> dict[str, dict[str, dict[str, float]]]:
    """size -> output -> {"ms", "extra_ms", "bytes"} against the gateway at `target`, on PHOTO at each size."""
    costs: dict[str, dict[str, dict[str, float]]] = {}
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        for size in sizes:
            width, height = SIZES[size]
            image = photos.jpeg(cv2.resize(cv2.imread(str(PHOTO), cv2.IMREAD_COLOR), (width, height)))
            times: dict[str, list[float]] = {name: [] for name in OUTPUTS}
            sizes_seen: dict[str, int] = {}
            for _ in range(tries + 1):  # the first round warms up, and is not counted
                for name, (fields, weigh) in OUTPUTS.items():
                    request = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE, **fields)  # type: ignore[arg-type]
                    answer = stub.SegmentImage(request, timeout=120)
                    times[name].append((answer.timing.total_us - answer.timing.predict_us) / 1000)
                    sizes_seen[name] = weigh(answer)
            medians = {name: statistics.median(found[1:]) for name, found in times.items()}
            costs[size] = {
                name: {
                    "ms": round(medians[name], 1),
                    "extra_ms": round(medians[name] - medians[MASK_ALONE], 1),
                    "bytes": sizes_seen[name],
                }
                for name in OUTPUTS
            }
    return costs


def table(costs: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The figures as a Markdown table: a row an output, time and bytes at each size."""
    sizes = list(costs)
    head = "| output | " + " | ".join(f"{s}: ms (extra) | {s}: bytes" for s in sizes) + " |"
    lines = [head, "| --- |" + " --- | --- |" * len(sizes)]
    for name in OUTPUTS:
        cells = []
        for size in sizes:
            found = costs[size][name]
            extra = "" if name == MASK_ALONE else f" (+{found['extra_ms']:.1f})"
            cells += [f"{found['ms']:.1f}{extra}", f"{int(found['bytes']):,}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _wait_until_serving(target: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while (
            health.Check(health_pb2.HealthCheckRequest(), timeout=10).status != health_pb2.HealthCheckResponse.SERVING
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateway at {target} did not become SERVING within {seconds:g} s")
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outputs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1080p,4k")
    parser.add_argument("--tries", type=int, default=7)
    parser.add_argument("--model-base", type=pathlib.Path, default=pathlib.Path("models/deeplab"))
    args = parser.parse_args(argv)
    sizes = tuple(args.sizes.split(","))
    modelserver = start_modelserver("--model_name=deeplab", f"--model_base_path={args.model_base.resolve()}")
    try:
        gateway = start_gateway(f"--backend={modelserver.target}", f"--labels={LABELS}", "--health-poll=0.2")
        try:
            _wait_until_serving(gateway.target)
            costs = output_costs(gateway.target, sizes, args.tries)
        finally:
            gateway.stop()
    finally:
        modelserver.stop()
    print("\n".join(table(costs)))
    print(json.dumps({"outputs": costs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
