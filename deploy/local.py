"""Local server processes (modelserver, the gateway): start one, wait until it says it is ready, stop it.

Used by the tests and the benchmarks, which run the real servers on loopback.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclass
class ServerProcess:
    """A server started as a subprocess; its output is collected for failure messages."""

    name: str
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return "".join(self.lines[-200:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start_process(
    name: str,
    args: Sequence[str],
    ready: re.Pattern[str],
    *,
    timeout: float = 180,
    env: dict[str, str] | None = None,
    python: Sequence[str] = (sys.executable, "-u", "-m"),
    cwd: pathlib.Path = ROOT,
) -> ServerProcess:
    """Starts `python -m <args>` (or `python` as given, then `args`) in `cwd` and waits for a stdout line matching
    `ready`, whose group 1 is the port."""
    process = subprocess.Popen(
        [*python, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    found: list[int] = []
    event = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = ready.search(line)
            if match and not found:
                found.append(int(match.group(1)))
                event.set()
        event.set()

    reader = threading.Thread(target=pump, daemon=True, name=f"{name}-output")
    reader.start()
    deadline = time.monotonic() + timeout
    while not event.wait(0.1):
        if time.monotonic() > deadline:
            process.kill()
            _reap(process, reader)
            raise TimeoutError(f"{name} did not become ready in {timeout}s:\n{''.join(lines[-100:])}")
    if not found:
        _reap(process, reader)
        raise RuntimeError(f"{name} exited with {process.returncode} before it was ready:\n{''.join(lines[-100:])}")
    return ServerProcess(name, process, found[0], lines, reader)


def _reap(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    """Waits for a process that will not become ready, and closes its output."""
    process.wait()
    reader.join(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


MODELSERVER_READY = re.compile(r"Running gRPC ModelServer at [\d.]+:(\d+)")


def start_modelserver(*flags: str, port: int = 0) -> ServerProcess:
    return start_process(
        "modelserver",
        ["modelserver", f"--port={port}", "--bind_address=127.0.0.1", *flags],
        MODELSERVER_READY,
    )


GATEWAY_READY = re.compile(r"SegmentationService listening on \S+:(\d+),")


def start_gateway(*flags: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`python -m service` on a free loopback port (unless the flags say otherwise)."""
    return start_process("gateway", ["service", "--listen=127.0.0.1:0", *flags], GATEWAY_READY, timeout=60, env=env)


TRITON_PYTHON = ROOT / "triton" / ".venv" / "bin" / "python"
TRITON_READY = re.compile(r"on gRPC [\d.]+:(\d+)$")


def start_triton(model_base: pathlib.Path, *flags: str, grpc_port: int = 0) -> ServerProcess:
    """NVIDIA Triton serving a servable (triton/serve.py in triton/.venv: `make setup` makes it) on loopback; its
    gRPC port is free_port()'s unless given, its HTTP port too, no metrics."""
    args = [str(ROOT / "triton" / "serve.py"), f"--model-base-path={model_base}", "--metrics-port=0"]
    ports = [f"--grpc-port={grpc_port or free_port()}", f"--http-port={free_port()}"]
    return start_process("triton", [*args, *ports, *flags], TRITON_READY, python=(str(TRITON_PYTHON), "-u"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory in MB: VmRSS and VmHWM (its peak), and VmRSS's parts RssAnon (private: the
    heap, buffers) and RssFile (mapped files: mostly shared libraries, shared with other processes and reclaimable,
    and larger when their files are in the page cache)."""
    found = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            found[key] = int(value.split()[0]) / 1024
    return found


def rss_mb(pid: int) -> float:
    return memory_mb(pid)["VmRSS"]
