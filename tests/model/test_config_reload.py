"""--model_config_file_poll_wait_seconds and ModelService.HandleReloadConfigRequest: models added and removed,
version policies and labels changed, as TF Serving's ServerCore::ReloadConfig applies them (see
modelserver/registry.py for the sources)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2

from tests.helpers import ServerProcess, copy_version, start_modelserver, wait_for
from tests.images import rgb
from tests.model.client import Client

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END
REFUSED_LABEL = "Request to assign label to version {version} of model deeplab, which is not currently available"


def _config(models: dict[str, pathlib.Path], versions: dict[str, list[int]], labels: dict[str, int]) -> str:
    """A model_config_list: each model with a `specific` policy; the labels are deeplab's."""
    entries = []
    for name, base in models.items():
        policy = " ".join(f"versions: {v}" for v in versions.get(name, []))
        entry = f'name: "{name}" base_path: "{base}" model_platform: "tensorflow"'
        if policy:
            entry += f" model_version_policy {{ specific {{ {policy} }} }}"
        if name == "deeplab":
            entry += "".join(f' version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
        entries.append(f"config {{ {entry} }}")
    return "model_config_list { " + " ".join(entries) + " }"


def _write(path: pathlib.Path, text: str) -> None:
    """Replaces the file at once, so that the poller never reads half of it."""
    staging = path.with_suffix(".tmp")
    staging.write_text(text)
    staging.rename(path)


def _versions(client: Client, model: str = "deeplab") -> dict[int, int]:
    """Each version's state; none while the server has never seen the model."""
    try:
        return {version: status.state for version, status in client.status(model).items()}
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return {}


def _served_version(client: Client, model: str = "deeplab", **spec: object) -> int:
    return client.predict(rgb("chelsea.png")[:64, :64], model=model, **spec).model_spec.version.value  # type: ignore[arg-type]


def _error(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.fixture
def bases(servable_base: pathlib.Path, tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    """deeplab with versions 1 and 2 on disk, other with version 5."""
    for version in (1, 2):
        copy_version(servable_base / "1", tmp_path / "deeplab" / str(version))
    copy_version(servable_base / "1", tmp_path / "other" / "5")
    return {"deeplab": tmp_path / "deeplab", "other": tmp_path / "other"}


def test_a_rollout_through_the_polled_config_file(bases: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    config = tmp_path / "models.config"
    deeplab = {"deeplab": bases["deeplab"]}
    _write(config, _config(deeplab, {"deeplab": [1]}, {}))
    server = start_modelserver(
        f"--model_config_file={config}",
        "--model_config_file_poll_wait_seconds=0.5",
        "--file_system_poll_wait_seconds=0.5",
    )
    try:
        client = Client(server.target)
        assert _versions(client) == {1: AVAILABLE}

        # Version 2 and a label for it in one change: the label names a version that is not AVAILABLE, so the
        # whole reload is refused, and the new policy with it.
        _write(config, _config(deeplab, {"deeplab": [1, 2]}, {"canary": 2}))
        wait_for(lambda: REFUSED_LABEL.format(version=2) in server.output(), timeout=20)
        time.sleep(1.5)  # more polls: still refused, still nothing loaded
        assert _versions(client) == {1: AVAILABLE}
        error = _error(lambda: _served_version(client, label="canary"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Unrecognized servable version label: canary" in error.details()

        # TF Serving's way: first the version...
        _write(config, _config(deeplab, {"deeplab": [1, 2]}, {}))
        wait_for(lambda: _versions(client).get(2) == AVAILABLE, timeout=20)
        assert _served_version(client) == 2
        # ... then the labels.
        _write(config, _config(deeplab, {"deeplab": [1, 2]}, {"stable": 1, "canary": 2}))
        wait_for(lambda: _labels_work(client, {"stable": 1, "canary": 2}), timeout=20)

        # A new model loads; the labels stay.
        both = {**deeplab, "other": bases["other"]}
        _write(config, _config(both, {"deeplab": [1, 2]}, {"stable": 1, "canary": 2}))
        wait_for(lambda: _versions(client, "other").get(5) == AVAILABLE, timeout=20)
        assert _served_version(client, model="other") == 5

        # stable moves to 2 and version 1 leaves the policy: 1 is unloaded at the next file-system poll.
        _write(config, _config(both, {"deeplab": [2]}, {"stable": 2, "canary": 2}))
        wait_for(lambda: _versions(client) == {1: END, 2: AVAILABLE}, timeout=20)
        assert _labels_work(client, {"stable": 2, "canary": 2})
        error = _error(lambda: _served_version(client, version=1))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "Servable not found for request: Specific(deeplab, 1)" in error.details()

        # A model removed from the config is unloaded; its versions are still reported, as TF Serving's monitor
        # keeps them.
        _write(config, _config(deeplab, {"deeplab": [2]}, {"stable": 2}))
        wait_for(lambda: _versions(client, "other") == {5: END}, timeout=20)
        error = _error(lambda: _served_version(client, model="other"))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "Servable not found for request: Latest(other)" in error.details()
        assert _error(lambda: _served_version(client, label="canary")).code() == grpc.StatusCode.INVALID_ARGUMENT

        # A file that does not parse is logged; the running config stays.
        _write(config, "model_config_list { this is not a config")
        wait_for(lambda: "Failed to read ModelServerConfig file" in server.output(), timeout=20)
        assert _served_version(client, label="stable") == 2
    finally:
        assert server.stop() == 0, server.output()


def _labels_work(client: Client, labels: dict[str, int]) -> bool:
    try:
        return all(_served_version(client, label=label) == version for label, version in labels.items())
    except grpc.RpcError:
        return False


def _reload(client: Client, text: str) -> model_management_pb2.ReloadConfigResponse:
    request = model_management_pb2.ReloadConfigRequest()
    if text:
        text_format.Parse(text, request.config)
    return client.models.HandleReloadConfigRequest(request, timeout=60)


@pytest.fixture
def reloadable(bases: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> ServerProcess:
    config = tmp_path / "models.config"
    _write(config, _config({"deeplab": bases["deeplab"]}, {"deeplab": [1]}, {}))
    return start_modelserver(
        f"--model_config_file={config}",
        "--file_system_poll_wait_seconds=0.5",
        "--max_num_load_retries=0",
        "--allow_version_labels_for_unavailable_models=true",
    )


def test_handle_reload_config_request_and_labels_for_unavailable_versions(
    reloadable: ServerProcess, bases: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    client = Client(reloadable.target)
    deeplab = {"deeplab": bases["deeplab"]}
    try:
        # With the flag, a new label may name a version that is not loaded yet; it serves once the version is.
        assert _reload(client, _config(deeplab, {"deeplab": [1, 2]}, {"stable": 1, "canary": 2})).status.error_code == 0
        wait_for(lambda: _labels_work(client, {"stable": 1, "canary": 2}), timeout=20)

        # But a label that exists may only move to an AVAILABLE version, flag or not.
        error = _error(lambda: _reload(client, _config(deeplab, {"deeplab": [1, 2, 3]}, {"stable": 3, "canary": 2})))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.details().startswith(REFUSED_LABEL.format(version=3))
        assert _labels_work(client, {"stable": 1, "canary": 2})

        # A new model: the call returns once it is loaded.
        assert (
            _reload(client, _config({**deeplab, "other": bases["other"]}, {"deeplab": [1, 2]}, {})).status.error_code
            == 0
        )
        assert _served_version(client, model="other") == 5

        # A new model that cannot load: the reload fails as TF Serving's does, naming it.
        broken = tmp_path / "broken" / "1"
        broken.mkdir(parents=True)
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        error = _error(lambda: _reload(client, _config({**deeplab, "broken": broken.parent}, {"deeplab": [1, 2]}, {})))
        assert error.code() == grpc.StatusCode.UNKNOWN
        assert error.details().startswith(
            "1 model(s) did not become available: {{{name: broken version: 1} due to error: "
        )
    finally:
        assert reloadable.stop() == 0, reloadable.output()


@pytest.fixture(scope="module")
def unchanging(servable_base: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("unchanging") / "models.config"
    _write(config, _config({"deeplab": servable_base}, {}, {}))
    server = start_modelserver(f"--model_config_file={config}")
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (
            "",
            grpc.StatusCode.INVALID_ARGUMENT,
            "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently "
            "supported",
        ),
        (
            'model_config_list { config { name: "deeplab" base_path: "/m" model_platform: "tensorflow" } '
            'config { name: "deeplab" base_path: "/n" model_platform: "tensorflow" } }',
            grpc.StatusCode.INVALID_ARGUMENT,
            "Illegal to list model deeplab multiple times in config list",
        ),
        (
            'model_config_list { config { name: "deeplab" base_path: "/m" model_platform: "tflite" } }',
            grpc.StatusCode.INVALID_ARGUMENT,
            "Illegal to change a model's platform. For model deeplab platform was tensorflow and new platform "
            "requested is tflite",
        ),
        (
            'model_config_list { config { name: "other" base_path: "/m" model_platform: "tflite" } }',
            grpc.StatusCode.INVALID_ARGUMENT,
            "Model other requests unsupported platform tflite",
        ),
    ],
    ids=["not-a-list", "duplicate-name", "platform-change", "unsupported-platform"],
)
def test_refused_reloads_change_nothing(
    unchanging: ServerProcess, config: str, code: grpc.StatusCode, message: str
) -> None:
    client = Client(unchanging.target)
    error = _error(lambda: _reload(client, config))
    assert (error.code(), error.details()) == (code, message)
    assert _versions(client) == {1: AVAILABLE}
    assert _served_version(client) == 1
