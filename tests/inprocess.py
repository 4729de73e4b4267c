"""The gateway in-process over fake backends, and the models the in-process tests configure: the zoo model at
backend a, a fixed-size float model at backend b, and traffic splits between version labels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import grpc

from segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from service.app import Gateway, create_gateway
from service.config import BackendConfig, Config, ModelConfig, Shadow, Variant
from service.profiles import DEEPLAB_ZOO, InputDtype, OutputKind, Profile, ResizePolicy
from tests.fakes import FakeBackend, bright_is_person, scores_of

LITE = Profile(
    input_dtype=InputDtype.FLOAT32,
    input_offset=127.5,
    input_scale=127.5,
    resize=ResizePolicy.FIXED,
    width=257,
    height=257,
    output=OutputKind.SCORES,
)
ZOO_MODEL = ModelConfig(name="deeplab", backend="a", profile=DEEPLAB_ZOO)
LITE_MODEL = ModelConfig(
    name="deeplab-lite", backend="b", served_name="lite", input_key="sub_7", output_key="ResizeBilinear_3", profile=LITE
)
BASE = ModelConfig(name="deeplab", backend="a", profile=DEEPLAB_ZOO)


def split(stable: int, canary: int, shadow_percent: float = 0.0, name: str = "deeplab") -> ModelConfig:
    base = replace(BASE, name=name)
    variants = (
        Variant("stable", stable, replace(base, version_label="stable")),
        Variant("canary", canary, replace(base, version_label="canary")),
    )
    shadow = Shadow("canary", shadow_percent) if shadow_percent else None
    return replace(base, variants=variants, shadow=shadow)


T = TypeVar("T")


@dataclass
class Running:
    """A gateway running in-process: a stub for it, the Gateway, and a way to run coroutines on its loop."""

    stub: pb_grpc.SegmentationServiceStub
    gateway: Gateway
    target: str
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)


@contextmanager
def running(config: Config, backends: dict[str, FakeBackend] | None = None) -> Iterator[Running]:
    """A gateway on a loopback port, its event loop in a thread of this process, over the given fake backends
    (None: the configured TF Serving backends)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="gateway-loop")
    thread.start()

    async def start() -> Gateway:
        # Made on the loop that runs it, as grpc.aio requires.
        if backends is None:
            gateway = create_gateway(config)
        else:
            for fake in backends.values():  # a test may run fakes behind one gateway after another
                fake.closed = False
            gateway = create_gateway(config, lambda backend: backends[backend.name])
        await gateway.start()
        return gateway

    gateway = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    target = f"127.0.0.1:{gateway.port}"
    try:
        with grpc.insecure_channel(target) as channel:
            yield Running(pb_grpc.SegmentationServiceStub(channel), gateway, target, loop)
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def two_model_config(**settings: object) -> tuple[Config, dict[str, FakeBackend]]:
    config = Config(
        listen="127.0.0.1:0",
        backends=(BackendConfig("a", ("fake:1",)), BackendConfig("b", ("fake:2",))),
        models=(ZOO_MODEL, LITE_MODEL),
        default_model="deeplab",
        **settings,  # type: ignore[arg-type]
    )
    backends = {"a": FakeBackend(name="a"), "b": FakeBackend(name="b", answer=scores_of(bright_is_person))}
    return config, backends
