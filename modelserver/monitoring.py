"""TF Serving's --monitoring_config_file and the request metrics it serves in Prometheus's text format on the REST port.

Follows tensorflow/serving 9d981c5c:
- The file is a MonitoringConfig in text format (config/monitoring_config.proto). It is read only where the REST
  server is made (model_servers/server.cc:437-452): without --rest_api_port, or with it equal to --port, it is never
  read. With prometheus_config { enable: true } the page is served at prometheus_config.path, or at
  PrometheusExporter::kPrometheusPath when that is empty (http_server.cc:224-238), for any method; a query string
  makes the path differ, which is INVALID_ARGUMENT (http_server.cc:89-116).
- The metrics are servables/tensorflow/util.cc:54-84. Predict updates two of them, over gRPC
  (prediction_service_impl.cc:39-62) and REST (http_server.cc:152-203): request_count{model_name, status} for every
  call, status as the gRPC code's name, and request_latency{model_name, API, entrypoint} in microseconds, for
  successful calls only. API is "Predict" over gRPC; over REST it is what the path had after ':' ("predict"), or ""
  for GETs, since every REST call under /v1/ is counted, status and metadata included. The other three
  (request_example_counts, request_example_count_total: Classify/Regress/MultiInference with tf.Examples;
  runtime_latency: Classify and Regress) are never updated here, where those calls are UNIMPLEMENTED; as in TF
  Serving they are listed with no samples.
- The page is util/prometheus_exporter.cc's: metric names with every character outside [a-zA-Z0-9_] turned into ':'
  ("/tensorflow/serving/request_count" -> ":tensorflow:serving:request_count"), in the order of those names; only
  "# TYPE" lines; counters without a "_total" suffix; histograms with every bucket (TensorFlow's Histogram counts a
  value in the first bucket whose limit is greater than it), limits and sums printed as absl::StrCat prints a double
  ("%.6g"), the last bucket "+Inf". prometheus-client's generate_latest cannot write that (it names a counter's
  family NAME_total), so the families are collected through a prometheus-client CollectorRegistry of our own and
  written out here. The TensorFlow-internal metrics (":tensorflow:core:...") that TF Serving's page also lists are
  not.
"""

from __future__ import annotations

import bisect
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from modelserver.options import ServerOptions, read_text_proto

log = logging.getLogger("modelserver")

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath
CONTENT_TYPE = "text/plain"


