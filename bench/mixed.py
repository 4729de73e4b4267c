"""Tails under mixed load: what small photos wait while large ones and a stream run beside them.

    python -m bench.mixed --gateway HOST:PORT --small JPEG --large JPEG --stream-image JPEG --seconds S

One client sends the small photo (640x480) one call at a time, first alone for S seconds, then for S seconds while
two clients send the large photo (4K) in a loop and a stream pipelines the stream image (1080p), each on a
connection of its own, as callers on other machines are. Prints one JSON line: the small calls' p50 and p99 alone
and under the mixed load, their ratio, and what the others got done meanwhile.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import threading
import time
from dataclasses import dataclass, field

import grpc
import numpy as np

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

OPTIONS = [
    ("grpc.max_send_message_length", 1 << 28),
    ("grpc.max_receive_message_length", 1 << 28),
    ("grpc.use_local_subchannel_pool", 1),  # a connection of its own per channel
]
STREAM_ITEMS = 400


@dataclass
class SmallCalls:
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0  # a failure counts as its time
    stages_us: list[dict[str, int]] = field(default_factory=list)  # the gateway's timings of each answered call


def _small_calls(target: str, image: bytes, seconds: float) -> SmallCalls:
    """Back-to-back calls for `seconds`."""
    request = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE)
    calls = SmallCalls()
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        stub.SegmentImage(request, timeout=60)  # the connection and the first call at this size
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                timing = stub.SegmentImage(request, timeout=60).timing
                calls.stages_us.append({f.name: getattr(timing, f.name) for f in timing.DESCRIPTOR.fields})
            except grpc.RpcError:
                calls.failed += 1
            calls.latencies_ms.append((time.perf_counter() - start) * 1000)
    return calls


def _large_calls(target: str, image: bytes, stop: threading.Event, done: list[int], slot: int) -> None:
    request = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE)
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        while not stop.is_set():
            try:
                stub.SegmentImage(request, timeout=60)
                done[slot] += 1
            except grpc.RpcError:
                time.sleep(0.05)  # refused for fairness: try again, as a client would


def _stream(target: str, image: bytes, stop: threading.Event, done: list[int]) -> None:
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE))
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        call = pb_grpc.SegmentationServiceStub(channel).SegmentImageStream(iter([item] * STREAM_ITEMS), timeout=600)
        for answer in call:
            if stop.is_set():
                call.cancel()
                return
            if answer.HasField("result"):
                done[0] += 1


def _tail(calls: SmallCalls) -> dict[str, object]:
    """The calls' p50 and p99, and where their time went on average (ms): each stage inside the gateway, and the
    rest (the wait for a place and a worker thread, the hops), the Predict's wait for the model server included
    in its stage."""
    stages = calls.stages_us
    mean_ms = (
        {key.removesuffix("_us"): round(float(np.mean([s[key] for s in stages])) / 1000, 1) for key in stages[0]}
        if stages
        else {}
    )
    return {
        "p50_ms": round(float(np.percentile(calls.latencies_ms, 50)), 1),
        "p99_ms": round(float(np.percentile(calls.latencies_ms, 99)), 1),
        "calls": len(calls.latencies_ms),
        "failed": calls.failed,
        "mean_stage_ms": mean_ms,
    }


def measure(target: str, small: bytes, large: bytes, stream_image: bytes, seconds: float) -> dict[str, object]:
    alone = _small_calls(target, small, seconds)
    stop = threading.Event()
    large_done, stream_done = [0, 0], [0]
    others = [threading.Thread(target=_large_calls, args=(target, large, stop, large_done, i)) for i in range(2)]
    others.append(threading.Thread(target=_stream, args=(target, stream_image, stop, stream_done)))
    for thread in others:
        thread.start()
    try:
        time.sleep(min(2.0, seconds / 4))  # the others under way first
        mixed = _small_calls(target, small, seconds)
    finally:
        stop.set()
        for thread in others:
            thread.join(120)
    unloaded, loaded = _tail(alone), _tail(mixed)
    return {
        "small_alone": unloaded,
        "small_mixed": loaded,
        "p99_ratio": round(loaded["p99_ms"] / unloaded["p99_ms"], 2),
        "large_calls_done": sum(large_done),
        "stream_items_done": stream_done[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--small", required=True)
    parser.add_argument("--large", required=True)
    parser.add_argument("--stream-image", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    figures = measure(
        args.gateway,
        pathlib.Path(args.small).read_bytes(),
        pathlib.Path(args.large).read_bytes(),
        pathlib.Path(args.stream_image).read_bytes(),
        args.seconds,
    )
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
