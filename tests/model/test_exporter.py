"""The exporter, run as users run it (python -m exporter), on the real frozen graph."""

from __future__ import annotations

import base64
import io
import json
import pathlib
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import grpc
import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2

from tests.helpers import run_exporter
from tests.model.client import Client
from tests.model.processes import RestServer, start_with_rest
from tests.paths import CAT, FROZEN_GRAPH, IMAGES, PERSON, TF_SIDE


def _segment(saved_model: pathlib.Path, *images: pathlib.Path) -> dict[str, dict[str, float]]:
    result = subprocess.run(
        [sys.executable, str(TF_SIDE / "segment_savedmodel.py"), str(saved_model), *map(str, images)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _leftovers(base: pathlib.Path) -> list[str]:
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_exported_servable_segments_the_shared_photos(servable_base: pathlib.Path) -> None:
    assert (servable_base / "1" / "saved_model.pb").is_file()
    fractions = _segment(servable_base / "1", IMAGES / "astronaut.png", IMAGES / "chelsea.png")
    astronaut = fractions[str(IMAGES / "astronaut.png")]
    chelsea = fractions[str(IMAGES / "chelsea.png")]
    assert astronaut.get(str(PERSON), 0.0) >= 0.40, astronaut
    assert chelsea.get(str(CAT), 0.0) >= 0.70, chelsea


def test_export_prints_the_signature_and_numbers_versions_upwards(tmp_path: pathlib.Path) -> None:
    base = tmp_path / "deeplab"
    first = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base)
    assert first.returncode == 0, first.stderr
    assert "signature 'serving_default' [serve]" in first.stdout
    assert "ImageTensor: uint8 [1, -1, -1, 3]" in first.stdout
    assert "SemanticPredictions: int64 [1, -1, -1]" in first.stdout
    # What the gateway's deeplab-257 profile calls: float pixels in, the class ids and the scores behind them out.
    assert "signature 'serving_scores' [serve]: inputs {image: float32 [1, -1, -1, 3]} -> outputs {" in first.stdout
    assert "scores: float32 [1, 33, 33, 21]" in first.stdout and "network_size: int32 [2]" in first.stdout
    assert "enlarges them with aligned corners to 257x257, then with half-pixel centres" in first.stdout
    assert "serving_bytes" not in first.stdout  # the levers are off by default
    # TensorFlow's notices that there is no GPU (one of them an error line) are not the exporter's to show.
    assert "cuInit" not in first.stderr and "absl::InitializeLog" not in first.stderr, first.stderr
    second = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base)
    assert second.returncode == 0, second.stderr
    assert _leftovers(base) == ["1", "2"]


def test_model_zoo_tarball_exports_the_same_model(tmp_path: pathlib.Path, servable_base: pathlib.Path) -> None:
    tarball = tmp_path / "deeplabv3_mnv2_pascal_train_aug_2018_01_29.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(FROZEN_GRAPH, arcname="deeplabv3_mnv2_pascal_train_aug/frozen_inference_graph.pb")
        notes = b"model_checkpoint_path: model.ckpt-30000\n"
        info = tarfile.TarInfo("deeplabv3_mnv2_pascal_train_aug/checkpoint")
        info.size = len(notes)
        archive.addfile(info, io.BytesIO(notes))
    base = tmp_path / "zoo"
    result = run_exporter("--frozen-graph", tarball, "--export-dir", base, "--version", "7")
    assert result.returncode == 0, result.stderr
    assert _leftovers(base) == ["7"]
    # The same model to the byte: an export is deterministic (the graph's weights are constants in saved_model.pb).
    exported = (base / "7" / "saved_model.pb").read_bytes()
    assert exported == (servable_base / "1" / "saved_model.pb").read_bytes()


def _not_deeplab_graph(tmp_path: pathlib.Path) -> pathlib.Path:
    """A valid frozen GraphDef that is not a DeepLab graph."""
    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="input")
        tf.identity(x * 2.0, name="output")
    path = tmp_path / "other.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def _tarball_without_graph(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "empty_zoo.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("model/checkpoint")
        archive.addfile(info, io.BytesIO(b""))
    return path


