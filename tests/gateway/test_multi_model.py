"""Several models end to end: two models at one modelserver, two modelservers as two backends, round robin."""

from __future__ import annotations

import pathlib
import signal
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests import images
from tests.helpers import (
    SERVICE,
    ServerProcess,
    free_port,
    start_gateway,
    start_modelserver,
    wait_for,
    wait_for_health,
)
from tests.paths import CAT, LABELS, PERSON, ROOT

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
EXAMPLE = ROOT / "examples" / "multi-model.toml"


def example_config(tmp_path: pathlib.Path, target: str) -> pathlib.Path:
    """examples/multi-model.toml as shipped, pointed at a test's modelserver and the shared labels."""
    text = EXAMPLE.read_text()
    assert text.count('targets = ["localhost:8500"]') == 1 and text.count('"../../shared/models/') == 2
    text = text.replace('targets = ["localhost:8500"]', f'targets = ["{target}"]')
    text = text.replace('"../../shared/models/deeplabv3_mnv2_pascal/labels.txt"', f'"{LABELS}"')
    path = tmp_path / "multi-model.toml"
    path.write_text(text)
    return path


def models_config(tmp_path: pathlib.Path, **bases: pathlib.Path) -> str:
    """A TF Serving model config file serving each base path under its name (underscores become dashes)."""
    entries = "".join(
        f'config {{ name: "{name.replace("_", "-")}" base_path: "{base}" model_platform: "tensorflow" }}\n'
        for name, base in bases.items()
    )
    path = tmp_path / "models.config"
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return f"--model_config_file={path}"


