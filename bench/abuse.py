"""python -m bench.abuse [--shape SHAPE] [--streams N] [--connections N] [--seconds S] [--model-base DIR] [FLAG ...]

What clients that misbehave can make the gateway hold, and what they make other clients wait. Starts modelserver
and the gateway (`make run`'s profile and labels, default limits, plus any gateway flags given after the options) on
loopback, loads it in one of these shapes, and prints one JSON line:

  overlays      STREAMS SegmentImageStream calls over CONNECTIONS connections, each sending fifty 1 MB JPEGs
                (3000x2000) that ask for overlays and never reading an answer; the gateway's RSS every second for
                SECONDS; then health, and a polite client that retries RESOURCE_EXHAUSTED with backoff.
  never-reading STREAMS streams (default 40) over CONNECTIONS connections (default 1), each sending twenty 1080p
                JPEGs and never reading; meanwhile, on connections of their own: a polite unary client (20 calls,
                15 s deadline each: codes and latencies against its unloaded latency), a new reflection client
                (grpcurl list and describe), health and ListModels; RSS and health sampled all along.
  batch         one stream pipelining 400 1080p JPEGs and reading its answers, beside 4 unary clients calling in a
                loop, each on its own connection, for SECONDS (default 15): the images each got, its share against
                an equal share, and Jain's fairness index over the five.
  hostile       STREAMS clients (default 8), each on a connection of its own, half on a stream and half calling
                SegmentImage, sending bench/hostile.py's files (truncated, size claims past the limits, scrambled
                HEIC and AVIF boxes and coded data) for SECONDS (default 10) and reading every answer, which must
                have a code its file allows; meanwhile the polite client, reflection, health and ListModels as in
                never-reading.
  storm         STREAMS never-reading streams (default 120) over CONNECTIONS connections (default 4), and 1,000
                calls opened and cancelled at once; then the polite client, reflection, health and ListModels as in
                never-reading.

The figures are in docs/reliability.md; tests/gateway/test_abuse.py and test_fairness.py run these shapes in
`make test`.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bench import hostile, photos
from bench.plans import IMAGES, LABELS, PROFILE
from bench.run import export
from deploy.local import ROOT, ServerProcess, rss_mb, start_gateway, start_modelserver
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

ITEMS_PER_STREAM = 50
# Each channel on a connection of its own, as clients on other machines have: gRPC's Python channels with the same
# target and options share one connection unless told otherwise. Answers as large as the hostile set asks for (a 4K
# cut-out is about 7 MB; gRPC's default limit is 4 MiB).
SEND_OPTIONS = [
    ("grpc.max_send_message_length", 1 << 26),
    ("grpc.max_receive_message_length", 1 << 28),
    ("grpc.use_local_subchannel_pool", 1),
]
GRPCURL = ROOT / ".venv" / "bin" / "grpcurl"
SERVING = health_pb2.HealthCheckResponse.SERVING


def big_jpeg() -> bytes:
    """A 3000x2000 JPEG of a shared photo (about 1 MB): large enough that buffering shows."""
    image = cv2.imread(str(IMAGES / "coffee.png"), cv2.IMREAD_COLOR)
    resized = cv2.resize(image, (3000, 2000), interpolation=cv2.INTER_LINEAR)
    return cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def hd_jpeg() -> bytes:
    """The bench's 1080p JPEG: a mosaic of real photos at their own scale (bench/photos.py)."""
    return photos.jpeg(photos.mosaic(photos.photos(IMAGES), 1920, 1080))


def polite_image() -> bytes:
    return cv2.imencode(".jpg", cv2.imread(str(IMAGES / "chelsea.png")))[1].tobytes()


def base64_image(image: bytes) -> str:
    """The image as proto JSON spells bytes, for the HTTP side."""
    return base64.b64encode(image).decode("ascii")


def polite_call(target: str, image: bytes, patience_s: float) -> float:
    """Seconds until a polite client, backing off on RESOURCE_EXHAUSTED, was served."""
    start, deadline = time.monotonic(), time.monotonic() + patience_s
    with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        while True:
            try:
                stub.SegmentImage(pb.SegmentImageRequest(image=image), timeout=30)
                return time.monotonic() - start
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@dataclass
class Watch:
    """The gateway's RSS and health, sampled on a connection of their own until stopped."""

    target: str
    pid: int
    rss: list[float] = field(default_factory=list)
    not_serving: int = 0  # samples whose health check was not SERVING (or failed)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with grpc.insecure_channel(self.target, options=SEND_OPTIONS) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not self._stop.is_set():
                self.rss.append(rss_mb(self.pid))
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=2).status != SERVING:
                        self.not_serving += 1
                except grpc.RpcError:
                    self.not_serving += 1
                self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def watching(target: str, pid: int) -> Iterator[Watch]:
    watch = Watch(target, pid)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch.stop()
        thread.join(10)


