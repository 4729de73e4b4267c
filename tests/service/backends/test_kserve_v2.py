"""service/backends/kserve_v2.py: the Open Inference Protocol's packing and reading, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from oip_subset.inference import grpc_service_pb2 as pb
from service.backends import ModelSpec
from service.backends.kserve_v2 import InferPrediction, infer_request, output_array
from service.errors import BackendFailed, ModelNotFound

Output = pb.ModelInferResponse.InferOutputTensor


def test_a_request_carries_the_tensor_raw_with_its_datatype_shape_and_version() -> None:
    tensor = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    request = infer_request(ModelSpec("deeplab", "ignored", version=3), "image", tensor, ("ids", "scores"))
    assert (request.model_name, request.model_version) == ("deeplab", "3")
    (sent,) = request.inputs
    assert (sent.name, sent.datatype, list(sent.shape)) == ("image", "FP32", [2, 3, 4, 3])
    assert [o.name for o in request.outputs] == ["ids", "scores"]
    assert np.array_equal(np.frombuffer(request.raw_input_contents[0], "<f4").reshape(tensor.shape), tensor)
    uint8 = infer_request(ModelSpec("deeplab", ""), "ImageTensor", tensor.astype(np.uint8), ("ids",))
    assert uint8.model_version == "" and uint8.inputs[0].datatype == "UINT8"


def test_a_version_label_or_an_unsendable_dtype_is_refused_before_sending() -> None:
    tensor = np.zeros((1, 2, 2, 3), np.float32)
    with pytest.raises(ModelNotFound, match="no version labels; ask for a version number"):
        infer_request(ModelSpec("deeplab", "", version_label="stable"), "image", tensor, ("ids",))
    with pytest.raises(ValueError, match="use uint8 or float32"):
        infer_request(ModelSpec("deeplab", ""), "image", tensor.astype(np.float64), ("ids",))


def test_outputs_are_read_from_raw_bytes_or_typed_contents() -> None:
    ids = np.array([[[0, 8], [15, 8]]], np.int64)
    raw = Output(name="ids", datatype="INT64", shape=[1, 2, 2])
    assert np.array_equal(output_array(raw, ids.tobytes()), ids)
    typed = Output(name="ids", datatype="INT64", shape=[1, 2, 2])
    typed.contents.int64_contents.extend(ids.ravel().tolist())
    assert np.array_equal(output_array(typed, None), ids)
    scores = Output(name="scores", datatype="FP32", shape=[1, 1, 2])
    scores.contents.fp32_contents.extend([0.5, -1.0])
    assert output_array(scores, None).tolist() == [[[0.5, -1.0]]]


@pytest.mark.parametrize(
    ("tensor", "raw", "message"),
    [
        (Output(name="ids", datatype="BYTES", shape=[1]), b"x", "as BYTES; expected UINT8, INT32, INT64, FP32"),
        (Output(name="ids", datatype="INT64", shape=[1, -1]), b"", "of shape [1, -1]"),
        (Output(name="ids", datatype="INT64", shape=[1, 2]), b"\0" * 8, "holds 8 bytes; its shape says [1, 2]"),
        (Output(name="ids", datatype="INT32", shape=[3]), None, "holds 0 values; its shape says [3]"),
    ],
)
def test_unusable_outputs_are_backend_failures(tensor: Output, raw: bytes | None, message: str) -> None:
    with pytest.raises(BackendFailed, match=message.replace("[", r"\[")):
        output_array(tensor, raw)


def test_an_answer_names_its_version_and_outputs_by_name() -> None:
    ids, scores = np.zeros((1, 2, 2), np.int64), np.ones((1, 1, 1, 21), np.float32)
    response = pb.ModelInferResponse(
        model_version="4",
        outputs=[
            Output(name="scores", datatype="FP32", shape=[1, 1, 1, 21]),
            Output(name="ids", datatype="INT64", shape=[1, 2, 2]),
        ],
        raw_output_contents=[scores.tobytes(), ids.tobytes()],
    )
    prediction = InferPrediction(response, asked_version=None)
    assert prediction.version == 4
    assert np.array_equal(prediction.output("ids"), ids) and np.array_equal(prediction.output("scores"), scores)
    with pytest.raises(BackendFailed, match="no output 'other'"):
        prediction.output("other")
    assert InferPrediction(pb.ModelInferResponse(), asked_version=7).version == 7  # a server that names none
