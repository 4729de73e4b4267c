"""modelserver serving the shared DeepLab .tflite with --prefer_tflite_model, as TF Serving's TfLiteSession does."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.tools import flatbuffer_utils
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from modelserver.options import parse_options
from modelserver.tflite import load_tflite
from tests.helpers import ServerProcess, start_modelserver
from tests.model.client import Client
from tests.model.processes import STARTUP_FAILED, run_modelserver
from tests.paths import CAT, IMAGES, PERSON, TFLITE

SIZE = 257
INPUT = "sub_7"
OUTPUT = "ResizeBilinear_3"
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


def _rgb257(name: str) -> np.ndarray:
    """The photo as the model takes it: RGB, resized to 257x257 (aspect ratio not kept)."""
    rgb = cv2.cvtColor(cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def _scaled(name: str) -> np.ndarray:
    return ((_rgb257(name).astype(np.float32) - 127.5) / 127.5)[np.newaxis]


def _lite_request(image: np.ndarray, model: str = "deeplab-lite", key: str = INPUT) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[key].CopyFrom(tf.make_tensor_proto(image))
    return request


def _scores(response: predict_pb2.PredictResponse) -> np.ndarray:
    return tf.make_ndarray(response.outputs[OUTPUT])


def _classes(response: predict_pb2.PredictResponse) -> np.ndarray:
    return _scores(response).argmax(axis=-1)[0]


@pytest.fixture(scope="module")
def lite(lite_base: pathlib.Path) -> Iterator[ServerProcess]:
    server = start_modelserver(
        "--model_name=deeplab-lite", f"--model_base_path={lite_base}", "--prefer_tflite_model=true"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(lite: ServerProcess) -> Client:
    return Client(lite.target)


def test_predict_finds_the_astronaut(client: Client) -> None:
    response = client.predictions.Predict(_lite_request(_scaled("astronaut.png")), timeout=60)
    assert response.model_spec.name == "deeplab-lite"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert list(response.outputs) == [OUTPUT]
    scores = _scores(response)
    assert scores.dtype == np.float32 and scores.shape == (1, SIZE, SIZE, 21)
    classes = _classes(response)
    counts = np.bincount(classes.ravel(), minlength=21)
    counts[0] = 0
    assert int(np.argmax(counts)) == PERSON
    # 46.0% here; the shared frozen graph finds 46.1% on the full-size photo (models/.../README.md).
    assert 0.40 < float((classes == PERSON).mean()) < 0.52


def test_scores_come_back_in_float_val_as_tf_serving_writes_them(client: Client) -> None:
    """Without --enable_serialization_as_tensor_content, TF Serving's AsProtoField puts float outputs in
    float_val; tensor_content stays empty."""
    response = client.predictions.Predict(_lite_request(_scaled("chelsea.png")), timeout=60)
    scores = response.outputs[OUTPUT]
    assert not scores.tensor_content
    assert len(scores.float_val) == SIZE * SIZE * 21
    np.testing.assert_array_equal(np.array(scores.float_val, dtype=np.float32), _scores(response).ravel())


def test_status_and_metadata_show_the_generated_signature(client: Client) -> None:
    assert client.status("deeplab-lite")[1].state == AVAILABLE
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "deeplab-lite"
    response = client.predictions.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    # The .tflite has no SignatureDefs, so TF Serving generates `serving_default`, keyed by tensor names.
    assert list(signatures.signature_def) == ["serving_default"]
    signature = signatures.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert list(signature.inputs) == [INPUT]
    assert list(signature.outputs) == [OUTPUT]
    image = signature.inputs[INPUT]
    assert image.name == INPUT
    assert image.dtype == tf.float32.as_datatype_enum
    assert [d.size for d in image.tensor_shape.dim] == [1, SIZE, SIZE, 3]
    scores = signature.outputs[OUTPUT]
    assert scores.name == OUTPUT
    assert scores.dtype == tf.float32.as_datatype_enum
    assert [d.size for d in scores.tensor_shape.dim] == [1, SIZE, SIZE, 21]


def test_eight_concurrent_predicts_give_each_image_its_own_answer(client: Client) -> None:
    """More calls than interpreters (2 CPUs here), two images interleaved: any sharing of one interpreter's
    tensors between calls would show as a mixed-up or changed answer."""
    names = ["astronaut.png", "chelsea.png"] * 4
    expected = {
        name: _scores(client.predictions.Predict(_lite_request(_scaled(name)), timeout=60)) for name in set(names)
    }
    requests = [_lite_request(_scaled(name)) for name in names]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda r: client.predictions.Predict(r, timeout=60), requests))
    for name, response in zip(names, responses, strict=True):
        np.testing.assert_array_equal(_scores(response), expected[name])
    assert float((expected["astronaut.png"].argmax(-1) == PERSON).mean()) > 0.4
    assert float((expected["chelsea.png"].argmax(-1) == CAT).mean()) > 0.6


def _error(client: Client, request: predict_pb2.PredictRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        client.predictions.Predict(request, timeout=30)
    return info.value


@pytest.mark.parametrize(
    ("request_for", "message"),
    [
        (
            lambda: _lite_request(_rgb257("astronaut.png")[np.newaxis]),
            "Expects arg[0] to be float but uint8 is provided",
        ),
        # TF Serving would resize the input to rank 3; this interpreter then crashes (see modelserver/tflite.py).
        (lambda: _lite_request(_scaled("astronaut.png")[0]), "but the signature expects [1,257,257,3]"),
        (
            lambda: _lite_request(_scaled("astronaut.png"), key="ImageTensor"),
            "input tensor alias not found in signature: ImageTensor. Inputs expected to be in the set {sub_7}.",
        ),
    ],
    ids=["uint8", "rank-3", "wrong-key"],
)
def test_bad_inputs_are_invalid_argument(client: Client, request_for, message: str) -> None:
    error = _error(client, request_for())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    assert client.status("deeplab-lite")[1].state == AVAILABLE


def test_without_the_flag_a_tflite_only_version_fails_to_load(lite_base: pathlib.Path) -> None:
    """The only version cannot load as a SavedModel, so TF Serving does not start (see test_cold_start.py)."""
    result = run_modelserver(
        "--model_name=deeplab-lite",
        f"--model_base_path={lite_base}",
        "--max_num_load_retries=0",
        "--file_system_poll_wait_seconds=0",
    )
    assert result.returncode == STARTUP_FAILED, result.stderr[-3000:]
    assert (
        "Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available: "
        "{{{name: deeplab-lite version: 1} due to error: NOT_FOUND: Specified file path does not appear to contain "
        "a SavedModel bundle"
    ) in result.stderr
    assert str(lite_base / "1") in result.stderr
    assert "Running gRPC ModelServer" not in result.stdout


def test_one_config_file_serves_the_saved_model_and_the_tflite(
    servable_base: pathlib.Path, lite_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "models.config"
    config.write_text(
        f"""
        model_config_list {{
          config {{ name: "deeplab" base_path: "{servable_base}" model_platform: "tensorflow" }}
          config {{ name: "deeplab-lite" base_path: "{lite_base}" model_platform: "tensorflow" }}
        }}
        """
    )
    # The flag applies to every model; `deeplab` has no model.tflite, so it stays a SavedModel.
    server = start_modelserver(f"--model_config_file={config}", "--prefer_tflite_model")
    try:
        client = Client(server.target)
        assert client.status("deeplab")[1].state == AVAILABLE
        assert client.status("deeplab-lite")[1].state == AVAILABLE
        saved = tf.make_ndarray(client.predict(_rgb257("astronaut.png")).outputs["SemanticPredictions"])[0]
        lite = _classes(client.predictions.Predict(_lite_request(_scaled("astronaut.png")), timeout=60))
        assert saved.shape == lite.shape == (SIZE, SIZE)
        # The SavedModel is the shared frozen graph, the same weights: at 257x257 the two agree pixel for pixel
        # (100% when measured; a little slack for float rounding between TensorFlow and TFLite kernels).
        assert float((saved == lite).mean()) > 0.99
        assert 0.40 < float((saved == PERSON).mean()) < 0.52
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ([], False),
        (["--prefer_tflite_model"], True),
        (["--prefer_tflite_model=true"], True),
        (["--prefer_tflite_model=TRUE"], True),
        (["--prefer_tflite_model=1"], True),
        (["--prefer_tflite_model=false"], False),
        (["--prefer_tflite_model=0"], False),
    ],
)
def test_the_flag_is_parsed_as_tensorflow_parses_bool_flags(flag: list[str], value: bool) -> None:
    assert parse_options(["--model_base_path=/models/m", *flag]).prefer_tflite_model is value


def test_an_unreadable_flag_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_options(["--model_base_path=/models/m", "--prefer_tflite_model=yes"])
    assert info.value.code == 2
    assert "Couldn't interpret value yes for flag prefer_tflite_model." in capsys.readouterr().err


def _version(tmp_path: pathlib.Path, model: bytes) -> pathlib.Path:
    version = tmp_path / "model" / "1"
    version.mkdir(parents=True)
    (version / "model.tflite").write_bytes(model)
    return version


def test_tflite_signature_runners_are_not_signature_defs(tmp_path: pathlib.Path) -> None:
    """TF Serving reads only SignatureDefs stored in the model's metadata; a converter's signature runner (here
    `double`: x -> y) is not one, so the generated `serving_default` keys tensors by name up to the ':'."""

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def double(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": x * 2.0}

    module = Doubler()
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"double": module.double})
    model = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    session, signatures = load_tflite(_version(tmp_path, model), 2, 0)
    assert list(signatures) == ["serving_default"]
    signature = signatures["serving_default"]
    [(_, x)] = signature.inputs.items()
    [(_, y)] = signature.outputs.items()
    for key, info in [*signature.inputs.items(), *signature.outputs.items()]:
        assert key == info.name.split(":")[0] and key not in ("x", "y")
    [doubled] = session.run([y.name], {x.name: np.arange(4, dtype=np.float32).reshape(1, 4)})
    np.testing.assert_array_equal(doubled, [[0, 2, 4, 6]])
    session.close()


def test_signature_defs_in_the_metadata_are_served_with_legacy_names_fixed(tmp_path: pathlib.Path) -> None:
    """SignatureDefs stored as tflite's signature_def_util stores them; `sub_7:0` names the tensor `sub_7`."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(TFLITE.read_bytes()))
    stored = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    stored.inputs["image"].CopyFrom(meta_graph_pb2.TensorInfo(name="sub_7:0", dtype=tf.float32.as_datatype_enum))
    stored.outputs["scores"].CopyFrom(meta_graph_pb2.TensorInfo(name=OUTPUT, dtype=tf.float32.as_datatype_enum))
    # signature_def_util writes each as a FlexBuffer string; this one (no shapes) is ASCII, which Dumps can write.
    buffer = tflite_schema.BufferT()
    buffer.data = list(flexbuffers.Dumps({"segment": stored.SerializeToString().decode("ascii")}))
    model.buffers.append(buffer)
    metadata = tflite_schema.MetadataT()
    metadata.name, metadata.buffer = "signature_defs_metadata", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), metadata]
    version = _version(tmp_path, bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    session, signatures = load_tflite(version, 1, 0)
    assert list(signatures) == ["segment"]
    assert signatures["segment"].inputs["image"].name == INPUT
    assert signatures["segment"].outputs["scores"].name == OUTPUT
    [scores] = session.run([OUTPUT], {INPUT: _scaled("astronaut.png")})
    assert 0.40 < float((scores.argmax(-1) == PERSON).mean()) < 0.52
    session.close()
