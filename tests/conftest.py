"""Fixtures shared by every suite, and the markers each folder gives its tests.

- tests/service (mirroring service/), tests/clients, tests/tools and tests/bench: unit tests, in-process, nothing
  but the venv (`unit`, `make test-unit`); a module's tests are found by its path: service/image/probe.py is
  tested by tests/service/image/test_probe.py.
- tests/gateway: end to end against real processes (`e2e`): the gateway, the modelserver, Triton, KServe, grpcurl,
  curl, a browser, other languages' clients.
- tests/model: the TensorFlow side: exporter and modelserver, driven by the official tensorflow-serving-api.
- tests/deploy: the containers (`make compose-test`) and the scale test (`make scale-test`, and in `make test`).
The TensorFlow side and the others register the same protobuf names, so they run as separate pytest processes.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import shutil
import sys
from collections.abc import Iterator

import pytest
import trustme

from tests.helpers import run_exporter
from tests.paths import FROZEN_GRAPH, ROOT, SHARED, TFLITE

# TensorFlow's C++ start-up chatter would drown the output of failing subprocesses.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The marker of each folder's tests (pyproject.toml's [tool.pytest.ini_options] describes them).
FOLDER_MARKERS = {"service": "unit", "clients": "unit", "tools": "unit", "bench": "unit", "gateway": "e2e"}
TENSORFLOW_SIDE = "model"

# A version the exporter of this checkout has already made from the shared frozen graph (`make test` names
# models/deeplab/1, which `make export` keeps up to date): the servable fixture copies it instead of exporting again,
# which each pytest process would otherwise do once (6 s of TensorFlow).
EXPORTED_VERSION = "TEST_EXPORTED_VERSION"


def pytest_sessionstart(session: pytest.Session) -> None:
    if not SHARED.is_dir():
        raise pytest.UsageError(f"the shared data folder is missing: expected {SHARED} beside the checkout")


def _folder(item: pytest.Item) -> str:
    return pathlib.Path(item.path).relative_to(ROOT / "tests").parts[0]


# The order tests are handed out in when they run side by side (`make test`: whole modules, in this order, each to
# the next free process): the end-to-end modules first, whose servers take seconds to start, so that the run ends on
# many short unit modules instead of one process finishing a long module while the others wait.
FOLDER_ORDER = {"deploy": 0, "gateway": 1, "model": 1}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    folders = {_folder(item) for item in items}
    if TENSORFLOW_SIDE in folders and len(folders) > 1:
        raise pytest.UsageError(
            "tests/model cannot run in one process with the other suites (they register the same protobuf names); "
            "run `make test`, or pytest on tests/model alone"
        )
    for item in items:
        marker = FOLDER_MARKERS.get(_folder(item))
        if marker:
            item.add_marker(marker)
    items.sort(key=lambda item: FOLDER_ORDER.get(_folder(item), 2))


@pytest.fixture(autouse=True, scope="session")
def _no_tensorflow_in_this_process(request: pytest.FixtureRequest) -> Iterator[None]:
    # The gateway's wire-compatible stubs and TensorFlow register the same protobuf names; outside tests/model,
    # anything that needs TensorFlow runs in a subprocess, and this proves nothing slipped in.
    yield
    if TENSORFLOW_SIDE not in {_folder(item) for item in request.session.items}:
        assert "tensorflow" not in sys.modules, "a test outside tests/model imported TensorFlow"


@pytest.fixture(scope="session")
def servable_base(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> pathlib.Path:
    """A model base path holding version 1 exported from the shared frozen graph, made once per run: the processes
    of one run side by side (pytest-xdist) share it through their common temporary folder. Tests only read it."""
    folder = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        folder = folder.parent  # this run's, shared by its workers
    base = folder / "servable" / "deeplab"
    base.parent.mkdir(exist_ok=True)
    with open(base.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "1" / "saved_model.pb").is_file():
            exported = os.environ.get(EXPORTED_VERSION)
            if exported:
                # Copied aside and renamed: a model server polling the base sees the version whole or not at all.
                shutil.copytree(exported, base / ".1.tmp")
                (base / ".1.tmp").rename(base / "1")
            else:
                result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--version", "1")
                assert result.returncode == 0, result.stderr
    return base


@pytest.fixture(scope="session")
def lite_base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A model base path holding the shared TFLite model as version 1 (`1/model.tflite`, a link to the shared file,
    which is never copied into the project), as TF Serving serves it with --prefer_tflite_model."""
    version = tmp_path_factory.mktemp("lite") / "deeplab-lite" / "1"
    version.mkdir(parents=True)
    (version / "model.tflite").symlink_to(TFLITE)
    return version.parent


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """A CA made now, a server certificate for 127.0.0.1, a client certificate, and a stranger CA's client."""
    directory = tmp_path_factory.mktemp("pki")
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "ca": ca.cert_pem,
        "server.crt": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
    }
    for name, authority in (("client", ca), ("stranger", stranger)):
        cert = authority.issue_cert(f"{name}.example")
        files[f"{name}.crt"], files[f"{name}.key"] = cert.cert_chain_pems[0], cert.private_key_pem
    paths = {}
    for name, blob in files.items():
        paths[name] = directory / name
        blob.write_to_path(str(paths[name]))
    return paths
