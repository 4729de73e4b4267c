"""modelserver as a real process on loopback, driven by the official tensorflow-serving-api client."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from modelserver.options import parse_options
from tests.helpers import ServerProcess, copy_version, start_modelserver, wait_for
from tests.images import rgb
from tests.model.client import Client
from tests.paths import CAT, PERSON, ROOT

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


def _dominant(response: predict_pb2.PredictResponse) -> int:
    """The most frequent class other than background (0)."""
    mask = tf.make_ndarray(response.outputs["SemanticPredictions"])
    counts = np.bincount(mask.ravel(), minlength=21)
    counts[0] = 0
    return int(np.argmax(counts))


@pytest.fixture(scope="module")
def multi(servable_base: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server from a config file: 'deeplab' with versions 1, 2 and a broken 3, labels; and 'other'."""
    root = tmp_path_factory.mktemp("multi")
    deeplab = root / "deeplab"
    for version in (1, 2):
        copy_version(servable_base / "1", deeplab / str(version))
    copy_version(servable_base / "1", root / "other" / "5")
    config = root / "models.config"
    config.write_text(
        f"""
        model_config_list {{
          config {{
            name: "deeplab"
            base_path: "{deeplab}"
            model_platform: "tensorflow"
            model_version_policy {{ all {{}} }}
            version_labels {{ key: "stable" value: 1 }}
            version_labels {{ key: "canary" value: 2 }}
          }}
          config {{
            name: "other"
            base_path: "{root / "other"}"
            model_platform: "tensorflow"
          }}
        }}
        """
    )
    # Labels in the first config name versions that are not loaded yet: TF Serving refuses that without the flag.
    server = start_modelserver(
        f"--model_config_file={config}",
        "--max_num_load_retries=0",
        "--allow_version_labels_for_unavailable_models=true",
    )
    # A broken version 3 present at start-up would fail the start (the highest version decides, as in TF
    # Serving), so it arrives afterwards, as a bad push would, and is picked up by the next file-system poll.
    broken = root / ".3.tmp"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    broken.rename(deeplab / "3")
    status = Client(server.target)
    wait_for(lambda: 3 in status.status() and status.status()[3].state == END, timeout=30)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(multi: ServerProcess) -> Client:
    return Client(multi.target)


def test_predict_finds_the_person_and_the_cat(client: Client) -> None:
    person = client.predict(rgb("astronaut.png"))
    assert _dominant(person) == PERSON
    assert _fraction(person, PERSON) > 0.4
    cat = client.predict(rgb("chelsea.png"))
    assert _dominant(cat) == CAT
    assert _fraction(cat, CAT) > 0.7
    assert cat.model_spec.name == "deeplab"
    assert cat.model_spec.version.value == 2  # the highest version that loaded; 3 is broken
    assert cat.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(cat.outputs["SemanticPredictions"]).shape == (1, 300, 451)


def _fraction(response: predict_pb2.PredictResponse, class_id: int) -> float:
    mask = tf.make_ndarray(response.outputs["SemanticPredictions"])
    return float((mask == class_id).mean())


def test_metadata_shows_the_signature(client: Client) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "deeplab"
    response = client.predictions.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    image = signature.inputs["ImageTensor"]
    assert image.dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in image.tensor_shape.dim] == [1, -1, -1, 3]
    assert signature.outputs["SemanticPredictions"].dtype == tf.int64.as_datatype_enum
    assert signature.method_name == "tensorflow/serving/predict"
    assert response.model_spec.version.value == 2


def test_status_reports_available_versions_and_the_broken_one(client: Client) -> None:
    status = client.status()
    assert status[1].state == AVAILABLE
    assert status[2].state == AVAILABLE
    assert status[3].state == END
    assert status[3].status.error_code != 0 and status[3].status.error_message
    assert client.status("other")[5].state == AVAILABLE


def test_version_labels_and_versions_route_to_their_version(client: Client) -> None:
    image = rgb("chelsea.png")
    assert client.predict(image, label="stable").model_spec.version.value == 1
    assert client.predict(image, label="canary").model_spec.version.value == 2
    assert client.predict(image, version=1).model_spec.version.value == 1
    assert client.predict(image, model="other").model_spec.version.value == 5


