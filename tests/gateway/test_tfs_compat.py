"""The TF Serving subset in protos/tfs_subset is wire-compatible with the official tensorflow-serving-api.

The official side runs in another process (the two cannot share a protobuf descriptor pool); this process only
imports the subset stubs. Messages cross as bytes, and must survive both directions byte for byte.
"""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from google.protobuf import symbol_database

from tests.paths import IMAGES, TF_SIDE
from tfs_subset.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tfs_subset.tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tfs_subset.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    status_pb2,
)

_ = (model_service_pb2, prediction_service_pb2)  # imported to register the services for describe()


def _official(command: str, *args: str, stdin: str | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, str(TF_SIDE / "official_tfs.py"), command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _tensor(array: np.ndarray, dtype: int) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_content=np.ascontiguousarray(array).tobytes())
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


def _spec(version: int | None = None, label: str | None = None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name="deeplab", signature_name="serving_default")
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    return spec


def _shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    shape = tensor_shape_pb2.TensorShapeProto()
    for size in dims:
        shape.dim.add(size=size)
    return shape


def _build_subset(image: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    """The same messages as official_tfs.build, written with the subset stubs only."""
    messages: dict[str, object] = {}
    request = predict_pb2.PredictRequest(model_spec=_spec(version=3), output_filter=["SemanticPredictions"])
    request.inputs["ImageTensor"].CopyFrom(_tensor(image, types_pb2.DT_UINT8))
    messages["predict_request"] = request

    labelled = predict_pb2.PredictRequest(model_spec=_spec(label="stable"))
    labelled.inputs["ImageTensor"].CopyFrom(_tensor(image, types_pb2.DT_UINT8))
    messages["predict_request_label"] = labelled

    response = predict_pb2.PredictResponse(model_spec=_spec(version=3))
    response.outputs["SemanticPredictions"].CopyFrom(_tensor(mask, types_pb2.DT_INT64))
    messages["predict_response_int64"] = response

    typed = predict_pb2.PredictResponse(model_spec=_spec(version=3))
    out = typed.outputs["SemanticPredictions"]
    out.dtype = types_pb2.DT_INT32
    out.tensor_shape.CopyFrom(_shape(*mask.shape))
    out.int_val.extend(mask.astype(np.int32).ravel().tolist())
    messages["predict_response_int_val"] = typed

    messages["metadata_request"] = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=_spec(), metadata_field=["signature_def"]
    )
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["ImageTensor"].CopyFrom(
        meta_graph_pb2.TensorInfo(name="ImageTensor:0", dtype=types_pb2.DT_UINT8, tensor_shape=_shape(1, -1, -1, 3))
    )
    signature.outputs["SemanticPredictions"].CopyFrom(
        meta_graph_pb2.TensorInfo(
            name="SemanticPredictions:0", dtype=types_pb2.DT_INT64, tensor_shape=_shape(1, -1, -1)
        )
    )
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature_map.signature_def["serving_default"].CopyFrom(signature)
    metadata = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(version=3))
    metadata.metadata["signature_def"].Pack(signature_map)
    messages["metadata_response"] = metadata

    messages["status_request"] = get_model_status_pb2.GetModelStatusRequest(model_spec=_spec())
    status = get_model_status_pb2.GetModelStatusResponse()
    status.model_version_status.add(
        version=3,
        state=get_model_status_pb2.ModelVersionStatus.AVAILABLE,
        status=status_pb2.StatusProto(error_code=error_codes_pb2.OK),
    )
    status.model_version_status.add(
        version=2,
        state=get_model_status_pb2.ModelVersionStatus.END,
        status=status_pb2.StatusProto(error_code=error_codes_pb2.NOT_FOUND, error_message="gone"),
    )
    messages["status_response"] = status
    return messages


def _serialize(messages: dict[str, object]) -> dict[str, dict[str, str]]:
    return {
        name: {
            "type": msg.DESCRIPTOR.full_name,  # type: ignore[attr-defined]
            "bytes": base64.b64encode(msg.SerializeToString(deterministic=True)).decode(),  # type: ignore[attr-defined]
        }
        for name, msg in messages.items()
    }


@pytest.fixture(scope="module")
def arrays(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, np.ndarray, np.ndarray]:
    directory = tmp_path_factory.mktemp("compat")
    bgr = cv2.imread(str(IMAGES / "chelsea.png"), cv2.IMREAD_COLOR)
    image = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[np.newaxis])
    # A mask with every class id and a few large ids, so both small and multi-byte varints are covered.
    mask = (np.arange(image.shape[1] * image.shape[2], dtype=np.int64) % 21).reshape(1, *image.shape[1:3])
    mask[0, 0, :5] = [0, 255, 1 << 20, 15, 8]
    np.save(directory / "image.npy", image)
    np.save(directory / "mask.npy", mask)
    return directory, image, mask


@pytest.fixture(scope="module")
def official_messages(arrays: tuple[pathlib.Path, np.ndarray, np.ndarray]) -> dict[str, dict[str, str]]:
    return _official("emit", str(arrays[0]))