def _monitoring_config_class() -> type:
    """MonitoringConfig: the TF Serving API's own, or, as its pip package does not ship monitoring_config_pb2, the
    same messages (package, names, field numbers) declared in a descriptor pool of their own."""
    try:
        from tensorflow_serving.config import monitoring_config_pb2  # noqa: PLC0415
    except ImportError:
        pass
    else:
        return monitoring_config_pb2.MonitoringConfig
    file = descriptor_pb2.FileDescriptorProto(
        name="modelserver/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL, label=optional)
    prometheus.field.add(name="path", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=optional)
    file.message_type.add(name="MonitoringConfig").field.add(
        name="prometheus_config",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=optional,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


MonitoringConfig = _monitoring_config_class()


def prometheus_path(options: ServerOptions) -> str | None:
    """Where the REST port serves the metrics page, or None. Raises OptionsError for a file that cannot be read or
    parsed (TF Serving: "Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '<file>'")."""
    path = options.monitoring_config_file
    if not path:
        return None
    if not options.rest_api_port or options.rest_api_port == options.port:
        log.warning("--monitoring_config_file %s is not read: metrics are served only on the REST API port", path)
        return None
    config = read_text_proto(path, "--monitoring_config_file", MonitoringConfig())
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PATH


def _exponential(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """monitoring::Buckets::Exponential: `count` limits from `scale`, each `growth` times the last, then DBL_MAX."""
    limits = []
    bound = scale
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return (*limits, sys.float_info.max)


@dataclass
class _Family:
    """One of TF Serving's metrics: a counter (limits None) or a histogram, with a cell per label tuple."""

    name: str  # TF Serving's, e.g. /tensorflow/serving/request_count
    documentation: str
    labels: tuple[str, ...]
    limits: tuple[float, ...] | None = None
    counts: dict[tuple[str, ...], int] = field(default_factory=dict)
    histograms: dict[tuple[str, ...], tuple[list[int], list[float]]] = field(default_factory=dict)  # buckets, [sum]

    def metric(self) -> Metric:
        name = re.sub(r"[^a-zA-Z0-9_]", ":", self.name)
        metric = Metric(name, self.documentation, "counter" if self.limits is None else "histogram")
        for values, count in sorted(self.counts.items()):
            metric.add_sample(name, dict(zip(self.labels, values, strict=True)), count)
        for values, (buckets, total) in sorted(self.histograms.items()):
            labels = dict(zip(self.labels, values, strict=True))
            assert self.limits is not None
            cumulative = 0
            for index, count in enumerate(buckets):
                cumulative += count
                limit = "+Inf" if index == len(buckets) - 1 else _double(self.limits[index])
                metric.add_sample(f"{name}_bucket", {**labels, "le": limit}, cumulative)
            metric.add_sample(f"{name}_sum", labels, total[0])
            metric.add_sample(f"{name}_count", labels, cumulative)
        return metric


def _double(value: float) -> str:
    """absl::StrCat of a double: six significant digits, as printf's %g."""
    return f"{value:.6g}"


class Metrics(Collector):
    """TF Serving's serving metrics for this process: recorded always (as TF Serving's are), served only when the
    monitoring config enables Prometheus. Thread-safe."""

    def __init__(self) -> None:
        latency = _exponential(10, 1.8, 33)  # ~20 minutes in microseconds
        families = [
            _Family(
                "/tensorflow/serving/request_example_counts",
                "The number of tensorflow.Examples per request.",
                ("model",),
                _exponential(1, 2, 15),
            ),
            _Family(
                "/tensorflow/serving/request_example_count_total",
                "The total number of tensorflow.Examples.",
                ("model",),
            ),
            _Family("/tensorflow/serving/request_count", "The total number of requests.", ("model_name", "status")),
            _Family(
                "/tensorflow/serving/runtime_latency",
                "Distribution of wall time (in microseconds) for Tensorflow runtime.",
                ("model_name", "API", "runtime"),
                latency,
            ),
            _Family(
                "/tensorflow/serving/request_latency",
                "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                ("model_name", "API", "entrypoint"),
                latency,
            ),
        ]
        self._families = {family.name: family for family in sorted(families, key=lambda f: f.name)}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def record_request(self, model_name: str, code: grpc.StatusCode, api: str, entrypoint: str, start_ns: int) -> None:
        """RecordModelRequestCount, and RecordRequestLatency when the call succeeded; start_ns from
        time.monotonic_ns() when the call arrived."""
        micros = (time.monotonic_ns() - start_ns) // 1000
        with self._lock:
            counts = self._families["/tensorflow/serving/request_count"].counts
            counts[model_name, code.name] = counts.get((model_name, code.name), 0) + 1
            if code is grpc.StatusCode.OK:
                self._add("/tensorflow/serving/request_latency", (model_name, api, entrypoint), micros)

    def _add(self, name: str, labels: tuple[str, ...], value: float) -> None:
        family = self._families[name]
        assert family.limits is not None
        buckets, total = family.histograms.setdefault(labels, ([0] * len(family.limits), [0.0]))
        buckets[min(bisect.bisect_right(family.limits, value), len(buckets) - 1)] += 1
        total[0] += value

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            metrics = [family.metric() for family in self._families.values()]
        yield from metrics

    def page(self) -> str:
        """PrometheusExporter::GeneratePage, from what the registry collects."""
        lines = []
        for metric in self.registry.collect():
            lines.append(f"# TYPE {metric.name} {metric.type}")
            for sample in metric.samples:
                labels = ",".join(f'{key}="{_label_value(value)}"' for key, value in sample.labels.items())
                value = _double(sample.value) if isinstance(sample.value, float) else str(sample.value)
                lines.append(f"{sample.name}{{{labels}}} {value}")
        return "\n".join(lines) + "\n"


def _label_value(value: str) -> str:
    """SanitizeLabelValue: backslashes and double quotes escaped, nothing else."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
