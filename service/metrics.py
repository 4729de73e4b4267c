"""Prometheus metrics (prometheus-client), in a registry of the gateway's own, served on --metrics-listen.

Label values are bounded: methods and status codes are gRPC's, models and variants come from the configuration
(a call for an unknown model is counted with model ""), backends too.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service import reload_failures

if TYPE_CHECKING:
    from service.admission import Places
    from service.shadow import ShadowRunner
    from service.stages import Timings

log = logging.getLogger(__name__)

# From 1 ms to 10 s: a stage of a small image up to a Predict at the default timeout's scale.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BYTES_BUCKETS = (1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 2e7, 5e7)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "segmentation_requests",
            "Calls by method, status code, and the model and variant they were routed to.",
            ["method", "code", "model", "variant"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "segmentation_request_seconds",
            "Call duration in the gateway, by method and model.",
            ["method", "model"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "segmentation_stage_seconds",
            "Time per pipeline stage of one image.",
            ["stage"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "segmentation_in_flight", "Images being worked on (calls and stream items).", registry=registry
        )
        self.waiting = Gauge(
            "segmentation_waiting", "Images waiting for a place to be worked on in.", registry=registry
        )
        self.backend_up = Gauge(
            "segmentation_backend_up",
            "1 while the backend answered the last model status check, else 0.",
            ["backend", "target", "kind"],
            registry=registry,
        )
        self.shed = Counter("segmentation_shed", "Calls refused by load shedding.", registry=registry)
        self.image_bytes = Histogram(
            "segmentation_image_bytes", "Size of the images received.", buckets=BYTES_BUCKETS, registry=registry
        )
        self.model_serving = Gauge(
            "segmentation_model_serving",
            "1 while the model is SERVING in the health service, else 0.",
            ["model"],
            registry=registry,
        )
        # process_resident_memory_bytes and the other process_* figures, and the limit they run into, for the
        # alert on memory near the container's limit.
        ProcessCollector(registry=registry)
        limit = memory_limit_bytes()
        if limit is not None:
            Gauge(
                "segmentation_memory_limit_bytes",
                "The memory limit of the gateway's cgroup (its container's), where it has one.",
                registry=registry,
            ).set(limit)
        registry.register(_ReloadFailures())

    def observe_stages(self, timings: Timings) -> None:
        for stage, us in timings.stages_us:
            self.stage_seconds.labels(stage).observe(us / 1e6)

    def watch_places(self, places: Places) -> None:
        self.in_flight.set_function(lambda: places.busy)
        self.waiting.set_function(lambda: places.waiting)

    def watch_shadows(self, shadows: ShadowRunner) -> None:
        self.registry.register(_ShadowCollector(shadows))

    def serve(self, address: str) -> tuple[int, Callable[[], None]]:
        """Serves /metrics on `address` (host:port; port 0 picks one) in a thread: the port, and what stops it."""
        host, _, port = address.rpartition(":")
        server, thread = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)
        bound = server.server_port
        log.info("metrics on http://%s:%d/metrics", host, bound)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        return bound, stop


def memory_limit_bytes(cgroup: pathlib.Path = pathlib.Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup (v2's memory.max, else v1's memory.limit_in_bytes); None without
    one ("max", or v1's near-2**63 for none)."""
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            text = (cgroup / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
        return None
    return None


class _ReloadFailures(Collector):
    """Files the gateway failed to take up again, by kind, read from service/reload_failures.py at each scrape."""

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "segmentation_file_reload_failures",
            "Changed files the gateway could not take up (it kept what it had): config, tls, credential files.",
            labels=["file"],
        )
        for kind, count in reload_failures.counts().items():
            family.add_metric([kind], count)
        unreadable = GaugeMetricFamily(
            "segmentation_file_unreadable",
            "1 while the latest change of the file is not taken up (the gateway runs on what it had), else 0.",
            labels=["file"],
        )
        for kind, still in reload_failures.unreadable().items():
            unreadable.add_metric([kind], 1 if still else 0)
        yield from (family, unreadable)

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _ShadowCollector(Collector):
    """The shadow figures, read from the ShadowRunner at each scrape."""

    def __init__(self, shadows: ShadowRunner) -> None:
        self._shadows = shadows

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "variant"]
        requests = CounterMetricFamily(
            "segmentation_shadow_requests", "Shadow requests by outcome.", labels=[*labels, "outcome"]
        )
        pixels = GaugeMetricFamily(
            "segmentation_shadow_pixel_agreement", "Mean share of equal mask pixels, shadow vs. answer.", labels=labels
        )
        iou = GaugeMetricFamily(
            "segmentation_shadow_mean_iou",
            "Mean IoU of the classes in either mask.",
            labels=labels,
        )
        for (model, variant), figures in list(self._shadows.stats.items()):
            for outcome in ("compared", "dropped", "failed", "skipped"):
                requests.add_metric([model, variant, outcome], getattr(figures, outcome))
            pixels.add_metric([model, variant], figures.pixel_agreement)
            iou.add_metric([model, variant], figures.mean_iou)
        yield from (requests, pixels, iou)

    def describe(self) -> Iterator[Metric]:
        return iter(())