def unary_latencies(target: str, image: bytes, calls: int, deadline_s: float) -> list[tuple[str, float]]:
    """(code, seconds) of `calls` SegmentImage calls one after the other, on a connection of their own."""
    found = []
    with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        request = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE)
        for _ in range(calls):
            start = time.monotonic()
            try:
                stub.SegmentImage(request, timeout=deadline_s)
                found.append(("OK", time.monotonic() - start))
            except grpc.RpcError as error:
                found.append((error.code().name, time.monotonic() - start))
    return found


def timed(work: Callable[[], object]) -> float:
    start = time.monotonic()
    work()
    return round(time.monotonic() - start, 3)


def _reflection_list(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=30)
    next(answers)
    answers.cancel()


def _probes(channel: grpc.Channel) -> None:
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)


def _list_models(channel: grpc.Channel) -> None:
    pb_grpc.SegmentationServiceStub(channel).ListModels(pb.ListModelsRequest(), timeout=30)


PROBE_SAMPLES = 5


def discovery(target: str, open_channel: grpc.Channel) -> dict[str, float]:
    """Seconds a client waits: a new one, each on a connection of its own (grpcurl's reflection list and describe,
    its process start included; a reflection, a health check, a ListModels call), and one on a connection opened
    before the load (the same three calls)."""

    def grpcurl(*args: str) -> None:
        subprocess.run([str(GRPCURL), "-plaintext", "-max-time", "30", target, *args], check=True, capture_output=True)

    def fresh(call: Callable[[grpc.Channel], None]) -> Callable[[], None]:
        def run() -> None:
            with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
                call(channel)

        return run

    figures = {
        "reflection_list_s": timed(lambda: grpcurl("list")),
        "reflection_describe_s": timed(lambda: grpcurl("describe", "segmentation.v1.SegmentImageRequest")),
    }
    probes = {
        "reflection_rpc": fresh(_reflection_list),
        "health": fresh(_probes),
        "list_models": fresh(_list_models),
        "open_connection_reflection_rpc": lambda: _reflection_list(open_channel),
        "open_connection_health": lambda: _probes(open_channel),
        "open_connection_list_models": lambda: _list_models(open_channel),
    }
    # Each probe PROBE_SAMPLES times, taking turns: the median is what a probe waits, the longest what one
    # unlucky probe waited (a machine's own hiccup, or the load when it is seconds).
    samples: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(PROBE_SAMPLES):
        for name, probe in probes.items():
            samples[name].append(timed(probe))
    for name, seconds in samples.items():
        figures[f"{name}_s"] = round(statistics.median(seconds), 3)
        figures[f"{name}_max_s"] = max(seconds)
    return figures


def polite_figures(target: str, image: bytes, unloaded_s: float) -> dict[str, object]:
    """A polite unary client's 20 calls under the load, against its unloaded latency."""
    calls = unary_latencies(target, image, 20, deadline_s=15)
    latencies = sorted(seconds for _, seconds in calls)
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    return {
        "polite_unloaded_s": round(unloaded_s, 3),
        "polite_codes": {code: sum(1 for c, _ in calls if c == code) for code in dict.fromkeys(c for c, _ in calls)},
        "polite_p50_s": round(statistics.median(latencies), 3),
        "polite_p90_s": round(p90, 3),
        "polite_p90_bound_s": round(max(1.0, 5 * unloaded_s), 3),
    }


def never_reading(
    target: str, pid: int, streams: int, connections: int, items: int = 20
) -> tuple[list[grpc.Channel], list[object]]:
    """Streams that send `items` 1080p JPEGs each and never read, spread over `connections` connections."""
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=hd_jpeg()))
    channels = [grpc.insecure_channel(target, options=SEND_OPTIONS) for _ in range(connections)]
    stubs = [pb_grpc.SegmentationServiceStub(channel) for channel in channels]
    calls = [stubs[i % connections].SegmentImageStream(iter([item] * items), timeout=120) for i in range(streams)]
    return channels, calls


def let_go(channels: list[grpc.Channel], calls: list) -> None:  # type: ignore[type-arg]
    for call in calls:
        call.cancel()
    for channel in channels:
        channel.close()


def unloaded(target: str) -> float:
    """The polite client's median latency with nothing else running (after a first call that warms up)."""
    calls = unary_latencies(target, polite_image(), 6, deadline_s=30)[1:]
    return statistics.median(seconds for _, seconds in calls)