def test_subset_builds_the_same_bytes_as_the_official_package(arrays, official_messages) -> None:
    _, image, mask = arrays
    ours = _serialize(_build_subset(image, mask))
    assert ours.keys() == official_messages.keys()
    for name, item in ours.items():
        assert item == official_messages[name], f"{name} differs from the official encoding"


def test_official_bytes_parse_and_reserialise_unchanged_with_the_subset(arrays, official_messages) -> None:
    _, image, mask = arrays
    database = symbol_database.Default()
    for name, item in official_messages.items():
        raw = base64.b64decode(item["bytes"])
        message = database.GetSymbol(item["type"]).FromString(raw)
        assert message.SerializeToString(deterministic=True) == raw, name
    request = predict_pb2.PredictRequest.FromString(base64.b64decode(official_messages["predict_request"]["bytes"]))
    tensor = request.inputs["ImageTensor"]
    assert tensor.dtype == types_pb2.DT_UINT8
    assert [d.size for d in tensor.tensor_shape.dim] == list(image.shape)
    assert np.array_equal(np.frombuffer(tensor.tensor_content, np.uint8).reshape(image.shape), image)
    response = predict_pb2.PredictResponse.FromString(
        base64.b64decode(official_messages["predict_response_int64"]["bytes"])
    )
    out = response.outputs["SemanticPredictions"]
    assert out.dtype == types_pb2.DT_INT64
    assert np.array_equal(np.frombuffer(out.tensor_content, "<i8").reshape(mask.shape), mask)
    metadata = get_model_metadata_pb2.GetModelMetadataResponse.FromString(
        base64.b64decode(official_messages["metadata_response"]["bytes"])
    )
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert metadata.metadata["signature_def"].Unpack(signature_map)
    assert signature_map.signature_def["serving_default"].inputs["ImageTensor"].dtype == types_pb2.DT_UINT8


def test_subset_bytes_parse_and_reserialise_unchanged_with_the_official_package(arrays) -> None:
    _, image, mask = arrays
    ours = _serialize(_build_subset(image, mask))
    assert _official("roundtrip", stdin=json.dumps(ours)) == ours


def test_official_fields_unknown_to_the_subset_survive_a_round_trip(arrays) -> None:
    # A newer server may send fields the subset leaves out; a proxy must not drop them.
    request = predict_pb2.PredictRequest(model_spec=_spec(version=1))
    raw = request.SerializeToString() + bytes([0x32, 0x03]) + b"abc"  # field 6 (client_id), length 3
    assert predict_pb2.PredictRequest.FromString(raw).SerializeToString() == raw


def test_every_subset_field_and_method_matches_the_official_descriptor() -> None:
    pool = symbol_database.Default().pool
    files = [
        "tfs_subset/tensorflow/core/framework/types.proto",
        "tfs_subset/tensorflow/core/framework/tensor_shape.proto",
        "tfs_subset/tensorflow/core/framework/tensor.proto",
        "tfs_subset/tensorflow/core/protobuf/meta_graph.proto",
        "tfs_subset/tensorflow/core/protobuf/error_codes.proto",
        "tfs_subset/tensorflow_serving/apis/model.proto",
        "tfs_subset/tensorflow_serving/apis/predict.proto",
        "tfs_subset/tensorflow_serving/apis/get_model_metadata.proto",
        "tfs_subset/tensorflow_serving/apis/status.proto",
        "tfs_subset/tensorflow_serving/apis/get_model_status.proto",
        "tfs_subset/tensorflow_serving/apis/prediction_service.proto",
        "tfs_subset/tensorflow_serving/apis/model_service.proto",
    ]
    ours: dict[str, object] = {}

    def add_message(desc) -> None:  # type: ignore[no-untyped-def]
        if desc.GetOptions().map_entry:
            return
        ours[desc.full_name] = {
            f.name: [
                f.number,
                f.type,
                f.is_repeated,
                f.message_type.full_name if f.message_type else (f.enum_type.full_name if f.enum_type else ""),
                f.json_name,
            ]
            for f in desc.fields
        }
        for nested in desc.nested_types:
            add_message(nested)
        for enum in desc.enum_types:
            ours[enum.full_name] = {v.name: v.number for v in enum.values}

    for name in files:
        file = pool.FindFileByName(name)
        for desc in file.message_types_by_name.values():
            add_message(desc)
        for enum in file.enum_types_by_name.values():
            ours[enum.full_name] = {v.name: v.number for v in enum.values}
        for service in file.services_by_name.values():
            for method in service.methods:
                ours[f"{service.full_name}/{method.name}"] = [
                    method.input_type.full_name,
                    method.output_type.full_name,
                ]
    official = _official("describe", stdin=json.dumps(sorted(ours)))
    for name, value in ours.items():
        if isinstance(value, dict):
            for member, spec in value.items():
                assert official[name].get(member) == spec, (
                    f"{name}.{member}: ours {spec}, official {official[name].get(member)}"
                )
        else:
            assert official[name] == value, name
    assert "tensorflow.serving.PredictionService/Predict" in ours
    assert "tensorflow.serving.ModelService/GetModelStatus" in ours
