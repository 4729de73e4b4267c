"""TF Serving's REST API on --rest_api_port: status, metadata, predict in the row and columnar formats, b64
strings, and TF Serving's JSON error bodies with its HTTP status for each code (see modelserver/rest.py)."""

from __future__ import annotations

import base64
import json
import pathlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf

from modelserver.http_server import HTTP_STATUS
from tests.helpers import copy_version
from tests.model.client import Client
from tests.model.processes import RestServer, start_with_rest
from tests.paths import CAT, IMAGES

OK_STATUS = {"error_code": "OK", "error_message": ""}


class Toy(tf.Module):
    """A model with string, float and two-input signatures, for what the DeepLab graph does not take."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def echo(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"length": tf.strings.length(text), "echo_bytes": text}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def half(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * 0.5}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="a"), tf.TensorSpec([None], tf.int64, name="b")])
    def add(self, a: tf.Tensor, b: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"sum": a + b}


@pytest.fixture(scope="module")
def rest(servable_base: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    root = tmp_path_factory.mktemp("rest")
    for version in (1, 2):
        copy_version(servable_base / "1", root / "deeplab" / str(version))
    toy = Toy()
    tf.saved_model.save(
        toy, str(root / "toy" / "1"), signatures={"serving_default": toy.echo, "half": toy.half, "add": toy.add}
    )
    config = root / "models.config"
    config.write_text(
        f"""
        model_config_list {{
          config {{
            name: "deeplab" base_path: "{root / "deeplab"}" model_platform: "tensorflow"
            model_version_policy {{ all {{}} }}
            version_labels {{ key: "stable" value: 1 }}
            version_labels {{ key: "canary" value: 2 }}
          }}
          config {{ name: "toy" base_path: "{root / "toy"}" model_platform: "tensorflow" }}
        }}
        """
    )
    server = start_with_rest(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models")
    yield server
    server.stop()


def _rgb(name: str, width: int | None = None) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(IMAGES / name)), cv2.COLOR_BGR2RGB)
    if width:
        image = cv2.resize(image, (width, width * image.shape[0] // image.shape[1]), interpolation=cv2.INTER_AREA)
    return image


def _grpc_mask(rest: RestServer, image: np.ndarray, **spec: object) -> np.ndarray:
    response = Client(rest.target).predict(image, **spec)  # type: ignore[arg-type]
    return tf.make_ndarray(response.outputs["SemanticPredictions"])


def _version(number: int) -> dict:
    return {"version": str(number), "state": "AVAILABLE", "status": OK_STATUS}


# -- status and metadata -----------------------------------------------------------------------------------------


def test_status_is_tf_servings_json(rest: RestServer) -> None:
    status, content_type, body = rest.request("GET", "/v1/models/deeplab")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"model_version_status": [_version(2), _version(1)]}
    assert body.startswith('{\n "model_version_status": [\n  {\n   "version": "2",')  # protobuf's JSON, indent 1


@pytest.mark.parametrize(
    ("path", "versions"),
    [
        ("/v1/models/deeplab/versions/1", [1]),
        # GetModelStatus ignores a label: every version (get_model_status_impl.cc:82-107).
        ("/v1/models/deeplab/labels/stable", [2, 1]),
        ("/V1/MODELS/deeplab", [2, 1]),  # the path patterns are case-insensitive
        ("/v1/models/toy", [1]),
    ],
)
def test_status_of_versions(rest: RestServer, path: str, versions: list[int]) -> None:
    assert rest.json("GET", path) == (200, {"model_version_status": [_version(v) for v in versions]})


def test_metadata_is_tf_servings_json(rest: RestServer) -> None:
    status, metadata = rest.json("GET", "/v1/models/deeplab/metadata")
    assert status == 200
    assert metadata["model_spec"] == {"name": "deeplab", "signature_name": "", "version": "2"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    image = signature["inputs"]["ImageTensor"]
    assert image["dtype"] == "DT_UINT8" and image["name"] == "ImageTensor:0"
    assert [d["size"] for d in image["tensor_shape"]["dim"]] == ["1", "-1", "-1", "3"]
    assert signature["outputs"]["SemanticPredictions"]["dtype"] == "DT_INT64"


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/models/deeplab/versions/1/metadata", "1"),
        ("/v1/models/deeplab/labels/stable/metadata", "1"),
        ("/v1/models/deeplab/labels/canary/metadata", "2"),
        ("/v1/models/deeplab/labels/st%61ble/metadata", "1"),  # name and label are percent-decoded
    ],
)
def test_metadata_of_a_version_or_label(rest: RestServer, path: str, version: str) -> None:
    status, metadata = rest.json("GET", path)
    assert status == 200 and metadata["model_spec"]["version"] == version


# -- predict -----------------------------------------------------------------------------------------------------


def test_row_format_predicts_the_cat_as_grpc_does(rest: RestServer) -> None:
    image = _rgb("chelsea.png")
    status, answer = rest.json("POST", "/v1/models/deeplab:predict", {"instances": [image.tolist()]})
    assert status == 200 and list(answer) == ["predictions"]
    mask = np.array(answer["predictions"])
    assert mask.shape == (1, *image.shape[:2])
    np.testing.assert_array_equal(mask, _grpc_mask(rest, image))
    assert float((mask == CAT).mean()) > 0.7


@pytest.mark.parametrize(
    ("path", "document", "key"),
    [
        ("/v1/models/deeplab:predict", lambda img: {"inputs": [img]}, "outputs"),
        ("/v1/models/deeplab:predict", lambda img: {"inputs": {"ImageTensor": [img]}}, "outputs"),
        (
            "/v1/models/deeplab:predict",
            lambda img: {"signature_name": "serving_default", "instances": [img]},
            "predictions",
        ),
        ("/v1/models/deeplab/versions/1:predict", lambda img: {"instances": [img]}, "predictions"),
        ("/v1/models/deeplab/labels/canary:predict", lambda img: {"instances": [img]}, "predictions"),
    ],
    ids=["columnar", "columnar-named", "signature-name", "version", "label"],
)
def test_predict_formats_versions_and_labels(rest: RestServer, path: str, document, key: str) -> None:  # type: ignore[no-untyped-def]
    image = _rgb("astronaut.png", width=64)
    status, answer = rest.json("POST", path, document(image.tolist()))
    assert status == 200 and list(answer) == [key]
    np.testing.assert_array_equal(np.array(answer[key]), _grpc_mask(rest, image))


def test_columnar_answers_are_pretty_printed_as_tf_serving_prints_them(rest: RestServer) -> None:
    body = {"signature_name": "half", "inputs": [[1.0, 2.0]]}
    status, _, text = rest.request("POST", "/v1/models/toy:predict", json.dumps(body))
    assert status == 200
    assert text == '{\n    "outputs": [\n        [\n            0.5,\n            1.0\n        ]\n    ]\n}'


def test_floats_are_written_as_tf_serving_writes_them(rest: RestServer) -> None:
    body = {"signature_name": "half", "instances": [[1.0, 2.0], [0.2, 3e-6], [2e-7, 1e7]]}
    status, _, text = rest.request("POST", "/v1/models/toy:predict", json.dumps(body))
    assert status == 200
    # %g when it reads back as the same float32, else 9 digits; '.0' on whole numbers; one line per item.
    assert text == '{\n    "predictions": [[0.5, 1.0], [0.1, 1.5e-06], [1e-07, 5e+06]\n    ]\n}'


def test_binary_strings_go_in_and_out_as_b64(rest: RestServer) -> None:
    values = [b"hello", b"\x00\xff\xfe"]
    encoded = [{"b64": base64.b64encode(v).decode()} for v in values]
    status, answer = rest.json("POST", "/v1/models/toy:predict", {"instances": encoded})
    assert status == 200
    # Outputs whose alias ends in "_bytes" are written as {"b64": ...}; several outputs make each row an object.
    assert answer == {
        "predictions": [{"echo_bytes": e, "length": len(v)} for e, v in zip(encoded, values, strict=True)]
    }
    status, answer = rest.json("POST", "/v1/models/toy:predict", {"inputs": {"text": encoded}})
    assert answer == {"outputs": {"echo_bytes": encoded, "length": [5, 3]}}
    status, answer = rest.json("POST", "/v1/models/toy:predict", {"instances": ["plain text", "é"]})
    assert status == 200 and [row["length"] for row in answer["predictions"]] == [10, 2]


def test_several_inputs_are_objects_in_rows_or_columns(rest: RestServer) -> None:
    rows = {"signature_name": "add", "instances": [{"a": 1, "b": 2}, {"a": 3, "b": 40}]}
    assert rest.json("POST", "/v1/models/toy:predict", rows) == (200, {"predictions": [3, 43]})
    columns = {"signature_name": "add", "inputs": {"a": [1, 3], "b": [2, 40], "ignored": 0}}
    assert rest.json("POST", "/v1/models/toy:predict", columns) == (200, {"outputs": [3, 43]})


def test_rest_and_grpc_predicts_run_side_by_side(rest: RestServer) -> None:
    image = _rgb("chelsea.png", width=96)
    expected = _grpc_mask(rest, image)

    def one(i: int) -> np.ndarray:
        if i % 2:
            return _grpc_mask(rest, image)
        status, answer = rest.json("POST", "/v1/models/deeplab:predict", {"instances": [image.tolist()]})
        assert status == 200
        return np.array(answer["predictions"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        for mask in pool.map(one, range(8)):
            np.testing.assert_array_equal(mask, expected)


# -- errors ------------------------------------------------------------------------------------------------------

TINY = [[[[1, 2, 3]]]]  # one 1x1 RGB image


# (method, path, body, HTTP status, message)
ERRORS = [
    ("POST", "/v1/models/deeplab:predict", "", 400, "JSON Parse error: The document is empty"),
    (
        "POST",
        "/v1/models/deeplab:predict",
        "instances = [1, 2]",
        400,
        "JSON Parse error: Invalid value. at offset: 0",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": [1, 2}',
        400,
        "JSON Parse error: Missing a comma or ']' after an array element. at offset: 19",
    ),
    ("POST", "/v1/models/deeplab:predict", "[1]", 400, "JSON Value: [1] Is not object"),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"signature_name": 100}',
        400,
        'JSON Value: {\n    "signature_name": 100\n} not formatted correctly. '
        "'signature_name' key must be a string value.",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": [1], "inputs": [1]}',
        400,
        'JSON Value: {\n    "instances": [1],\n    "inputs": [1]\n} Not formatted correctly expecting only one of '
        "'inputs' or 'instances' keys to exist ",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": 5}',
        400,
        "JSON Value: {\n    \"instances\": 5\n} Expecting 'instances' to be an list/array",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": []}',
        400,
        "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
    ),
    ("POST", "/v1/models/deeplab:predict", "{}", 400, "Missing 'inputs' or 'instances' key"),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": [[[[1.5, 0, 0]]]]}',
        400,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.5 Type: "
        "Number is not of expected type: uint8",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": [[[[1, 2, 3]], [[1, 2]]]]}',
        400,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Encountered list at "
        "unexpected size: 2 at level: 2 expected size: 3",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        '{"instances": [[[1, 2, 3]]]}',
        400,
        "input ImageTensor has shape [1, 1, 3], but the signature expects [1,?,?,3]",
    ),
    (
        "POST",
        "/v1/models/deeplab:predict",
        json.dumps({"signature_name": "nope", "instances": TINY}),
        400,
        'Serving signature name: "nope" not found in signature def',
    ),
    (
        "POST",
        "/v1/models/nope:predict",
        json.dumps({"instances": TINY}),
        404,
        "Servable not found for request: Latest(nope)",
    ),
    (
        "POST",
        "/v1/models/deeplab/versions/9:predict",
        json.dumps({"instances": TINY}),
        404,
        "Servable not found for request: Specific(deeplab, 9)",
    ),
    (
        "POST",
        "/v1/models/deeplab/labels/nightly:predict",
        json.dumps({"instances": TINY}),
        400,
        "Unrecognized servable version label: nightly",
    ),
    (
        "POST",
        "/v1/models/toy:predict",
        '{"signature_name": "half", "instances": [[true, 1]]}',
        400,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: true Type: "
        "True is not of expected type: float",
    ),
    (
        "POST",
        "/v1/models/toy:predict",
        '{"instances": [{"b64": "not base64!"}]}',
        400,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Unable to base64 decode",
    ),
    (
        "POST",
        "/v1/models/toy:predict",
        '{"signature_name": "add", "instances": [1, 2]}',
        400,
        "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
        "tensorinfo_map",
    ),
    (
        "POST",
        "/v1/models/toy:predict",
        '{"signature_name": "add", "instances": [{"a": 1}]}',
        400,
        "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": 1\n} keys must be equal to: a,b",
    ),
    (
        "POST",
        "/v1/models/toy:predict",
        '{"signature_name": "add", "inputs": {"a": [1]}}',
        400,
        "Missing named input: b in 'inputs' object.",
    ),
    ("POST", "/v1/models/deeplab:classify", "{}", 501, "Classify is not supported by this model server"),
    ("POST", "/v1/models/deeplab:PREDICT", "{}", 400, "Malformed request: POST /v1/models/deeplab:PREDICT"),
    ("PUT", "/v1/models/deeplab", "{}", 400, "Malformed request: PUT /v1/models/deeplab"),
    ("GET", "/v1/models/deeplab:predict", None, 400, "Malformed request: GET /v1/models/deeplab:predict"),
    ("POST", "/v1/models/deeplab/metadata", "{}", 400, "Malformed request: POST /v1/models/deeplab/metadata"),
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/deeplab/versions/9", None, 404, "Could not find version 9 of model deeplab"),
    ("GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[f"{i}-{case[0]}-{case[3]}" for i, case in enumerate(ERRORS)])
def test_errors_are_tf_servings_json_with_its_http_status(
    rest: RestServer, case: tuple[str, str, str | None, int, str]
) -> None:
    method, path, body, status, message = case
    got_status, content_type, text = rest.request(method, path, body)
    assert (got_status, content_type) == (status, "application/json"), text
    assert json.loads(text) == {"error": message}
    assert text == '{\n    "error": ' + json.dumps(message, ensure_ascii=False) + "\n}"  # rapidjson's layout


def test_a_version_that_is_no_int64_is_refused_with_no_body(rest: RestServer) -> None:
    status, content_type, text = rest.request("POST", "/v1/models/deeplab/versions/99999999999999999999:predict", "{}")
    assert (status, content_type, text) == (400, "application/json", "")


def test_paths_outside_v1_get_libevents_404_page(rest: RestServer) -> None:
    status, content_type, text = rest.request("GET", "/healthz")
    assert status == 404 and content_type.startswith("text/html")
    assert "<TITLE>404 Not Found</TITLE>" in text


def test_every_grpc_code_has_tf_servings_http_status() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode)
    # http_server.cc:46-87, the codes a client is likely to meet.
    assert HTTP_STATUS[grpc.StatusCode.INVALID_ARGUMENT] == HTTP_STATUS[grpc.StatusCode.FAILED_PRECONDITION] == 400
    assert HTTP_STATUS[grpc.StatusCode.NOT_FOUND] == 404
    assert HTTP_STATUS[grpc.StatusCode.RESOURCE_EXHAUSTED] == 429
    assert HTTP_STATUS[grpc.StatusCode.CANCELLED] == 499
    assert HTTP_STATUS[grpc.StatusCode.UNIMPLEMENTED] == 501
    assert HTTP_STATUS[grpc.StatusCode.UNAVAILABLE] == 503
    assert HTTP_STATUS[grpc.StatusCode.DEADLINE_EXCEEDED] == 504