def _random_bytes(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "noise.pb"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def _text_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "notes.pb"
    path.write_text("this is not a graph\n")
    return path


@pytest.mark.parametrize(
    ("make_input", "expected"),
    [
        (_random_bytes, "not a TensorFlow GraphDef"),
        (_text_file, "not a"),
        (_not_deeplab_graph, "not a DeepLab frozen graph: no ImageTensor:0 or SemanticPredictions:0"),
        (_tarball_without_graph, "the archive holds no frozen_inference_graph.pb"),
        (lambda tmp: tmp / "missing.pb", "no such file"),
    ],
    ids=["random-bytes", "text", "other-graph", "tarball-without-graph", "missing-file"],
)
def test_bad_input_fails_with_one_clear_line_and_writes_nothing(tmp_path: pathlib.Path, make_input, expected) -> None:
    base = tmp_path / "out"
    result = run_exporter("--frozen-graph", make_input(tmp_path), "--export-dir", base)
    assert result.returncode == 1
    line = _last_line(result.stderr)
    assert line.startswith("exporter: error: ") and expected in line, result.stderr[-2000:]
    assert _leftovers(base) == []


def test_existing_version_is_refused_and_kept(tmp_path: pathlib.Path) -> None:
    base = tmp_path / "deeplab"
    (base / "3").mkdir(parents=True)
    (base / "3" / "marker").write_text("keep me")
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--version", "3")
    assert result.returncode == 1
    assert "already exists; versions are never overwritten" in _last_line(result.stderr)
    assert _leftovers(base) == ["3"]
    assert (base / "3" / "marker").read_text() == "keep me"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_export_leaves_nothing(tmp_path: pathlib.Path, sig: signal.Signals) -> None:
    base = tmp_path / "deeplab"
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--frozen-graph", str(FROZEN_GRAPH), "--export-dir", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    # Interrupt while the staging directory exists, i.e. in the middle of writing or verifying.
    while time.monotonic() < deadline and not any(p.name.startswith(".tmp") for p in base.glob("*")):
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, stderr
    assert _leftovers(base) == [], stderr[-2000:]


# -- the levers: --output-dtype uint8 and --bytes-signature ---------------------------------------------------------

LEVERS = ("--output-dtype", "uint8", "--bytes-signature")
HD = (1920, 1080)  # width, height of the enlarged photo: serving_bytes shrinks it to 513x289
HD_MODEL_SIZE = (289, 513)  # height, width: 1080 * 513 / 1920 = 288.56, rounded


@pytest.fixture(scope="module")
def levers_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, str]:
    """The model base path exported with both levers, and what the exporter printed."""
    base = tmp_path_factory.mktemp("levers") / "deeplab"
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--version", "1", *LEVERS)
    assert result.returncode == 0, result.stderr
    return base, result.stdout


@pytest.fixture(scope="module")
def levers_base(levers_export: tuple[pathlib.Path, str]) -> pathlib.Path:
    return levers_export[0]


@pytest.fixture(scope="module")
def levers_model(levers_base: pathlib.Path) -> Any:
    return tf.saved_model.load(str(levers_base / "1"), tags=["serve"])


@pytest.fixture(scope="module")
def default_model(servable_base: pathlib.Path) -> Any:
    return tf.saved_model.load(str(servable_base / "1"), tags=["serve"])