@pytest.fixture(scope="module")
def both_models(
    servable_base: pathlib.Path, lite_base: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[pb_grpc.SegmentationServiceStub]:
    tmp_path = tmp_path_factory.mktemp("multi")
    flags = models_config(tmp_path, deeplab=servable_base, deeplab_lite=lite_base)
    modelserver = start_modelserver(flags, "--prefer_tflite_model=true")
    gateway = start_gateway(None, f"--config={example_config(tmp_path, modelserver.target)}")
    try:
        for name in (SERVICE, f"{SERVICE}/deeplab", f"{SERVICE}/deeplab-lite"):
            wait_for_health(gateway.target, SERVING, service=name)
        with grpc.insecure_channel(gateway.target) as channel:
            yield pb_grpc.SegmentationServiceStub(channel)
    finally:
        assert gateway.stop() == 0, gateway.output()
        modelserver.stop()


def test_list_models_shows_both_models_at_their_backend(both_models: pb_grpc.SegmentationServiceStub) -> None:
    models = both_models.ListModels(pb.ListModelsRequest(), timeout=10).models
    assert [(m.name, m.is_default, m.backend, m.served_name) for m in models] == [
        ("deeplab", True, "local", "deeplab"),
        ("deeplab-lite", False, "local", "deeplab-lite"),
    ]
    assert [(v.version, v.state) for m in models for v in m.versions] == [(1, pb.MODEL_VERSION_STATE_AVAILABLE)] * 2
    assert (models[1].input_size, models[1].input_width, models[1].input_height) == (257, 257, 257)
    assert models[1].labels[PERSON] == "person"


def _person_percent(stub: pb_grpc.SegmentationServiceStub, model: str) -> tuple[float, pb.SegmentImageResponse]:
    request = pb.SegmentImageRequest(image=images.png("astronaut.png"), model=pb.ModelSelector(name=model))
    response = stub.SegmentImage(request, timeout=60)
    person = next(c for c in response.classes if c.class_id == PERSON)
    return 100 * person.fraction, response


def test_both_models_find_the_person_within_2_points(both_models: pb_grpc.SegmentationServiceStub) -> None:
    zoo, zoo_response = _person_percent(both_models, "")
    lite, lite_response = _person_percent(both_models, "deeplab-lite")
    assert zoo_response.model.name == "deeplab" and lite_response.model.name == "deeplab-lite"
    assert zoo_response.classes[0].label == lite_response.classes[0].label == "background"
    assert 35 < zoo < 55 and abs(zoo - lite) <= 2, (zoo, lite)
    # The lite model's 257x257 mask comes back at the photo's size, like the other's.
    assert (lite_response.mask.width, lite_response.mask.height) == (512, 512)
    cat = both_models.SegmentImage(
        pb.SegmentImageRequest(image=images.jpeg("chelsea.png"), model=pb.ModelSelector(name="deeplab-lite")),
        timeout=60,
    )
    assert cat.classes[0].class_id == CAT or cat.classes[1].class_id == CAT


def test_two_modelservers_as_two_backends_fail_apart(
    servable_base: pathlib.Path, lite_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    zoo_server = start_modelserver("--model_name=deeplab", f"--model_base_path={servable_base}")
    lite_server = start_modelserver(
        "--model_name=deeplab-lite", f"--model_base_path={lite_base}", "--prefer_tflite_model=true"
    )
    config = example_config(tmp_path, zoo_server.target)
    # The lite model moves to a backend of its own.
    text = config.read_text().replace('backend = "local"\ninput_key = "sub_7"', 'backend = "lite"\ninput_key = "sub_7"')
    text += f'\n[[backends]]\nname = "lite"\ntargets = ["{lite_server.target}"]\n'
    config.write_text(text)
    gateway = start_gateway(None, f"--config={config}")
    try:
        wait_for_health(gateway.target, SERVING, service=f"{SERVICE}/deeplab-lite")
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            models = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
            assert [(m.name, m.backend) for m in models] == [("deeplab", "local"), ("deeplab-lite", "lite")]
            image = images.png("astronaut.png")
            for name in ("deeplab", "deeplab-lite"):
                stub.SegmentImage(pb.SegmentImageRequest(image=image, model=pb.ModelSelector(name=name)), timeout=60)

            assert lite_server.stop(signal.SIGKILL) != 0
            with pytest.raises(grpc.RpcError) as error:
                request = pb.SegmentImageRequest(image=image, model=pb.ModelSelector(name="deeplab-lite"))
                stub.SegmentImage(request, timeout=60)
            # The caller is told no address; the gateway's log has it, under the call's request id.
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE and lite_server.target not in error.value.details()
            request_id = error.value.details().rsplit(" ", 1)[1].rstrip(")")
            wait_for(lambda: any(request_id in line and lite_server.target in line for line in gateway.lines), 5)
            wait_for_health(gateway.target, NOT_SERVING, timeout=10, service=f"{SERVICE}/deeplab-lite")
            # The default model's backend is untouched: it answers, and the service stays SERVING.
            assert stub.SegmentImage(pb.SegmentImageRequest(image=image), timeout=60).model.name == "deeplab"
            wait_for_health(gateway.target, SERVING, timeout=1, service=SERVICE)
            wait_for_health(gateway.target, SERVING, timeout=1, service=f"{SERVICE}/deeplab")
    finally:
        assert gateway.stop() == 0, gateway.output()
        zoo_server.stop()
        lite_server.stop()


def test_round_robin_backend_keeps_serving_when_one_target_dies_and_takes_it_back(
    servable_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    flags = ("--model_name=deeplab", f"--model_base_path={servable_base}")
    ports = [free_port(), free_port()]
    servers: list[ServerProcess] = [start_modelserver(*flags, port=port) for port in ports]
    config = tmp_path / "rr.toml"
    config.write_text(
        f'[[backends]]\nname = "pair"\ntargets = ["127.0.0.1:{ports[0]}", "127.0.0.1:{ports[1]}"]\n'
        f'[[models]]\nname = "deeplab"\nlabels = "{LABELS}"\n'
    )
    gateway = start_gateway(None, f"--config={config}")
    request = pb.SegmentImageRequest(image=images.jpeg("chelsea.png"), mask_format=pb.MASK_FORMAT_RLE)

    def all_succeed(count: int) -> None:
        for _ in range(count):
            assert stub.SegmentImage(request, timeout=30).classes[0].label in ("cat", "background")

    def kill_under_load(server: ServerProcess) -> list[grpc.RpcError]:
        """SIGKILLs a target while four clients call; the calls that failed (gRPC retries those it can)."""
        failures: list[grpc.RpcError] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    stub.SegmentImage(request, timeout=30)
                except grpc.RpcError as exc:
                    failures.append(exc)

        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(1)
        server.stop(signal.SIGKILL)
        time.sleep(1)
        stop.set()
        for client in clients:
            client.join(30)
        return failures

    try:
        wait_for_health(gateway.target, SERVING)
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            all_succeed(10)
            # Calls in flight on the killed target are retried on the other (the request fits gRPC's retry
            # buffer); the dead target leaves the rotation.
            failures = kill_under_load(servers[0])
            assert not failures, [f.details() for f in failures]
            all_succeed(10)
            servers[0] = start_modelserver(*flags, port=ports[0])
            # Reconnection backoff is at most 1 s (backends/tfserving.py); then the target is back in rotation.
            time.sleep(2.5)
            failures = kill_under_load(servers[1])
            assert not failures, [f.details() for f in failures]
            all_succeed(10)  # only the restarted target is left: it came back by itself
    finally:
        assert gateway.stop() == 0, gateway.output()
        for server in servers:
            server.stop()
