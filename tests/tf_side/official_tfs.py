"""The official TF Serving side of the compatibility test; run as a script, never imported by pytest.

emit DIR      builds the reference messages with the official package and prints them as JSON
              {name: {"type": full_name, "bytes": base64}}; DIR holds image.npy and mask.npy.
roundtrip     reads the same JSON on stdin, parses each with the official class, prints it re-serialised.
describe      prints the official descriptors (fields and methods) of the given full names, read on stdin.
"""

from __future__ import annotations

import base64
import json
import pathlib
import sys

import numpy as np
import tensorflow as tf
from google.protobuf import symbol_database
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    status_pb2,
)

MODULES = (
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
    meta_graph_pb2,
    error_codes_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    status_pb2,
)


def _spec(**kwargs: object) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name="deeplab", signature_name="serving_default")
    if "version" in kwargs:
        spec.version.value = int(kwargs["version"])  # type: ignore[arg-type]
    if "label" in kwargs:
        spec.version_label = str(kwargs["label"])
    return spec


def build(directory: pathlib.Path) -> dict[str, object]:
    image = np.load(directory / "image.npy")
    mask = np.load(directory / "mask.npy")
    messages: dict[str, object] = {}

    request = predict_pb2.PredictRequest(model_spec=_spec(version=3), output_filter=["SemanticPredictions"])
    request.inputs["ImageTensor"].CopyFrom(tf.make_tensor_proto(image))
    messages["predict_request"] = request

    labelled = predict_pb2.PredictRequest(model_spec=_spec(label="stable"))
    labelled.inputs["ImageTensor"].CopyFrom(tf.make_tensor_proto(image))
    messages["predict_request_label"] = labelled

    response = predict_pb2.PredictResponse(model_spec=_spec(version=3))
    response.outputs["SemanticPredictions"].CopyFrom(tf.make_tensor_proto(mask))
    messages["predict_response_int64"] = response

    # Servers may also answer with typed values instead of tensor_content.
    typed = predict_pb2.PredictResponse(model_spec=_spec(version=3))
    out = typed.outputs["SemanticPredictions"]
    out.dtype = types_pb2.DT_INT32
    out.tensor_shape.dim.add(size=mask.shape[0])
    out.tensor_shape.dim.add(size=mask.shape[1])
    out.tensor_shape.dim.add(size=mask.shape[2])
    out.int_val.extend(mask.astype(np.int32).ravel().tolist())
    messages["predict_response_int_val"] = typed

    messages["metadata_request"] = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=_spec(), metadata_field=["signature_def"]
    )
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["ImageTensor"].CopyFrom(
        meta_graph_pb2.TensorInfo(
            name="ImageTensor:0",
            dtype=types_pb2.DT_UINT8,
            tensor_shape=tf.TensorShape([1, None, None, 3]).as_proto(),
        )
    )
    signature.outputs["SemanticPredictions"].CopyFrom(
        meta_graph_pb2.TensorInfo(
            name="SemanticPredictions:0",
            dtype=types_pb2.DT_INT64,
            tensor_shape=tf.TensorShape([1, None, None]).as_proto(),
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


def _encode(messages: dict[str, object]) -> str:
    return json.dumps(
        {
            name: {
                "type": msg.DESCRIPTOR.full_name,  # type: ignore[attr-defined]
                "bytes": base64.b64encode(msg.SerializeToString(deterministic=True)).decode(),  # type: ignore[attr-defined]
            }
            for name, msg in messages.items()
        }
    )


def roundtrip(payload: dict[str, dict[str, str]]) -> dict[str, object]:
    database = symbol_database.Default()
    out: dict[str, object] = {}
    for name, item in payload.items():
        cls = database.GetSymbol(item["type"])
        out[name] = cls.FromString(base64.b64decode(item["bytes"]))
    return out


def describe(names: list[str]) -> dict[str, object]:
    database = symbol_database.Default()
    result: dict[str, object] = {}
    for name in names:
        if "/" in name:  # a method: "package.Service/Method"
            service_name, method_name = name.split("/")
            service = database.pool.FindServiceByName(service_name)
            method = service.methods_by_name[method_name]
            result[name] = [method.input_type.full_name, method.output_type.full_name]
            continue
        try:
            desc = database.pool.FindMessageTypeByName(name)
        except KeyError:
            enum = database.pool.FindEnumTypeByName(name)
            result[name] = {v.name: v.number for v in enum.values}
            continue
        result[name] = {
            f.name: [
                f.number,
                f.type,
                f.is_repeated,
                f.message_type.full_name if f.message_type else (f.enum_type.full_name if f.enum_type else ""),
                f.json_name,
            ]
            for f in desc.fields
        }
    return result


def main() -> None:
    command = sys.argv[1]
    if command == "emit":
        print(_encode(build(pathlib.Path(sys.argv[2]))))
    elif command == "roundtrip":
        print(_encode(roundtrip(json.load(sys.stdin))))
    elif command == "describe":
        print(json.dumps(describe(json.load(sys.stdin))))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