def run_never_reading(target: str, pid: int, streams: int, connections: int, seconds: float) -> dict[str, object]:
    quiet = unloaded(target)
    with watching(target, pid) as watch, grpc.insecure_channel(target, options=SEND_OPTIONS) as open_channel:
        _probes(open_channel)
        channels, calls = never_reading(target, pid, streams, connections)
        time.sleep(min(seconds, 5))  # the streams' images fill what they can
        found = {**discovery(target, open_channel), **polite_figures(target, polite_image(), quiet)}
        let_go(channels, calls)
    return {
        "streams": streams,
        "connections": connections,
        **found,
        "rss_peak_mb": round(max(watch.rss)),
        "not_serving_samples": watch.not_serving,
    }


def run_storm(target: str, pid: int, streams: int, connections: int, seconds: float) -> dict[str, object]:
    quiet = unloaded(target)
    with watching(target, pid) as watch, grpc.insecure_channel(target, options=SEND_OPTIONS) as open_channel:
        _probes(open_channel)
        channels, calls = never_reading(target, pid, streams, connections)
        with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            request = pb.SegmentImageRequest(image=hd_jpeg())
            for future in [stub.SegmentImage.future(request, timeout=60) for _ in range(1000)]:
                future.cancel()
        time.sleep(min(seconds, 5))
        found = {**discovery(target, open_channel), **polite_figures(target, polite_image(), quiet)}
        let_go(channels, calls)
    return {
        "streams": streams,
        "connections": connections,
        "cancelled_calls": 1000,
        **found,
        "rss_peak_mb": round(max(watch.rss)),
        "not_serving_samples": watch.not_serving,
    }


CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _send_hostile(target: str, samples: list[hostile.Sample], on_stream: bool, stop_at: float) -> list[tuple[str, str]]:
    """(file, code) of every answer to the hostile files, sent in turn until `stop_at`, on a stream or one call each."""
    answers: list[tuple[str, str]] = []
    with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        if on_stream:
            sent: list[str] = []

            def items() -> Iterator[pb.SegmentImageStreamRequest]:
                for sample in itertools.cycle(samples):
                    if time.monotonic() > stop_at:
                        return
                    sent.append(sample.name)
                    yield pb.SegmentImageStreamRequest(request=sample.request())

            for answer in stub.SegmentImageStream(items(), timeout=max(1.0, stop_at - time.monotonic()) + 30):
                code = "OK" if answer.HasField("result") else CODE_NAMES.get(answer.error.code, str(answer.error.code))
                answers.append((sent[answer.index], code))
            return answers
        for sample in itertools.cycle(samples):
            if time.monotonic() > stop_at:
                return answers
            try:
                stub.SegmentImage(sample.request(), timeout=30)
                answers.append((sample.name, "OK"))
            except grpc.RpcError as error:
                answers.append((sample.name, error.code().name))
    return answers


def run_hostile(target: str, pid: int, streams: int, connections: int, seconds: float) -> dict[str, object]:
    samples = hostile.samples(cv2.imread(str(IMAGES / "chelsea.png"), cv2.IMREAD_COLOR))
    allowed = {sample.name: sample.codes for sample in samples}
    quiet = unloaded(target)
    stop_at = time.monotonic() + seconds
    answers: list[list[tuple[str, str]]] = [[] for _ in range(streams)]

    def client(slot: int) -> None:
        answers[slot] = _send_hostile(target, samples, slot % 2 == 0, stop_at)

    with watching(target, pid) as watch, grpc.insecure_channel(target, options=SEND_OPTIONS) as open_channel:
        _probes(open_channel)
        threads = [threading.Thread(target=client, args=(slot,)) for slot in range(streams)]
        for thread in threads:
            thread.start()
        found = {**discovery(target, open_channel), **polite_figures(target, polite_image(), quiet)}
        for thread in threads:
            thread.join(seconds + 60)
    every = [answer for client_answers in answers for answer in client_answers]
    unexpected = [f"{name}: {code}" for name, code in every if code not in allowed[name]]
    return {
        "clients": streams,
        "files": sorted(allowed),
        "answers": len(every),
        "codes": {code: sum(1 for _, c in every if c == code) for code in sorted({c for _, c in every})},
        "unexpected": len(unexpected),
        "unexpected_examples": unexpected[:5],
        **found,
        "rss_peak_mb": round(max(watch.rss)),
        "not_serving_samples": watch.not_serving,
    }


def jain(shares: list[float]) -> float:
    """Jain's fairness index: 1 when every share is equal, 1/n when one takes all."""
    return sum(shares) ** 2 / (len(shares) * sum(s * s for s in shares)) if any(shares) else 0.0


def _stream_images(
    target: str, image: bytes, stop_at: float, *, served: list[int], lock: threading.Lock, items: int = 400
) -> None:
    """A stream that pipelines `items` images and reads its answers, counting them in served[0], until `stop_at`."""
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE))
    with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
        call = pb_grpc.SegmentationServiceStub(channel).SegmentImageStream(iter([item] * items), timeout=120)
        for answer in call:
            if time.monotonic() > stop_at:
                call.cancel()
                return
            if answer.HasField("result"):
                with lock:
                    served[0] += 1