def _bgr(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    image = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    return image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def _encoded(name: str, size: tuple[int, int] | None = None, ext: str = ".jpg") -> bytes:
    """The shared photo (enlarged to `size`, width x height), encoded by OpenCV now; nothing is stored."""
    ok, data = cv2.imencode(ext, _bgr(name, size))
    assert ok
    return data.tobytes()


def _decoded(data: bytes) -> tf.Tensor:
    """The image as serving_bytes decodes it: a JPEG with libjpeg's default (accurate) DCT, as Pillow and OpenCV do."""
    if tf.io.is_jpeg(data):
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def _mask(fn: Any, **feeds: Any) -> np.ndarray:
    return fn(**{k: tf.constant(v) for k, v in feeds.items()})["SemanticPredictions"].numpy()


def _fraction(mask: np.ndarray, class_id: int) -> float:
    return float(np.mean(mask == class_id))


def _signatures(version: pathlib.Path) -> dict[str, Any]:
    """The SignatureDefs as written in saved_model.pb, read without loading the graph."""
    model = saved_model_pb2.SavedModel()
    model.ParseFromString((version / "saved_model.pb").read_bytes())
    (meta_graph,) = model.meta_graphs
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    return dict(meta_graph.signature_def)


def _info(info: Any) -> tuple[str, int, list[int]]:
    return info.name, info.dtype, [d.size for d in info.tensor_shape.dim]


def test_levers_export_prints_every_signature_and_stores_the_weights_once(
    levers_export: tuple[pathlib.Path, str],
) -> None:
    levers_base, stdout = levers_export
    assert (
        "signature 'serving_default' [serve]: inputs {ImageTensor: uint8 [1, -1, -1, 3]} -> "
        "outputs {SemanticPredictions: uint8 [1, -1, -1]}" in stdout
    )
    assert (
        "signature 'serving_bytes' [serve]: inputs {image_bytes: string [1]} -> "
        "outputs {SemanticPredictions: uint8 [1, -1, -1]}" in stdout
    )
    assert "image_bytes: a batch of one string, shape [1]" in stdout
    # One import of the frozen graph feeds every signature: the weights (nearly all of its 2.8 MB) are there once.
    assert (levers_base / "1" / "saved_model.pb").stat().st_size < 1.1 * FROZEN_GRAPH.stat().st_size


def test_signature_defs_keep_serving_default_and_add_serving_scores_and_serving_bytes(
    levers_base: pathlib.Path, servable_base: pathlib.Path
) -> None:
    default = _signatures(servable_base / "1")
    assert sorted(default) == ["serving_default", "serving_scores"]
    scores = default["serving_scores"]
    assert _info(scores.inputs["image"])[1:] == (types_pb2.DT_FLOAT, [1, -1, -1, 3])
    assert _info(scores.outputs["scores"])[1:] == (types_pb2.DT_FLOAT, [1, 33, 33, 21])
    assert _info(scores.outputs["network_size"])[1:] == (types_pb2.DT_INT32, [2])  # what the gateway reads
    assert scores.outputs["SemanticPredictions"] == default["serving_default"].outputs["SemanticPredictions"]
    image = ("ImageTensor:0", types_pb2.DT_UINT8, [1, -1, -1, 3])
    assert _info(default["serving_default"].inputs["ImageTensor"]) == image
    assert _info(default["serving_default"].outputs["SemanticPredictions"])[1:] == (types_pb2.DT_INT64, [1, -1, -1])

    levers = _signatures(levers_base / "1")
    assert sorted(levers) == ["serving_bytes", "serving_default", "serving_scores"]
    # serving_default is fed as before, by the same tensor name, dtype and shape; only its output is uint8.
    assert levers["serving_default"].inputs["ImageTensor"] == default["serving_default"].inputs["ImageTensor"]
    assert levers["serving_default"].method_name == default["serving_default"].method_name
    assert _info(levers["serving_default"].outputs["SemanticPredictions"])[1:] == (types_pb2.DT_UINT8, [1, -1, -1])
    assert list(levers["serving_bytes"].inputs) == ["image_bytes"]
    assert _info(levers["serving_bytes"].inputs["image_bytes"])[1:] == (types_pb2.DT_STRING, [1])
    assert list(levers["serving_bytes"].outputs) == ["SemanticPredictions"]
    assert _info(levers["serving_bytes"].outputs["SemanticPredictions"])[1:] == (types_pb2.DT_UINT8, [1, -1, -1])


def test_tf_loads_every_signature_with_its_dtypes(levers_model: Any) -> None:
    assert sorted(levers_model.signatures) == ["serving_bytes", "serving_default", "serving_scores"]
    default = levers_model.signatures["serving_default"]
    assert default.structured_input_signature[1]["ImageTensor"].dtype == tf.uint8
    assert default.structured_outputs["SemanticPredictions"].dtype == tf.uint8
    by_bytes = levers_model.signatures["serving_bytes"]
    spec = by_bytes.structured_input_signature[1]["image_bytes"]
    assert (spec.dtype, spec.shape.as_list()) == (tf.string, [1])
    output = by_bytes.structured_outputs["SemanticPredictions"]
    assert (output.dtype, output.shape.as_list()) == (tf.uint8, [1, None, None])


@pytest.mark.parametrize(("name", "class_id", "share"), [("astronaut.png", PERSON, 0.40), ("chelsea.png", CAT, 0.70)])
def test_uint8_output_is_the_int64_output_cast(
    levers_model: Any, default_model: Any, name: str, class_id: int, share: float
) -> None:
    rgb = cv2.cvtColor(_bgr(name), cv2.COLOR_BGR2RGB)[np.newaxis]
    small = _mask(levers_model.signatures["serving_default"], ImageTensor=rgb)
    wide = _mask(default_model.signatures["serving_default"], ImageTensor=rgb)
    assert (small.dtype, wide.dtype) == (np.uint8, np.int64)
    assert small.shape == wide.shape == rgb.shape[:3]
    assert wide.max() < 256
    np.testing.assert_array_equal(small, wide.astype(np.uint8))
    assert _fraction(small, class_id) >= share


@dataclass(frozen=True)
class Photo:
    """A shared photo, maybe enlarged (width x height) and encoded; the size serving_bytes segments it at."""

    name: str
    size: tuple[int, int] | None
    ext: str
    model_size: tuple[int, int]  # height, width
    class_id: int
    share: float


PHOTOS = {
    "chelsea-jpeg": Photo("chelsea.png", None, ".jpg", (300, 451), CAT, 0.70),  # within 513: never enlarged
    "chelsea-1080p-jpeg": Photo("chelsea.png", HD, ".jpg", HD_MODEL_SIZE, CAT, 0.70),
    # Portrait: 700 * 513 / 1400 = 256.5, rounded half up.
    "astronaut-portrait-png": Photo("astronaut.png", (700, 1400), ".png", (513, 257), PERSON, 0.40),
}


@pytest.mark.parametrize("photo", PHOTOS.values(), ids=PHOTOS.keys())
def test_bytes_signature_agrees_with_serving_default_on_the_same_resized_image(levers_model: Any, photo: Photo) -> None:
    data = _encoded(photo.name, photo.size, photo.ext)
    mask = _mask(levers_model.signatures["serving_bytes"], image_bytes=[data])
    assert mask.dtype == np.uint8 and mask.shape == (1, *photo.model_size)
    assert _fraction(mask, photo.class_id) >= photo.share
    # What a TF Serving user would otherwise do before serving_default: decode, bilinear resize, round to uint8.
    decoded = _decoded(data)
    resized = tf.image.resize(decoded[tf.newaxis], photo.model_size, method="bilinear")
    pixels = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    np.testing.assert_array_equal(mask, _mask(levers_model.signatures["serving_default"], ImageTensor=pixels))


def test_bytes_signature_at_a_fixed_size_stretches_every_image_to_it(tmp_path: pathlib.Path) -> None:
    """--bytes-signature-size 257x257: the in-graph peer of the gateway's deeplab-257 profile."""
    base = tmp_path / "deeplab"
    fixed = ("--bytes-signature", "--bytes-signature-size", "257x257")
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, *fixed)
    assert result.returncode == 0, result.stderr
    assert "Resized in the graph to exactly 257x257" in result.stdout
    model = tf.saved_model.load(str(base / "1"), tags=["serve"])
    data = _encoded("chelsea.png", HD)
    mask = _mask(model.signatures["serving_bytes"], image_bytes=[data])
    assert mask.dtype == np.uint8 and mask.shape == (1, 257, 257)
    assert _fraction(mask, CAT) >= 0.70
    decoded = _decoded(data)
    pixels = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(decoded[tf.newaxis], (257, 257))), 0, 255), tf.uint8)
    ids = _mask(model.signatures["serving_default"], ImageTensor=pixels)
    np.testing.assert_array_equal(mask, ids.astype(np.uint8))
    refused = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--bytes-signature-size", "257")
    assert refused.returncode == 2 and "use WIDTHxHEIGHT" in refused.stderr


