"""Helpers the tests share: servers started as the tests want them, waiting for health, the exporter, /proc."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from deploy import local
from deploy.local import ServerProcess, free_port, rss_mb, start_modelserver
from tests.paths import LABELS, ROOT

__all__ = [
    "SERVICE",
    "ServerProcess",
    "copy_version",
    "free_port",
    "http_base",
    "mapped_files",
    "rss_mb",
    "run_exporter",
    "scrape",
    "start_gateway",
    "start_modelserver",
    "wait_for",
    "wait_for_health",
]

SERVICE = "segmentation.v1.SegmentationService"


def start_gateway(backend: str | None, *flags: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A gateway for one backend with the shared labels and a fast health poll; None: the flags say it all."""
    defaults = [f"--backend={backend}", f"--labels={LABELS}"] if backend else []
    return local.start_gateway(*defaults, "--health-poll=0.2", *flags, env=env)


HTTP_LINE = re.compile(r"HTTP \(Connect, gRPC-Web\) and the web page on (https?)://\S+:(\d+)/")


def http_base(server: ServerProcess) -> str:
    """The base URL of a gateway's --http-listen (http://127.0.0.1:PORT), from the line it prints before it is ready."""
    for line in server.lines:
        if match := HTTP_LINE.search(line):
            return f"{match.group(1)}://127.0.0.1:{match.group(2)}"
    raise AssertionError(f"the gateway printed no HTTP address:\n{server.output()}")


def wait_for(condition, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_for_health(target: str, want: int, timeout: float = 60, service: str = SERVICE) -> float:
    """Seconds until the gateway's health for `service` is `want`."""
    start = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - start < timeout:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status
                if status == want:
                    return time.monotonic() - start
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"health of {service!r} at {target} did not become {want} within {timeout}s")


def run_exporter(*args: str | os.PathLike[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def copy_version(source: pathlib.Path, destination: pathlib.Path) -> None:
    """Copies a servable version directory file by file, as a user's `cp -r` would (not atomically)."""
    shutil.copytree(source, destination)


def mapped_files(pid: int) -> set[str]:
    """Every file mapped into a process: its shared libraries and memory-mapped modules."""
    paths = set()
    for line in pathlib.Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            paths.add(parts[5])
    return paths


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a gateway's /metrics on `port`, parsed by Prometheus' own text parser."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
