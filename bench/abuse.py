"""python -m bench.abuse [--streams 30] [--connections 1] [--seconds 20] [--model-base DIR] [GATEWAY FLAG ...]

What clients that never read their answers can make the gateway hold. Starts modelserver and the gateway (default
limits, plus any gateway flags given after the options) on loopback; opens STREAMS SegmentImageStream calls spread
over CONNECTIONS connections, each sending fifty 1 MB JPEGs (3000x2000) that ask for overlays and never reading an
answer; samples the gateway's RSS every second for SECONDS; then checks that health still says SERVING and that a
polite client (retrying RESOURCE_EXHAUSTED with backoff) is served. Prints one JSON line. The figures are in
RELIABILITY.md; tests/gateway/test_abuse.py runs a smaller case in `make test`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import cv2
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.__main__ import IMAGES, LABELS, export
from deploy.local import rss_mb, start_gateway, start_modelserver
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

ITEMS_PER_STREAM = 50


def big_jpeg() -> bytes:
    """A 3000x2000 JPEG of a shared photo (about 1 MB): large enough that buffering shows."""
    image = cv2.imread(str(IMAGES / "coffee.png"), cv2.IMREAD_COLOR)
    resized = cv2.resize(image, (3000, 2000), interpolation=cv2.INTER_LINEAR)
    return cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def polite_call(target: str, image: bytes, patience_s: float) -> float:
    """Seconds until a polite client, backing off on RESOURCE_EXHAUSTED, was served."""
    start, deadline = time.monotonic(), time.monotonic() + patience_s
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        while True:
            try:
                stub.SegmentImage(pb.SegmentImageRequest(image=image), timeout=30)
                return time.monotonic() - start
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def run(target: str, pid: int, streams: int, connections: int, seconds: float) -> dict[str, object]:
    image = big_jpeg()
    item = pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=image, include_overlay=True))
    options = [("grpc.max_send_message_length", 1 << 26)]
    channels = [grpc.insecure_channel(target, options=options) for _ in range(connections)]
    stubs = [pb_grpc.SegmentationServiceStub(channel) for channel in channels]
    idle = rss_mb(pid)
    calls = [
        stubs[i % connections].SegmentImageStream(iter([item] * ITEMS_PER_STREAM), timeout=120) for i in range(streams)
    ]
    rss = []
    for _ in range(int(seconds)):
        time.sleep(1)
        rss.append(round(rss_mb(pid)))
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    polite_s = polite_call(target, cv2.imencode(".jpg", cv2.imread(str(IMAGES / "chelsea.png")))[1].tobytes(), 120)
    for call in calls:
        call.cancel()
    for channel in channels:
        channel.close()
    return {
        "streams": streams,
        "connections": connections,
        "image_bytes": len(image),
        "rss_idle_mb": round(idle),
        "rss_mb_each_second": rss,
        "rss_peak_mb": max(rss),
        "serving": status == health_pb2.HealthCheckResponse.SERVING,
        "polite_client_served_after_s": round(polite_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__)
    parser.add_argument("--streams", type=int, default=30)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--model-base", default=None, help="an exported servable (default: export one now)")
    args, gateway_flags = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        base = args.model_base or str(export(pathlib.Path(tmp), "deeplab"))
        modelserver = start_modelserver("--model_name=deeplab", f"--model_base_path={base}")
        gateway = start_gateway(f"--backend={modelserver.target}", f"--labels={LABELS}", *gateway_flags)
        try:
            figures = run(gateway.target, gateway.process.pid, args.streams, args.connections, args.seconds)
        finally:
            gateway.stop()
            modelserver.stop()
    print(json.dumps({"gateway_flags": gateway_flags, **figures}))
    return 0 if figures["serving"] else 1


if __name__ == "__main__":
    sys.exit(main())
