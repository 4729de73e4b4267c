"""A load generator process: scenarios, one image, each concurrency in turn, interleaved in short rounds.

    python -m bench.load --scenarios floor,gateway-png,gateway-rle --gateway HOST:PORT --model HOST:PORT \
        --image PATH --concurrency 1,4,8 --seconds 5 [--rounds 5] [--profile deeplab-257] [--watch-pid PID]

prints one JSON line: a result per scenario and concurrency. The scenarios take turns in --rounds short phases,
so that the drift of a noisy machine falls on all of them alike. With --watch-pid, that process's CPU time
(the gateway's; --transformer-pid: the KServe transformer's, for its scenario) is read from /proc around each phase.

Scenarios:
  gateway-png, gateway-rle  SegmentImage with the JPEG bytes; mask at the original size (options after the format:
                            `model`, the mask at the model's size; `overlay`; or another model of the gateway's by its
                            suffix, e.g. gateway-rle-fast for the model deeplab-fast).
  floor                     Predict straight to the model server with the request the gateway sends for this image
                            with --profile (the gateway's built-in profile), made beforehand (untimed): the model's
                            own cost plus transport.
  ingraph, ingraph-exact    The JPEG bytes to TF Serving's serving_bytes signature: decoded and resized in the graph,
                            a mask at the model's size; or decoded in the graph, the graph's own answer at full size.
  tfserving-rest, kserve    TF Serving's REST API with uint8 pixels; a KServe transformer in front of it.
  seed                      What the seed article's users do: decode the full-resolution image, build the tensor
                            with tf.make_tensor_proto, Predict at full resolution, tf.make_ndarray on the int64
                            mask. Needs TensorFlow, so it runs in a process of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import grpc
import numpy as np

from bench import pinning

MAX_MESSAGE = 1 << 30
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]
Call = Callable[[], Any]


def _gateway(target: str, data: bytes, variant: str) -> tuple[Call, int]:
    """gateway-FORMAT[-OPTION...]: FORMAT png or rle; options `model` (the mask at the model's size), `overlay`,
    or another of the gateway's models by its suffix (bench/run.py configures deeplab-u8, deeplab-257)."""
    from segmentation.v1 import segmentation_service_pb2 as pb  # noqa: PLC0415
    from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc  # noqa: PLC0415

    stub = pb_grpc.SegmentationServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    mask_format, *options = variant.split("-")
    fmt = pb.MASK_FORMAT_PNG if mask_format == "png" else pb.MASK_FORMAT_RLE
    request = pb.SegmentImageRequest(image=data, mask_format=fmt)
    for option in options:
        if option == "model":
            request.mask_size = pb.MASK_SIZE_MODEL
        elif option == "overlay":
            request.include_overlay = True
        else:
            request.model.name = f"deeplab-{option}"
    return (lambda: stub.SegmentImage(request, timeout=120)), request.ByteSize()


def _ingraph(target: str, data: bytes, model: str) -> tuple[Call, int]:
    """The TF-native peers: the JPEG bytes straight to TF Serving, decoded (and resized) and segmented in the graph
    (the exporter's --bytes-signature): `deeplab-u8` answers a uint8 mask at the model's size, `deeplab-exact` the
    graph's own answer at the image's size (--bytes-signature-size full)."""
    from tfs_subset.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: PLC0415
    from tfs_subset.tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: PLC0415

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_bytes"
    request.inputs["image_bytes"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]),
            string_val=[data],
        )
    )
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    return (lambda: stub.Predict(request, timeout=120)), request.ByteSize()


def _tensor(data: bytes, profile: str) -> tuple[np.ndarray, Any]:
    """The tensor the gateway sends for this image with the built-in `profile`, made with its own stages, and the
    profile's tensor names (an Interface)."""
    from service.config import ModelConfig  # noqa: PLC0415
    from service.image.resize import model_size, resize_to  # noqa: PLC0415
    from service.image.tensor import model_input  # noqa: PLC0415
    from service.profiles import BUILTIN_PROFILES  # noqa: PLC0415

    model = ModelConfig(profile=BUILTIN_PROFILES[profile])
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    tensor = model_input(resize_to(bgr, model_size(bgr.shape[1], bgr.shape[0], model.profile)), model.profile)
    return tensor, model.interface