def _error(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (
            lambda c, img: c.predict(img, model="nope"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
        (
            lambda c, img: c.predict(img, version=9),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(deeplab, 9)",
        ),
        (
            lambda c, img: c.predict(img, version=3),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(deeplab, 3)",
        ),
        (
            lambda c, img: c.predict(img, label="nightly"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: nightly",
        ),
        (
            lambda c, img: c.predict(img, key="image"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor alias not found in signature: image. Inputs expected to be in the set {ImageTensor}.",
        ),
        (
            lambda c, img: c.predict(img.astype(np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be uint8 but float is provided",
        ),
        (
            lambda c, img: c.predict(img[:, :, 0]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "but the signature expects [1,?,?,3]",
        ),
        (
            lambda c, img: c.predict(img, signature_name="detect"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "detect" not found.',
        ),
        (
            lambda c, img: c.models.GetModelStatus(
                get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "nope"}), timeout=10
            ),
            grpc.StatusCode.NOT_FOUND,
            "Could not find any versions of model nope",
        ),
        (
            lambda c, img: c.predictions.GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "deeplab"}), timeout=10
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "must specify at least one metadata_field",
        ),
        (
            lambda c, img: c.predictions.Classify(classification_pb2.ClassificationRequest(), timeout=10),
            grpc.StatusCode.UNIMPLEMENTED,
            "Classify",
        ),
    ],
    ids=[
        "unknown-model",
        "unknown-version",
        "broken-version",
        "unknown-label",
        "wrong-input-key",
        "wrong-dtype",
        "wrong-rank",
        "unknown-signature",
        "status-unknown-model",
        "metadata-without-fields",
        "classify",
    ],
)
def test_errors_are_answered_as_tf_serving_answers_them(client: Client, call, code, message) -> None:
    error = _error(lambda: call(client, rgb("chelsea.png")))
    assert error.code() == code
    assert message in error.details()
    # Nothing crashes the server.
    assert client.status()[2].state == AVAILABLE


def test_output_filter_with_an_unknown_alias_is_invalid(client: Client) -> None:
    request = predict_pb2.PredictRequest(output_filter=["Scores"])
    request.model_spec.name = "deeplab"
    request.inputs["ImageTensor"].CopyFrom(tf.make_tensor_proto(rgb("chelsea.png")[np.newaxis]))
    error = _error(lambda: client.predictions.Predict(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: Scores" in error.details()


def test_sixteen_concurrent_predicts_all_succeed(client: Client) -> None:
    images = [rgb(name) for name in ("astronaut.png", "chelsea.png", "coffee.png", "chelsea.png")] * 4
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(client.predict, images))
    assert len(responses) == 16
    for image, response in zip(images, responses, strict=True):
        assert tf.make_ndarray(response.outputs["SemanticPredictions"]).shape == (1, *image.shape[:2])


def test_reflection_lists_the_tf_serving_services(multi: ServerProcess) -> None:
    listed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "grpcurl"), "-plaintext", multi.target, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "tensorflow.serving.PredictionService" in listed
    assert "tensorflow.serving.ModelService" in listed


def test_new_version_is_served_and_old_one_unloaded_while_serving(
    servable_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    base = tmp_path / "deeplab"
    copy_version(servable_base / "1", base / "1")
    poll = 0.5
    server = start_modelserver(
        "--model_name=deeplab", f"--model_base_path={base}", f"--file_system_poll_wait_seconds={poll}"
    )
    try:
        client = Client(server.target)
        image = rgb("chelsea.png")
        assert client.predict(image).model_spec.version.value == 1
        copy_version(servable_base / "1", base / "2")
        # Within the poll interval plus the model's load time (under a second here).
        waited = wait_for(lambda: client.predict(image).model_spec.version.value == 2, timeout=poll + 10)
        assert waited < poll + 10
        wait_for(lambda: client.status()[1].state == END, timeout=5)
        assert client.status()[2].state == AVAILABLE
        shutil.rmtree(base / "2")
        # With version 2 gone from disk, it is unloaded; version 1 is back as the latest on disk.
        wait_for(lambda: client.predict(image).model_spec.version.value == 1, timeout=poll + 10)
    finally:
        assert server.stop() == 0, server.output()


def test_sigterm_stops_the_server_cleanly(servable_base: pathlib.Path) -> None:
    server = start_modelserver("--model_name=deeplab", f"--model_base_path={servable_base}")
    start = time.monotonic()
    assert server.stop() == 0, server.output()
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "either --model_config_file or --model_base_path must be given"),
        (["--model_config_file=/nonexistent/models.config"], "cannot read --model_config_file"),
        (["--model_base_path=/m", "--grpc_channel_arguments=grpc.a=1,age"], "'age' is not key=value"),
    ],
    ids=["no-model", "missing-config", "channel-arguments"],
)
def test_bad_flags_fail_with_one_line(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelserver", *flags], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("modelserver: error: ") and message in last


def test_grpc_channel_arguments_are_passed_as_tf_serving_parses_them() -> None:
    flags = ["--model_base_path=/m", "--grpc_channel_arguments=grpc.max_connection_age_ms=300000,grpc.lb_policy_name=x"]
    assert parse_options(flags).grpc_channel_arguments == (
        ("grpc.max_connection_age_ms", 300000),
        ("grpc.lb_policy_name", "x"),
    )
