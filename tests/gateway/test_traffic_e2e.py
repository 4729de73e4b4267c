"""A/B split, shadow traffic and reload end to end: modelserver with versions 1 and 2 labelled stable and canary,
the gateway configured by the shipped examples, SIGHUP under load."""

from __future__ import annotations

import pathlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from tests import images
from tests.helpers import ServerProcess, copy_version, start_gateway, start_modelserver, wait_for_health
from tests.paths import LABELS, ROOT

SERVING = health_pb2.HealthCheckResponse.SERVING
VERSION_OF = {"stable": 1, "canary": 2}


def example(name: str, target: str, directory: pathlib.Path) -> pathlib.Path:
    """A shipped example config, pointed at a test's modelserver and the shared labels."""
    text = (ROOT / "examples" / name).read_text()
    assert 'targets = ["localhost:8500"]' in text
    text = text.replace('targets = ["localhost:8500"]', f'targets = ["{target}"]')
    text = text.replace('"../../shared/models/deeplabv3_mnv2_pascal/labels.txt"', f'"{LABELS}"')
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def two_versions(servable_base: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """modelserver serving deeplab versions 1 and 2 (the same weights) with labels stable -> 1, canary -> 2."""
    base = tmp_path_factory.mktemp("versions") / "deeplab"
    copy_version(servable_base / "1", base / "1")
    copy_version(servable_base / "1", base / "2")
    config = base.parent / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "deeplab" base_path: "{base}" model_platform: "tensorflow"\n'
        "  model_version_policy { specific { versions: 1 versions: 2 } }\n"
        '  version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }\n'
    )
    # Labels in the first config need TF Serving's flag: without it, labels may only name versions already loaded.
    server = start_modelserver(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models=true")
    yield server
    server.stop()


def segment(stub: pb_grpc.SegmentationServiceStub, key: str) -> pb.SegmentImageResponse:
    request = pb.SegmentImageRequest(image=images.jpeg("chelsea.png"), mask_format=pb.MASK_FORMAT_RLE)
    return stub.SegmentImage(request, metadata=(("x-routing-key", key),), timeout=30)


def test_ab_split_shares_stickiness_and_a_reload_under_load(
    two_versions: ServerProcess, tmp_path: pathlib.Path
) -> None:
    config = example("ab-split.toml", two_versions.target, tmp_path)
    gateway = start_gateway(None, f"--config={config}")
    try:
        wait_for_health(gateway.target, SERVING)
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            answers = {f"user-{i}": segment(stub, f"user-{i}") for i in range(300)}
            shares = Counter(a.model.variant for a in answers.values())
            assert all(a.model.version == VERSION_OF[a.model.variant] for a in answers.values())
            # 10% of 300: 30 expected, sd 5.2.
            assert 30 - 4 * 5.2 < shares["canary"] < 30 + 4 * 5.2, shares
            for key in list(answers)[:30]:
                assert segment(stub, key).model.variant == answers[key].model.variant
            # A caller may name the variant itself (the web page's picker does).
            chosen = pb.SegmentImageRequest(
                image=images.jpeg("chelsea.png"),
                mask_format=pb.MASK_FORMAT_RLE,
                model=pb.ModelSelector(variant="canary"),
            )
            canary = stub.SegmentImage(chosen, metadata=(("x-routing-key", "user-0"),), timeout=30).model
            assert (canary.variant, canary.version) == ("canary", VERSION_OF["canary"])
            split = stub.ListModels(pb.ListModelsRequest(), timeout=10).models[0].variants
            assert [(v.name, v.weight, v.version_label) for v in split] == [
                ("stable", 90, "stable"),
                ("canary", 10, "canary"),
            ]

            failures = _reload_under_load(gateway, stub, config)
            assert not failures, failures[:3]
            assert {segment(stub, key).model.variant for key in list(answers)[:50]} == {"canary"}

            config.write_text(config.read_text() + "\n[[models.variants]]\nname = 'no-weight'\n")
            gateway.process.send_signal(signal.SIGHUP)
            _wait_for_log(gateway, "config reload (SIGHUP) refused")
            assert "models[0].variants[2]: needs a weight" in gateway.output()
            assert segment(stub, "user-1").model.variant == "canary"
    finally:
        assert gateway.stop() == 0, gateway.output()


def _wait_for_log(gateway: ServerProcess, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in gateway.output():
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.05)


def _reload_under_load(
    gateway: ServerProcess, stub: pb_grpc.SegmentationServiceStub, config: pathlib.Path
) -> list[grpc.RpcError]:
    """Moves all the weight to canary and sends SIGHUP while four clients call; returns the calls that failed."""
    failures: list[grpc.RpcError] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                segment(stub, f"load-{worker}-{i}")
            except grpc.RpcError as exc:
                failures.append(exc)
            i += 1

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1)
        config.write_text(config.read_text().replace("weight = 90", "weight = 0"))
        gateway.process.send_signal(signal.SIGHUP)
        _wait_for_log(gateway, "config reloaded (SIGHUP)")
        time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    return failures


def test_shadow_traffic_is_compared_and_reported(two_versions: ServerProcess, tmp_path: pathlib.Path) -> None:
    gateway = start_gateway(None, f"--config={example('shadow.toml', two_versions.target, tmp_path)}")
    try:
        wait_for_health(gateway.target, SERVING)
        with grpc.insecure_channel(gateway.target) as channel:
            stub = pb_grpc.SegmentationServiceStub(channel)
            answers = [segment(stub, f"user-{i}") for i in range(60)]
            assert {(a.model.variant, a.model.version) for a in answers} == {("stable", 1)}
            # Shadow requests end in the background: wait until the figures stop moving.
            deadline, previous = time.monotonic() + 30, -1
            while True:
                shadow = stub.ListModels(pb.ListModelsRequest(), timeout=10).models[0].shadow
                done = shadow.compared + shadow.dropped + shadow.failed + shadow.skipped
                if (done and done == previous) or time.monotonic() > deadline:
                    break
                previous = done
                time.sleep(0.5)
            # 20% of 60: 12 expected; versions 1 and 2 have the same weights, so they agree exactly.
            assert (shadow.variant, shadow.percent) == ("canary", 20.0)
            assert shadow.compared >= 1 and shadow.failed == 0
            assert shadow.pixel_agreement == 1.0 and shadow.mean_iou == 1.0
    finally:
        assert gateway.stop() == 0, gateway.output()