def _floor(target: str, data: bytes, profile: str) -> tuple[Call, int]:
    """The request the gateway sends the model server for this image with the built-in `profile`, made beforehand
    with the gateway's own stages."""
    from service.backends import ModelSpec  # noqa: PLC0415
    from service.backends.tfserving import predict_request  # noqa: PLC0415
    from tfs_subset.tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: PLC0415

    tensor, interface = _tensor(data, profile)
    spec = ModelSpec("deeplab", interface.signature)
    request = predict_request(spec, interface.input_key, tensor, interface.output_keys)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    return (lambda: stub.Predict(request, timeout=120)), request.ByteSize()


def _triton_floor(target: str, data: bytes, profile: str) -> tuple[Call, int]:
    """The floor in front of Triton: the ModelInfer the gateway's kserve-v2 backend sends for this image, made
    beforehand with the gateway's own stages."""
    from oip_subset.inference import grpc_service_pb2_grpc as oip_grpc  # noqa: PLC0415
    from service.backends import ModelSpec  # noqa: PLC0415
    from service.backends.kserve_v2 import infer_request  # noqa: PLC0415

    tensor, interface = _tensor(data, profile)
    request = infer_request(ModelSpec("deeplab", ""), interface.input_key, tensor, interface.output_keys)
    stub = oip_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
    return (lambda: stub.ModelInfer(request, timeout=120)), request.ByteSize()


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


def make_call(scenario: str, targets: dict[str, str], data: bytes, profile: str) -> tuple[Call, int]:
    if scenario.startswith("gateway-"):
        return _gateway(targets["gateway"], data, scenario.removeprefix("gateway-"))
    if scenario == "floor":
        return _floor(targets["model"], data, profile)
    if scenario == "triton-floor":
        return _triton_floor(targets["triton"], data, profile)
    if scenario == "seed":
        return _seed(targets["model"], data)
    if scenario == "ingraph":
        return _ingraph(targets["model"], data, "deeplab-u8")
    if scenario == "ingraph-exact":
        return _ingraph(targets["model"], data, "deeplab-exact")
    if scenario == "tfserving-rest":
        from bench.peers import tfserving_rest_call  # noqa: PLC0415

        return tfserving_rest_call(targets["rest"], data, profile)
    if scenario == "kserve":
        from bench.peers import kserve_call  # noqa: PLC0415

        return kserve_call(targets["kserve"], data, profile)
    raise SystemExit(f"unknown scenario {scenario}")


