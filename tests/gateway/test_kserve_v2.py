"""The `kserve-v2` backend against KServe's own model server (kserve 0.21 in bench/.venv-kserve), another
implementation of the protocol than Triton's, which names no model versions (tests/kserve_side/predictor.py: a
stand-in model, red is person)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from oip_subset.inference import grpc_service_pb2 as oip
from oip_subset.inference import grpc_service_pb2_grpc as oip_grpc
from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.config import Limits
from service.pipeline import prepare
from service.profiles import DEEPLAB_257
from tests import images
from tests.helpers import ServerProcess, free_port, start_gateway, wait_for, wait_for_health
from tests.paths import ROOT

KSERVE_PYTHON = ROOT / "bench" / ".venv-kserve" / "bin" / "python"
PERSON = 15


@pytest.fixture(scope="module")
def kserve() -> Iterator[str]:
    setup = subprocess.run(["bash", "bench/kserve/setup.sh"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert setup.returncode == 0, setup.stderr
    target = f"127.0.0.1:{free_port()}"
    command = [str(KSERVE_PYTHON), "tests/kserve_side/predictor.py", f"--grpc_port={target.rsplit(':')[1]}"]
    command += [f"--http_port={free_port()}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with grpc.insecure_channel(target) as channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)

            def ready() -> bool:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                try:
                    return stub.ModelReady(oip.ModelReadyRequest(name="deeplab"), timeout=1).ready
                except grpc.RpcError:
                    return False

            wait_for(ready, 90)
        yield target
    finally:
        process.terminate()
        assert process.wait(timeout=30) is not None
        if process.stdout:
            process.stdout.close()


@pytest.fixture(scope="module")
def gateway(kserve: str) -> Iterator[ServerProcess]:
    server = start_gateway(kserve, "--backend-kind=kserve-v2", "--profile=deeplab-257")
    wait_for_health(server.target, health_pb2.HealthCheckResponse.SERVING)
    yield server
    assert server.stop() == 0, server.output()


def test_kserve_s_answers_are_read_as_its_model_meant_them(gateway: ServerProcess) -> None:
    data = images.jpeg("astronaut.png")
    tensor = prepare(data, DEEPLAB_257, Limits(), None, None).tensor
    expected = np.where(tensor[0, ..., 0] > 127, PERSON, 0)
    with grpc.insecure_channel(gateway.target) as channel:
        stub = pb_grpc.SegmentationServiceStub(channel)
        request = pb.SegmentImageRequest(image=data, mask_format=pb.MASK_FORMAT_RAW, mask_size=pb.MASK_SIZE_MODEL)
        small = stub.SegmentImage(request, timeout=30)
        full = stub.SegmentImage(pb.SegmentImageRequest(image=data, mask_format=pb.MASK_FORMAT_RAW), timeout=30)
    mask = np.frombuffer(small.mask.data, np.uint8).reshape(small.mask.height, small.mask.width)
    assert 0.05 < (expected == PERSON).mean() < 0.95  # the stand-in model has something to find
    assert np.array_equal(mask, expected)
    assert small.model.version == 0 and small.model.signature_name == ""  # KServe names no versions
    assert (full.mask.width, full.mask.height) == (512, 512)
    person = {c.class_id: c.fraction for c in full.classes}[PERSON]
    assert abs(person - (expected == PERSON).mean()) < 0.02


def test_kserve_names_no_versions_and_answers_raw_requests_in_raw_bytes(kserve: str) -> None:
    """What the gateway meets there: a model without versions (Triton names its), raw answers to raw requests."""
    tensor = np.zeros((1, 4, 4, 3), np.float32)
    with grpc.insecure_channel(kserve) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        assert list(stub.ModelMetadata(oip.ModelMetadataRequest(name="deeplab"), timeout=10).versions) == []
        request = oip.ModelInferRequest(model_name="deeplab", raw_input_contents=[tensor.tobytes()])
        request.inputs.add(name="image", datatype="FP32", shape=tensor.shape)
        answer = stub.ModelInfer(request, timeout=10)
    assert [o.name for o in answer.outputs] == ["SemanticPredictions", "scores"]
    assert [len(raw) for raw in answer.raw_output_contents] == [16 * 8, 16 * 21 * 4]
