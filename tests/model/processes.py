"""modelserver processes the TF-Serving-fidelity tests need beyond tests/helpers.py: one that must fail to start,
one watched while it starts, and one with its REST API on a known port."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from tests.helpers import ServerProcess, free_port, start_modelserver
from tests.paths import ROOT

STARTUP_FAILED = 255  # TF Serving's main() returns -1
LOOPBACK = "127.0.0.1"


def run_modelserver(*flags: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """A modelserver expected to exit by itself (e.g. because its models cannot be served)."""
    return subprocess.run(
        [sys.executable, "-m", "modelserver", "--port=0", f"--bind_address={LOOPBACK}", *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def connectable(port: int) -> bool:
    """Whether a TCP connection to the loopback port is accepted now; refused means nothing listens."""
    with socket.socket() as sock:
        sock.settimeout(1)
        error = sock.connect_ex((LOOPBACK, port))
    if error not in (0, errno.ECONNREFUSED):
        raise AssertionError(f"connecting to port {port}: {errno.errorcode.get(error, error)}")
    return error == 0


class WatchedStart(ServerProcess):
    """A modelserver started on a fixed port whose output is followed line by line while it starts (it may never
    become ready, which is what these tests look at)."""

    @classmethod
    def begin(cls, *flags: str) -> WatchedStart:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "modelserver", f"--port={port}", f"--bind_address={LOOPBACK}", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        watched = cls("modelserver", process, port)
        watched.reader = threading.Thread(target=watched._pump, daemon=True)
        watched.reader.start()
        return watched

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout: float = 120) -> float:
        """Seconds until a line containing `text` is printed; fails if the process ends first."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if any(text in line for line in list(self.lines)):
                return time.monotonic() - start
            if self.process.poll() is not None:
                time.sleep(0.2)  # the reader may still hold the last lines
                if any(text in line for line in list(self.lines)):
                    return time.monotonic() - start
                raise AssertionError(f"exited with {self.process.returncode} before {text!r}:\n{self.output()}")
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output()}")


@dataclass
class RestServer:
    """A modelserver with its gRPC port and its REST API on loopback."""

    server: ServerProcess
    rest_port: int

    @property
    def target(self) -> str:
        return self.server.target

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}{path}"

    def request(self, method: str, path: str, body: bytes | str | None = None) -> tuple[int, str, str]:
        """(HTTP status, Content-Type, body text) of one request, error statuses included."""
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(self.url(path), data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers.get("Content-Type", ""), error.read().decode()

    def json(self, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
        """(HTTP status, parsed JSON body); `body` is sent as JSON unless it is already text or bytes."""
        if body is not None and not isinstance(body, str | bytes):
            body = json.dumps(body)
        status, _, text = self.request(method, path, body)  # type: ignore[arg-type]
        return status, json.loads(text)

    def stop(self) -> int:
        return self.server.stop()


def start_with_rest(*flags: str) -> RestServer:
    """start_modelserver with --rest_api_port on a free port (the server prints its ready line once both are up)."""
    rest_port = free_port()
    server = start_modelserver(f"--rest_api_port={rest_port}", *flags)
    # Printed right after the gRPC line, which start_modelserver waits for; the output reader may lag a little.
    deadline = time.monotonic() + 10
    while f"Exporting HTTP/REST API at:{LOOPBACK}:{rest_port}" not in server.output():
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"no REST API line:\n{server.output()}")
        time.sleep(0.02)
    return RestServer(server, rest_port)