def test_bytes_signature_refuses_bytes_that_are_not_an_image(levers_model: Any) -> None:
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        _mask(levers_model.signatures["serving_bytes"], image_bytes=[b"not an image"])


@pytest.fixture(scope="module")
def levers_server(levers_base: pathlib.Path) -> Iterator[RestServer]:
    server = start_with_rest("--model_name=deeplab", f"--model_base_path={levers_base}")
    yield server
    server.stop()


def _bytes_request(data: bytes) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "deeplab"
    request.model_spec.signature_name = "serving_bytes"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([data]))  # DT_STRING, shape [1]
    return request


def test_modelserver_answers_serving_bytes_with_a_uint8_mask(levers_server: RestServer, levers_model: Any) -> None:
    data = _encoded("chelsea.png", HD)
    request = _bytes_request(data)
    assert request.inputs["image_bytes"].dtype == types_pb2.DT_STRING
    response = Client(levers_server.target).predictions.Predict(request, timeout=60)
    assert response.model_spec.signature_name == "serving_bytes"
    output = response.outputs["SemanticPredictions"]
    assert output.dtype == types_pb2.DT_UINT8
    assert [d.size for d in output.tensor_shape.dim] == [1, *HD_MODEL_SIZE]
    mask = tf.make_ndarray(output)
    assert _fraction(mask, CAT) >= 0.70
    local = _mask(levers_model.signatures["serving_bytes"], image_bytes=[data])
    assert np.mean(mask == local) >= 0.999