def run_batch(target: str, pid: int, streams: int, connections: int, seconds: float) -> dict[str, object]:
    image = hd_jpeg()
    stop_at = time.monotonic() + seconds
    served = [0] * 5  # the stream's images, then each unary client's
    lock = threading.Lock()

    def unary(slot: int) -> None:
        request = pb.SegmentImageRequest(image=image, mask_format=pb.MASK_FORMAT_RLE)
        with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            while time.monotonic() < stop_at:
                try:
                    stub.SegmentImage(request, timeout=max(0.1, stop_at - time.monotonic()))
                except grpc.RpcError:
                    continue
                with lock:
                    served[slot] += 1

    with watching(target, pid) as watch:
        stream = threading.Thread(
            target=_stream_images, args=(target, image, stop_at), kwargs={"served": served, "lock": lock}
        )
        threads = [stream]
        threads += [threading.Thread(target=unary, args=(i,)) for i in range(1, 5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 60)
        # Then the stream alone: with nobody else wanting the capacity, it should have all of it.
        alone, alone_s = [0], seconds / 2
        _stream_images(target, image, time.monotonic() + alone_s, served=alone, lock=lock)
    total = sum(served)
    shares = [count / total if total else 0.0 for count in served]
    return {
        "seconds": seconds,
        "images_served": {"stream": served[0], "unary": served[1:]},
        "share_of_an_equal_share": [round(share * 5, 3) for share in shares],
        "unary_min_share_of_equal": round(min(shares[1:]) * 5, 3),
        "jain_index": round(jain(shares), 3),
        "images_per_s_all_five": round(total / seconds, 2),
        "images_per_s_stream_alone": round(alone[0] / alone_s, 2),
        "rss_peak_mb": round(max(watch.rss)),
        "not_serving_samples": watch.not_serving,
    }


def run_overlays(target: str, pid: int, streams: int, connections: int, seconds: float) -> dict[str, object]:
    image = big_jpeg()
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=image, include_overlay=True))
    channels = [grpc.insecure_channel(target, options=SEND_OPTIONS) for _ in range(connections)]
    stubs = [pb_grpc.SegmentationServiceStub(channel) for channel in channels]
    idle = rss_mb(pid)
    calls = [
        stubs[i % connections].SegmentImageStream(iter([item] * ITEMS_PER_STREAM), timeout=120) for i in range(streams)
    ]
    rss = []
    for _ in range(int(seconds)):
        time.sleep(1)
        rss.append(round(rss_mb(pid)))
    with grpc.insecure_channel(target, options=SEND_OPTIONS) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    polite_s = polite_call(target, polite_image(), 120)
    let_go(channels, calls)
    return {
        "streams": streams,
        "connections": connections,
        "image_bytes": len(image),
        "rss_idle_mb": round(idle),
        "rss_mb_each_second": rss,
        "rss_peak_mb": max(rss),
        "serving": status == SERVING,
        "polite_client_served_after_s": round(polite_s, 2),
    }


# shape -> (run, default streams, default connections, default seconds)
SHAPES: dict[str, tuple[Callable[..., dict[str, object]], int, int, float]] = {
    "overlays": (run_overlays, 30, 1, 20),
    "never-reading": (run_never_reading, 40, 1, 5),
    "batch": (run_batch, 1, 5, 15),
    "storm": (run_storm, 120, 4, 5),
    "hostile": (run_hostile, 8, 8, 10),
}


@contextmanager
def gateway_and_model(model_base: str | None, flags: list[str]) -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        base = model_base or str(export(pathlib.Path(tmp), "deeplab"))
        modelserver = start_modelserver("--model_name=deeplab", f"--model_base_path={base}")
        gateway = start_gateway(f"--backend={modelserver.target}", f"--labels={LABELS}", f"--profile={PROFILE}", *flags)
        try:
            yield gateway
        finally:
            gateway.stop()
            modelserver.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__)
    parser.add_argument("--shape", choices=tuple(SHAPES), default="overlays")
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--connections", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--model-base", default=None, help="an exported servable (default: export one now)")
    args, gateway_flags = parser.parse_known_args()
    run, streams, connections, seconds = SHAPES[args.shape]
    with gateway_and_model(args.model_base, gateway_flags) as gateway:
        figures = run(
            gateway.target,
            gateway.process.pid,
            args.streams or streams,
            args.connections or connections,
            args.seconds or seconds,
        )
    print(json.dumps({"shape": args.shape, "gateway_flags": gateway_flags, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
