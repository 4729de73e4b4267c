"""OpenTelemetry traces, off unless configured (`tracing = "otlp"` or `"console"`).

A server span per call, continuing the caller's trace when it sends `traceparent`; under it a span per image, with
a client span for the Predict (its context sent on to the backend in `traceparent`) and one span per CPU stage. The
CPU stages run in worker threads and are timed there; their spans are written afterwards from those times, so
tracing adds no work to the image threads. The opentelemetry packages (the `tracing` extra) are imported only when
tracing is on: off, it costs a None check per call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

EXPORTERS = ("otlp", "console")
SERVICE_NAME = "deeplab-gateway"


class _Current:
    """The process's tracer and its provider; no tracer: tracing is off."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_current = _Current()


def start(exporter: str, sample_ratio: float) -> None:
    """Turns tracing on with `exporter` ("otlp": OTLP over gRPC, set by the OTEL_EXPORTER_OTLP_* variables;
    "console": spans printed as JSON), sampling `sample_ratio` of the traces that callers did not decide on."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: PLC0415

    span_exporter: SpanExporter
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        span_exporter = OTLPSpanExporter()
    else:
        span_exporter = ConsoleSpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    use(provider)


def use(provider: TracerProvider | None) -> None:
    """Traces to `provider` from now on (tests pass one with an in-memory exporter); None turns tracing off."""
    _current.provider = provider
    _current.tracer = provider.get_tracer(__name__) if provider is not None else None


def stop() -> None:
    """Sends the spans not yet exported; tracing is off afterwards."""
    provider = _current.provider
    use(None)
    if provider is not None:
        provider.shutdown()


def on() -> bool:
    return _current.tracer is not None


@contextlib.contextmanager
def call_span(method: str, metadata: Sequence[tuple[str, Any]]) -> Iterator[Span | None]:
    """The span of one call to `method` (e.g. "SegmentImage"), the current span while it runs."""
    tracer = _current.tracer
    if tracer is None:
        yield None
        return
    from opentelemetry import propagate  # noqa: PLC0415
    from opentelemetry.trace import SpanKind  # noqa: PLC0415

    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    attributes = {"rpc.system": "grpc", "rpc.service": "segmentation.v1.SegmentationService", "rpc.method": method}
    with tracer.start_as_current_span(
        f"segmentation.v1.SegmentationService/{method}",
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        attributes=attributes,
    ) as span:
        yield span


def end_call(span: Span | None, code_name: str, code_number: int) -> None:
    """Records how the call ended on its span."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    span.set_attribute("rpc.grpc.status_code", code_number)
    if code_name != "OK":
        span.set_status(Status(StatusCode.ERROR, code_name))


@contextlib.contextmanager
def span(name: str, client: bool = False, **attributes: str | int) -> Iterator[Span | None]:
    """A child of the current span (a client span for a call to another service), current while it runs."""
    tracer = _current.tracer
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind  # noqa: PLC0415

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def record_stages(stages: Iterable[tuple[str, int, int]]) -> None:
    """Child spans of the current span for stages that ran elsewhere: (name, start in perf_counter_ns, µs)."""
    tracer = _current.tracer
    if tracer is None:
        return
    to_epoch = time.time_ns() - time.perf_counter_ns()
    for name, start_ns, duration_us in stages:
        begin = start_ns + to_epoch
        tracer.start_span(name, start_time=begin).end(end_time=begin + duration_us * 1000)


def inject(metadata: list[tuple[str, str]]) -> None:
    """Adds the current span's context (`traceparent`) to an outgoing call's metadata."""
    if _current.tracer is None:
        return
    from opentelemetry import propagate  # noqa: PLC0415

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata.extend(carrier.items())
