"""The machine a bench run runs on, as its report tells it and its analysis needs it."""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import subprocess
import sys

import cv2
import grpc
import numpy as np

from bench import pinning
from bench.results import Host


def versions() -> dict[str, str]:
    import google.protobuf  # noqa: PLC0415

    found = {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    tf = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('tensorflow'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["tensorflow (modelserver, seed client)"] = tf.stdout.strip() or "?"
    return found


def machine() -> str:
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = pathlib.Path("/proc/meminfo").read_text().splitlines()
    memory = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    return f"{os.cpu_count()} CPUs ({model}), {int(memory) // 1024 // 1024} GiB, {platform.platform()}"


def this_host() -> Host:
    """This machine now: its CPUs, the cores the pinned phases use, its description, versions and the time."""
    model_cores, front_cores = pinning.cores() if pinning.shape_fits() else (set(), set())
    return Host(
        cpus=os.cpu_count() or 1,
        model_cores=tuple(sorted(model_cores)),
        front_cores=tuple(sorted(front_cores)),
        machine=machine(),
        versions=versions(),
        finished=f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M}",
    )
