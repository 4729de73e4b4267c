"""Reloading the configuration in-process over fake backends: new calls follow it, calls in flight do not."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import pytest

from segmentation.v1 import segmentation_service_pb2 as pb
from service import reload_failures
from service.config import BackendConfig, Config
from service.flags import load_config
from service.reload import ConfigReloader
from tests import images
from tests.fakes import FakeBackend
from tests.inprocess import Running, running, split

IMAGE = images.png("chelsea.png")


TWO_BACKENDS = (BackendConfig("a", ("fake:1",)), BackendConfig("b", ("fake:2",)))


def config_with(*models, backends=TWO_BACKENDS) -> Config:  # type: ignore[no-untyped-def]
    return Config(
        listen="127.0.0.1:0", backends=backends, models=models, default_model=models[0].name, predict_timeout_s=0.2
    )


def variant_of(stub, key: str) -> str:  # type: ignore[no-untyped-def]
    response = stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), metadata=(("x-routing-key", key),), timeout=10)
    return response.model.variant


def test_a_new_config_routes_new_calls_and_calls_in_flight_finish_on_the_old_one() -> None:
    backends = {"a": FakeBackend(name="a"), "b": FakeBackend(name="b")}
    with running(config_with(split(100, 0)), backends) as served, ThreadPoolExecutor(1) as pool:
        assert {variant_of(served.stub, f"k{i}") for i in range(20)} == {"stable"}
        backends["a"].delay_s = 0.5
        in_flight = pool.submit(served.stub.SegmentImage, pb.SegmentImageRequest(image=IMAGE), timeout=10)
        time.sleep(0.2)
        # The model is renamed: new calls to "deeplab" are NOT_FOUND, the call in flight still succeeds.
        renamed = split(0, 100, name="segmenter")
        served.run(served.gateway.apply(config_with(renamed)))
        assert in_flight.result(10).model.name == "deeplab"
        backends["a"].delay_s = 0
        with pytest.raises(grpc.RpcError) as error:
            served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE, model=pb.ModelSelector(name="deeplab")))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND and "configured: segmenter" in error.value.details()
        response = served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=10)
        assert (response.model.name, response.model.variant) == ("segmenter", "canary")


def test_a_changed_backend_gets_a_new_channel_and_the_old_one_is_closed_after_its_calls() -> None:
    first, second = FakeBackend(name="a", target="fake:1"), FakeBackend(name="a", target="fake:9")
    made = iter([first, second])
    config = config_with(split(50, 50), backends=(BackendConfig("a", ("fake:1",)),))
    config = replace(config, predict_timeout_s=5.0)
    with running(config, {"a": first}) as served, ThreadPoolExecutor(2) as pool:
        served.gateway.make_backend = lambda backend: next(made)
        next(made)  # the first was made at start
        unchanged = replace(config, max_concurrent_calls=3)
        served.run(served.gateway.apply(unchanged))
        assert served.gateway.router.backends["a"] is first  # same settings: the same channel

        # In flight on the old channel when the target changes: a slow call, and a stream that goes on sending
        # for longer than the predict timeout.
        first.delay_s = 0.3
        slow = pool.submit(served.stub.SegmentImage, pb.SegmentImageRequest(image=IMAGE), timeout=30)
        sent_late = threading.Event()

        def items() -> Iterator[pb.SegmentImageStreamRequest]:
            yield pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=IMAGE))
            time.sleep(1.0)
            sent_late.set()
            yield pb.SegmentImageStreamRequest(request=pb.SegmentImageRequest(image=IMAGE))

        stream = pool.submit(lambda: list(served.stub.SegmentImageStream(items(), timeout=30)))
        time.sleep(0.1)
        moved = replace(config, backends=(BackendConfig("a", ("fake:9",)),))
        served.run(served.gateway.apply(moved))
        assert served.gateway.router.backends["a"] is second and not first.closed
        served.stub.SegmentImage(pb.SegmentImageRequest(image=IMAGE), timeout=10)
        assert second.calls

        assert slow.result(30).model.name == "deeplab"
        answers = stream.result(30)
        assert sent_late.is_set() and [a.WhichOneof("outcome") for a in answers] == ["result", "result"], answers
        assert len(first.calls) == 3  # the slow call and both stream items, all on the old channel
        deadline = time.monotonic() + 5
        while not first.closed:  # once its last call has ended
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _write(path: pathlib.Path, stable: int, canary: int, extra: str = "") -> None:
    path.write_text(
        '[[backends]]\nname = "a"\ntargets = ["fake:1"]\n[[models]]\nname = "deeplab"\n'
        f'[[models.variants]]\nname = "stable"\nversion_label = "stable"\nweight = {stable}\n'
        f'[[models.variants]]\nname = "canary"\nversion_label = "canary"\nweight = {canary}\n{extra}'
    )


@contextlib.contextmanager
def _reloading(path: pathlib.Path) -> Iterator[tuple[Running, ConfigReloader, dict[str, FakeBackend]]]:
    """A gateway over a fake backend "a", configured by `path` (a 100/0 split at first), and its reloader."""
    _write(path, 100, 0)
    argv = ["--config", str(path), "--listen", "127.0.0.1:0"]
    backends = {"a": FakeBackend(name="a")}
    with running(load_config(argv, {}), backends) as served:
        yield served, ConfigReloader(served.gateway, lambda: load_config(argv, {})), backends


def test_reloads_from_the_file_good_bad_and_under_load_without_a_failed_call(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gateway.toml"
    with _reloading(path) as (served, reloader, _):
        failures: list[Exception] = []
        seen: list[str] = []
        stop = threading.Event()

        def load() -> None:
            i = 0
            while not stop.is_set():
                try:
                    seen.append(variant_of(served.stub, f"user-{i}"))
                except grpc.RpcError as exc:
                    failures.append(exc)
                i += 1

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            for stable, canary in ((0, 100), (100, 0), (50, 50), (0, 100)):
                time.sleep(0.2)
                _write(path, stable, canary)
                assert served.run(reloader.reload("test"))
            time.sleep(0.2)
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
        assert not failures and len(seen) > 20 and {"stable", "canary"} <= set(seen)
        assert {variant_of(served.stub, f"after-{i}") for i in range(20)} == {"canary"}

        _write(path, 100, 0, extra="[[models.variants]]\nname = 'broken'\n")
        failed_before = reload_failures.counts()["config"]
        with caplog.at_level(logging.ERROR, logger="service"):
            assert not served.run(reloader.reload("SIGHUP"))
        assert reload_failures.counts()["config"] == failed_before + 1  # for the alert on reloads failing
        assert reload_failures.unreadable()["config"]
        (refusal,) = [r for r in caplog.records if r.levelno >= logging.ERROR]  # one record, of one line
        assert "\n" not in refusal.getMessage()
        assert "config reload (SIGHUP) refused, the running configuration stays" in refusal.getMessage()
        assert "models[0].variants[2]: needs a weight" in refusal.getMessage()
        assert {variant_of(served.stub, f"after-{i}") for i in range(20)} == {"canary"}
        _write(path, 100, 0)
        assert served.run(reloader.reload("SIGHUP"))
        assert not reload_failures.unreadable()["config"]


def test_config_poll_applies_a_changed_file_and_outlives_a_failing_apply(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gateway.toml"
    with _reloading(path) as (served, reloader, backends):
        served.run(_start_polling(reloader, str(path), 0.05))
        try:
            _write(path, 0, 100)
            _wait_until(lambda: variant_of(served.stub, "k") == "canary")
            # A configuration that loads but cannot be applied is refused; the poller goes on.
            served.gateway.make_backend = _refuse
            _write(path, 100, 0)
            path.write_text(path.read_text().replace('"fake:1"', '"fake:2"'))  # a new target: a new channel
            _wait_until(lambda: "config reload" in caplog.text and "failed" in caplog.text)
            assert variant_of(served.stub, "k") == "canary"
            served.gateway.make_backend = lambda backend: backends.setdefault(backend.name, FakeBackend(backend.name))
            _write(path, 100, 0)
            _wait_until(lambda: variant_of(served.stub, "k") == "stable")
        finally:
            reloader.stop()


async def _start_polling(reloader: ConfigReloader, path: str, interval_s: float) -> None:
    reloader.start_polling(path, interval_s)


def _refuse(backend: BackendConfig) -> FakeBackend:
    raise RuntimeError(f"cannot make a channel to {backend.targets}")


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_renewed_backend_certificate_gets_a_new_channel_at_the_next_reload(tmp_path: pathlib.Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("the first CA\n")
    backend = BackendConfig("a", ("fake:1",), ca=str(ca))
    config = config_with(split(100, 0), backends=(backend,))
    first = FakeBackend(name="a")
    with running(config, {"a": first}) as served:
        served.gateway.make_backend = lambda b: FakeBackend(name=b.name)
        served.run(served.gateway.apply(config))
        assert served.gateway.router.backends["a"] is first  # nothing changed: the same channel
        ca.write_text("the renewed CA, same path\n")
        served.run(served.gateway.apply(config))
        assert served.gateway.router.backends["a"] is not first
