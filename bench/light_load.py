"""A load generator that costs little per call, for measuring the gateway at saturation: the request serialized once,
sent as bytes on one asyncio event loop, the answers' bytes counted and never parsed.

    python -m bench.light_load --gateway HOST:PORT --request PATH --concurrency 8 --seconds 5 \
        [--connections N] [--watch-pid PID ...]

PATH holds a serialized SegmentImageRequest. Prints one JSON line: requests, errors, wall and this process's CPU
seconds, the watched processes' CPU seconds over the same span, and the latencies' percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import time

import grpc
import numpy as np

from bench.load import CHANNEL_OPTIONS, cpu_now, process_cpu_s

METHOD = "/segmentation.v1.SegmentationService/SegmentImage"


def _cpu_of(pids: list[int]) -> float:
    return sum(process_cpu_s(pid) for pid in pids)


async def drive(
    target: str, request: bytes, concurrency: int, seconds: float, *, watch_pids: list[int], connections: int = 1
) -> dict:
    """`concurrency` callers spread over `connections` connections (a channel each), calling back to back for
    `seconds`; the CPU seconds of `watch_pids` together over the same span."""
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]  # a connection of its own per channel
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(connections)]
    try:
        calls = [channel.unary_unary(METHOD) for channel in channels]
        # Each connection made, and the answer recorded upstream.
        await asyncio.gather(*(call(request, timeout=120) for call in calls))
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.perf_counter() + seconds

        async def caller(call: grpc.aio.UnaryUnaryMultiCallable) -> None:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                try:
                    await call(request, timeout=120)
                except grpc.aio.AioRpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")
                    return
                latencies.append(time.perf_counter() - start)

        cpu, watched, wall = cpu_now(), _cpu_of(watch_pids), time.perf_counter()
        await asyncio.gather(*(caller(calls[i % connections]) for i in range(concurrency)))
        wall = time.perf_counter() - wall
        found = {
            "requests": len(latencies),
            "errors": errors,
            "wall_s": wall,
            "client_cpu_s": cpu_now() - cpu,
            "watched_cpu_s": _cpu_of(watch_pids) - watched if watch_pids else None,
        }
        for q in (50, 99):
            found[f"p{q}_ms"] = float(np.percentile(latencies, q) * 1000) if latencies else None
        return found
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.light_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--request", required=True, type=pathlib.Path, help="a serialized SegmentImageRequest")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=1, help="connections the callers are spread over")
    parser.add_argument(
        "--watch-pid", type=int, action="append", default=[], help="a gateway process: its CPU over the same span"
    )
    args = parser.parse_args()
    request = args.request.read_bytes()
    result = asyncio.run(
        drive(
            args.gateway,
            request,
            args.concurrency,
            args.seconds,
            watch_pids=args.watch_pid,
            connections=args.connections,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