def response_size(response: Any) -> int:
    """Bytes of an answer: a protobuf message's serialized size, or an HTTP body's length."""
    return response.ByteSize() if hasattr(response, "ByteSize") else len(response)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, from /proc (in clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and of the processes it started (Triton: tritonserver and its Python backend's stub
    under triton/serve.py); one gone meanwhile counts nothing."""
    total = 0.0
    for process in [pid, *pinning.descendants(pid)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += process_cpu_s(process)
    return total


class Cell:
    """What one scenario measured at one concurrency, over all its phases."""

    def __init__(self, scenario: str, concurrency: int, request_bytes: int, response_bytes: int) -> None:
        self.scenario = scenario
        self.concurrency = concurrency
        self.request_bytes = request_bytes
        self.response_bytes = response_bytes
        self.latencies: list[float] = []
        self.stages: list[dict[str, int]] = []
        self.errors: list[str] = []
        self.wall = 0.0
        self.client_cpu = 0.0
        self.server_cpu: float | None = None
        self.backend_cpu: float | None = None

    def result(self) -> dict:
        stages = self.stages
        return {
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "requests": len(self.latencies),
            "errors": self.errors,
            "wall_s": self.wall,
            "latencies_ms": self.latencies,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "client_cpu_s": self.client_cpu,
            "server_cpu_s": self.server_cpu,
            "backend_cpu_s": self.backend_cpu,
            "stages_us": {k: float(np.mean([s[k] for s in stages])) for k in stages[0]} if stages else {},
        }


def cpu_now() -> float:
    """This process's user and system CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase(call: Call, cell: Cell, seconds: float, watch_pid: int | None, backend_pid: int | None) -> None:
    """`cell.concurrency` callers call back to back for `seconds`; each makes at least one call."""
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def caller() -> None:
        done = 0
        while done < 1 or time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                response = call()
            except grpc.RpcError as exc:
                with lock:
                    cell.errors.append(f"{exc.code().name}: {exc.details()}")
                return
            except (OSError, ValueError) as exc:  # the HTTP peers
                with lock:
                    cell.errors.append(f"{type(exc).__name__}: {exc}")
                return
            elapsed_ms = (time.perf_counter() - start) * 1000
            with lock:
                cell.latencies.append(elapsed_ms)
                if hasattr(response, "timing"):
                    timing = response.timing
                    cell.stages.append({f.name: getattr(timing, f.name) for f in timing.DESCRIPTOR.fields})
            done += 1

    threads = [threading.Thread(target=caller) for _ in range(cell.concurrency)]
    cpu_before = cpu_now()
    watched_before = process_cpu_s(watch_pid) if watch_pid else 0.0
    backend_before = tree_cpu_s(backend_pid) if backend_pid else 0.0
    wall_start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cell.wall += time.perf_counter() - wall_start
    if watch_pid:
        cell.server_cpu = (cell.server_cpu or 0.0) + process_cpu_s(watch_pid) - watched_before
    if backend_pid:
        cell.backend_cpu = (cell.backend_cpu or 0.0) + tree_cpu_s(backend_pid) - backend_before
    cell.client_cpu += cpu_now() - cpu_before


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--scenarios", required=True)
    parser.add_argument("--gateway", default="")
    parser.add_argument("--model", default="")
    parser.add_argument("--image", required=True)
    parser.add_argument("--concurrency", default="1")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="deeplab-257", help="the gateway's built-in profile, for the peers")
    parser.add_argument("--rest", default="", help="the model server's REST API, http://HOST:PORT")
    parser.add_argument("--kserve", default="", help="the KServe transformer, http://HOST:PORT")
    parser.add_argument("--triton", default="", help="Triton's gRPC target, for triton-floor")
    parser.add_argument("--watch-pid", type=int, default=None, help="the gateway: its CPU per gateway call")
    parser.add_argument("--backend-pid", type=int, default=None, help="the model server: its CPU per call")
    parser.add_argument("--triton-pid", type=int, default=None, help="triton/serve.py: its processes' CPU per call")
    parser.add_argument("--transformer-pid", type=int, default=None, help="the KServe transformer: its CPU per call")
    args = parser.parse_args()
    targets = {
        "gateway": args.gateway,
        "model": args.model,
        "rest": args.rest,
        "kserve": args.kserve,
        "triton": args.triton,
    }
    with open(args.image, "rb") as file:
        data = file.read()
    calls = {}
    for scenario in args.scenarios.split(","):
        call, request_bytes = make_call(scenario, targets, data, args.profile)
        response_bytes = response_size(call())  # also the warm-up: connection, first inference at this size
        calls[scenario] = (call, request_bytes, response_bytes)
    results = []
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        cells = {name: Cell(name, concurrency, req, resp) for name, (_, req, resp) in calls.items()}
        for _ in range(args.rounds):
            for name, (call, _, _) in calls.items():
                # The front's CPU: the gateway's for its scenarios, the transformer's for KServe's.
                watch = args.watch_pid if name.startswith("gateway-") else None
                watch = args.transformer_pid if name == "kserve" else watch
                # The model server's CPU: modelserver's, or Triton's over its processes.
                backend = args.triton_pid if "triton" in name else args.backend_pid
                phase(call, cells[name], args.seconds / args.rounds, watch, backend)
        results += [cell.result() for cell in cells.values()]
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
