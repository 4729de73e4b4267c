"""A load generator that costs little per call, for measuring the gateway at saturation: the request serialized once,
sent as bytes on one asyncio event loop, the answers' bytes counted and never parsed.

    python -m bench.light_load --gateway HOST:PORT --request PATH --concurrency 8 --seconds 5 [--watch-pid PID]

PATH holds a serialized SegmentImageRequest. Prints one JSON line: requests, errors, wall and this process's CPU
seconds, the watched process's CPU seconds over the same span, and the latencies' percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import resource
import time

import grpc
import numpy as np

from bench.load import process_cpu_s

METHOD = "/segmentation.v1.SegmentationService/SegmentImage"
OPTIONS = [("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30)]


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(target: str, request: bytes, concurrency: int, seconds: float, watch_pid: int | None) -> dict:
    async with grpc.aio.insecure_channel(target, options=OPTIONS) as channel:
        call = channel.unary_unary(METHOD)
        await call(request, timeout=120)  # the connection, and the answer recorded upstream
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                try:
                    await call(request, timeout=120)
                except grpc.aio.AioRpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")
                    return
                latencies.append(time.perf_counter() - start)

        cpu, watched, wall = _cpu_now(), process_cpu_s(watch_pid) if watch_pid else 0.0, time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        wall = time.perf_counter() - wall
        found = {
            "requests": len(latencies),
            "errors": errors,
            "wall_s": wall,
            "client_cpu_s": _cpu_now() - cpu,
            "watched_cpu_s": process_cpu_s(watch_pid) - watched if watch_pid else None,
        }
        for q in (50, 99):
            found[f"p{q}_ms"] = float(np.percentile(latencies, q) * 1000) if latencies else None
        return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.light_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--request", required=True, type=pathlib.Path, help="a serialized SegmentImageRequest")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--watch-pid", type=int, default=None, help="the gateway: its CPU over the same span")
    args = parser.parse_args()
    result = asyncio.run(drive(args.gateway, args.request.read_bytes(), args.concurrency, args.seconds, args.watch_pid))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