def test_modelserver_still_answers_serving_default_with_pixels(levers_server: RestServer) -> None:
    rgb = cv2.cvtColor(_bgr("chelsea.png"), cv2.COLOR_BGR2RGB)
    response = Client(levers_server.target).predict(rgb)
    output = response.outputs["SemanticPredictions"]
    assert output.dtype == types_pb2.DT_UINT8
    mask = tf.make_ndarray(output)
    assert mask.shape == (1, *rgb.shape[:2]) and _fraction(mask, CAT) >= 0.70


def test_modelserver_refuses_bytes_that_are_not_an_image(levers_server: RestServer) -> None:
    with pytest.raises(grpc.RpcError) as info:
        Client(levers_server.target).predictions.Predict(_bytes_request(b"not an image"), timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unknown image file format" in info.value.details()


def test_rest_api_takes_the_image_as_b64_and_lists_both_signatures(levers_server: RestServer) -> None:
    status, metadata = levers_server.json("GET", "/v1/models/deeplab/metadata")
    assert status == 200
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["serving_bytes", "serving_default", "serving_scores"]
    encoded = base64.b64encode(_encoded("chelsea.png")).decode()
    body = {"signature_name": "serving_bytes", "inputs": {"image_bytes": [{"b64": encoded}]}}
    status, answer = levers_server.json("POST", "/v1/models/deeplab:predict", body)
    assert status == 200, answer
    mask = np.array(answer["outputs"])
    assert mask.shape == (1, 300, 451)
    assert _fraction(mask, CAT) >= 0.70


# -- serving_scores and the graph's own full-size answer ----------------------------------------------------------


def test_serving_scores_gives_serving_default_s_class_ids_for_the_same_pixels_and_the_scores_behind_them(
    default_model: Any,
) -> None:
    rgb = cv2.cvtColor(_bgr("astronaut.png"), cv2.COLOR_BGR2RGB)[np.newaxis]
    by_pixels = _mask(default_model.signatures["serving_default"], ImageTensor=rgb)
    answer = default_model.signatures["serving_scores"](image=tf.constant(rgb.astype(np.float32)))
    np.testing.assert_array_equal(answer["SemanticPredictions"].numpy(), by_pixels)
    # At the network's own size, the class ids are the argmax of the scores enlarged with aligned corners.
    native = tf.image.resize(rgb.astype(np.float32), (257, 257)).numpy()
    answer = default_model.signatures["serving_scores"](image=tf.constant(native))
    scores = answer["scores"]
    assert scores.shape == (1, 33, 33, 21)
    enlarged = tf.compat.v1.image.resize_bilinear(scores, (257, 257), align_corners=True)
    np.testing.assert_array_equal(tf.argmax(enlarged, axis=-1).numpy(), answer["SemanticPredictions"].numpy())
    assert _fraction(answer["SemanticPredictions"].numpy(), PERSON) >= 0.40


def test_bytes_signature_at_full_size_is_the_graph_s_own_answer_for_the_decoded_image(tmp_path: pathlib.Path) -> None:
    """--bytes-signature-size full: the in-graph peer that answers exactly what the graph computes from the bytes."""
    base = tmp_path / "deeplab-exact"
    full = ("--output-dtype", "uint8", "--bytes-signature", "--bytes-signature-size", "full")
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, *full)
    assert result.returncode == 0, result.stderr
    assert "Not resized before the graph's own nodes" in result.stdout
    model = tf.saved_model.load(str(base / "1"), tags=["serve"])
    for data in (_encoded("chelsea.png", HD), _encoded("astronaut.png", ext=".png")):
        mask = _mask(model.signatures["serving_bytes"], image_bytes=[data])
        pixels = np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))  # as the photo's viewers decode it
        assert mask.shape == (1, *pixels.shape[:2])
        graph = _mask(model.signatures["serving_default"], ImageTensor=pixels[np.newaxis])
        np.testing.assert_array_equal(mask, graph)
