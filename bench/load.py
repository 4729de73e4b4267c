"""One load generator process: one scenario and one image, at each concurrency in turn, for a fixed time.

    python -m bench.load SCENARIO TARGET IMAGE CONCURRENCIES SECONDS INPUT_SIZE [WATCH_PID]

prints one JSON line: a result per concurrency in CONCURRENCIES ("1,4,8"). When WATCH_PID is given, that
process's CPU time (the gateway's) is read from /proc around each run.

Scenarios:
  gateway-png, gateway-rle  SegmentImage with the JPEG bytes; mask at the original size.
  floor                     Predict straight to the model server with a tensor the client resized beforehand
                            (untimed), at the gateway's input size: the model's own cost plus transport.
  seed                      What the seed article's users do: decode the full-resolution image, build the tensor
                            with tf.make_tensor_proto, Predict at full resolution, tf.make_ndarray on the int64
                            mask. Needs TensorFlow, so it runs in this process of its own.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import grpc
import numpy as np

MAX_MESSAGE = 1 << 30
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]
Call = Callable[[], Any]


def _gateway(target: str, data: bytes, mask_format: str) -> tuple[Call, int]:
    from segmentation.v1 import segmentation_service_pb2 as pb  # noqa: PLC0415
    from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc  # noqa: PLC0415

    stub = pb_grpc.SegmentationServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    fmt = pb.MASK_FORMAT_PNG if mask_format == "png" else pb.MASK_FORMAT_RLE
    request = pb.SegmentImageRequest(image=data, mask_format=fmt)
    return (lambda: stub.SegmentImage(request, timeout=120)), request.ByteSize()


def _floor(target: str, data: bytes, input_size: int) -> tuple[Call, int]:
    from service.config import ModelConfig  # noqa: PLC0415
    from service.pack import predict_request  # noqa: PLC0415
    from service.resize import resize_for_model  # noqa: PLC0415
    from tfs_subset.tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: PLC0415

    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    request = predict_request(resize_for_model(rgb, input_size), ModelConfig())
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    return (lambda: stub.Predict(request, timeout=120)), request.ByteSize()


def _seed(target: str, data: bytes) -> tuple[Call, int]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: PLC0415

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    sizes: list[int] = []

    def call() -> Any:
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "deeplab"
        request.model_spec.signature_name = "serving_default"
        request.inputs["ImageTensor"].CopyFrom(tf.make_tensor_proto(image[np.newaxis]))
        if not sizes:
            sizes.append(request.ByteSize())
        response = stub.Predict(request, timeout=300)
        mask = tf.make_ndarray(response.outputs["SemanticPredictions"])
        assert mask.shape[1:] == image.shape[:2]
        return response

    call()  # fills in the request size
    return call, sizes[0]


def make_call(scenario: str, target: str, data: bytes, input_size: int) -> tuple[Call, int]:
    if scenario.startswith("gateway-"):
        return _gateway(target, data, scenario.removeprefix("gateway-"))
    if scenario == "floor":
        return _floor(target, data, input_size)
    if scenario == "seed":
        return _seed(target, data)
    raise SystemExit(f"unknown scenario {scenario}")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, from /proc (in clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(call: Call, request_bytes: int, concurrency: int, seconds: float, watch_pid: int | None) -> dict:
    response_bytes = call().ByteSize()  # also the warm-up: connection, first inference at this size
    latencies: list[float] = []
    stages: list[dict[str, int]] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    min_calls = 2  # per caller, so that short runs still measure every concurrency level

    def caller() -> None:
        done = 0
        while done < min_calls or time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                response = call()
            except grpc.RpcError as exc:
                with lock:
                    errors.append(f"{exc.code().name}: {exc.details()}")
                return
            elapsed_ms = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed_ms)
                if hasattr(response, "timing"):
                    timing = response.timing
                    stages.append({f.name: getattr(timing, f.name) for f in timing.DESCRIPTOR.fields})
            done += 1

    threads = [threading.Thread(target=caller) for _ in range(concurrency)]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    watched_before = process_cpu_s(watch_pid) if watch_pid else 0.0
    wall_start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall_start
    watched = process_cpu_s(watch_pid) - watched_before if watch_pid else None
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "wall_s": wall,
        "latencies_ms": latencies,
        "request_bytes": request_bytes,
        "response_bytes": response_bytes,
        "client_cpu_s": client_cpu,
        "server_cpu_s": watched,
        "stages_us": {k: float(np.mean([s[k] for s in stages])) for k in stages[0]} if stages else {},
    }


def main() -> None:
    scenario, target, image, concurrencies, seconds, input_size = sys.argv[1:7]
    watch_pid = int(sys.argv[7]) if len(sys.argv) > 7 else None
    with open(image, "rb") as file:
        data = file.read()
    call, request_bytes = make_call(scenario, target, data, int(input_size))
    results = [
        {"scenario": scenario, **run(call, request_bytes, int(c), float(seconds), watch_pid)}
        for c in concurrencies.split(",")
    ]
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
