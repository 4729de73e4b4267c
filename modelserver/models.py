"""Model versions on disk, their loading and unloading, and resolving a ModelSpec to a loaded version.

Mirrors TF Serving's file-system source and version policies: every numeric directory under a model's
base path is a version; the policy (latest N, all, specific) says which are served; new versions load before
old ones unload, so the model stays available through an upgrade. A version is a SavedModel, or with
--prefer_tflite_model a `model.tflite` when the directory holds one (see tflite.py).
"""

from __future__ import annotations

import enum
import logging
import pathlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from modelserver.errors import ServingError, invalid, not_found_latest, not_found_specific
from modelserver.tflite import TfLiteSession, has_tflite_model, load_tflite

log = logging.getLogger("modelserver")
# The TF1 loader API logs a deprecation per load; it is the API that keeps a frozen graph as it is.
tf.get_logger().setLevel("ERROR")

SERVE_TAG = "serve"
SAVED_MODEL_FILENAMES = ("saved_model.pb", "saved_model.pbtxt")

# What Predict runs: both take output tensor names and a feed dict keyed by input tensor names.
Session = tf.compat.v1.Session | TfLiteSession


class State(enum.IntEnum):
    """ModelVersionStatus.State numbers, as TF Serving reports them."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass
class LoadedVersion:
    """A version loaded into its own session (a graph, or TFLite interpreters), counted while requests use it."""

    version: int
    session: Session
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    _in_use: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    @contextmanager
    def use(self) -> Iterator[LoadedVersion]:
        with self._idle:
            self._in_use += 1
        try:
            yield self
        finally:
            with self._idle:
                self._in_use -= 1
                self._idle.notify_all()

    def close_when_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._in_use == 0)
        self.session.close()


@dataclass
class VersionStatus:
    state: State
    error_code: int = 0  # tensorflow.error.Code
    error_message: str = ""
    failed_loads: int = 0


@dataclass(frozen=True)
class LoadOptions:
    """How versions are loaded; the same for every model of a server, as TF Serving's SessionBundleConfig."""

    intra_op: int = 0
    inter_op: int = 0
    prefer_tflite_model: bool = False
    num_tflite_interpreters: int = 1


def load_version(path: pathlib.Path, options: LoadOptions) -> tuple[Session, dict[str, meta_graph_pb2.SignatureDef]]:
    """Loads a version directory; returns the session that runs it and its SignatureDefs."""
    # saved_model_bundle_factory.cc:132 (tensorflow/serving 9d981c5c): TFLite only with the flag and the file.
    if options.prefer_tflite_model and has_tflite_model(path):
        return load_tflite(path, options.num_tflite_interpreters, options.intra_op)
    return load_saved_model(path, options.intra_op, options.inter_op)


def load_saved_model(path: pathlib.Path, intra_op: int, inter_op: int) -> tuple[tf.compat.v1.Session, dict]:
    """Loads a SavedModel's serve graph into a new session; returns it and the graph's SignatureDefs."""
    if not any((path / name).is_file() for name in SAVED_MODEL_FILENAMES):
        # TF Serving's words and code (session_bundle/oss/session_bundle_util.cc:68-78), e.g. for a directory that
        # holds only a model.tflite when --prefer_tflite_model is not set.
        raise tf.errors.NotFoundError(
            None,
            None,
            "Specified file path does not appear to contain a SavedModel bundle (should have a file called "
            f"`saved_model.pb`)\nSpecified file path: {path}",
        )
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra_op, inter_op_parallelism_threads=inter_op)
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
    except BaseException:
        session.close()
        raise
    return session, dict(meta_graph.signature_def)


def _tf_error_code(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, tf.errors.OpError):
        return exc.error_code, exc.message
    if isinstance(exc, OSError | ValueError | RuntimeError):
        return 3, f"{type(exc).__name__}: {exc}"  # INVALID_ARGUMENT: the files on disk are the problem
    return 2, f"{type(exc).__name__}: {exc}"  # UNKNOWN


class Model:
    """One configured model: its versions on disk, their states, and the loaded ones."""

    def __init__(self, config: model_server_config_pb2.ModelConfig, load_options: LoadOptions, max_retries: int):
        self.name = config.name
        self.base_path = pathlib.Path(config.base_path)
        self.policy = config.model_version_policy
        self.labels: dict[str, int] = dict(config.version_labels)
        self._load_options = load_options
        self._max_retries = max_retries
        self._lock = threading.Lock()
        self._loaded: dict[int, LoadedVersion] = {}
        self._status: dict[int, VersionStatus] = {}

    def _versions_on_disk(self) -> list[int]:
        try:
            return sorted(int(p.name) for p in self.base_path.iterdir() if p.is_dir() and p.name.isdigit())
        except OSError:
            return []

    def _aspired(self, on_disk: list[int]) -> list[int]:
        choice = self.policy.WhichOneof("policy_choice")
        if choice == "all":
            return on_disk
        if choice == "specific":
            wanted = set(self.policy.specific.versions)
            return [v for v in on_disk if v in wanted]
        count = self.policy.latest.num_versions if choice == "latest" and self.policy.latest.num_versions else 1
        return on_disk[-count:]

    def poll(self) -> None:
        """Brings the loaded versions in line with the disk and the policy. Called from one thread only."""
        on_disk = self._versions_on_disk()
        aspired = self._aspired(on_disk)
        for version in aspired:
            with self._lock:
                status = self._status.get(version)
                if version in self._loaded:
                    continue
                if status and status.state == State.END and status.failed_loads > self._max_retries:
                    continue
                self._status[version] = VersionStatus(State.START, failed_loads=status.failed_loads if status else 0)
            self._load(version)
        for version in sorted(set(self._loaded) - set(aspired)):
            # Unload only once something newer is available, unless the directory is gone from disk.
            if version in on_disk and not any(
                v in self._loaded and self._status[v].state == State.AVAILABLE for v in aspired
            ):
                continue
            self._unload(version)

    def _load(self, version: int) -> None:
        path = self.base_path / str(version)
        with self._lock:
            self._status[version].state = State.LOADING
        log.info("loading servable %s version %d from %s", self.name, version, path)
        try:
            session, signature_defs = load_version(path, self._load_options)
        except Exception as exc:  # a broken version must not take the server or other versions down
            code, message = _tf_error_code(exc)
            with self._lock:
                status = self._status[version]
                status.state, status.error_code, status.error_message = State.END, code, message
                status.failed_loads += 1
            log.warning(
                "failed to load %s version %d (attempt %d): %s",
                self.name,
                version,
                status.failed_loads,
                message,
            )
            return
        with self._lock:
            self._loaded[version] = LoadedVersion(version, session, signature_defs)
            self._status[version] = VersionStatus(State.AVAILABLE)
        log.info("servable %s version %d is AVAILABLE", self.name, version)

    def _unload(self, version: int) -> None:
        with self._lock:
            loaded = self._loaded.pop(version)
            self._status[version].state = State.UNLOADING
        log.info("unloading servable %s version %d", self.name, version)
        loaded.close_when_idle()
        with self._lock:
            self._status[version] = VersionStatus(State.END)

    def unload_all(self) -> None:
        for version in list(self._loaded):
            self._unload(version)

    def resolve_version(self, spec: model_pb2.ModelSpec) -> int | None:
        """The version a spec names, None for 'latest'. Raises for an unknown label."""
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            return spec.version.value
        if choice == "version_label":
            if spec.version_label not in self.labels:
                raise invalid(f"Unrecognized servable version label: {spec.version_label}")
            return self.labels[spec.version_label]
        return None

    @contextmanager
    def acquire(self, spec: model_pb2.ModelSpec) -> Iterator[LoadedVersion]:
        """The loaded version a spec asks for, held so that it cannot be unloaded during the request."""
        version = self.resolve_version(spec)
        with self._lock:
            if version is None:
                if not self._loaded:
                    raise not_found_latest(self.name)
                loaded = self._loaded[max(self._loaded)]
            else:
                if version not in self._loaded:
                    raise not_found_specific(self.name, version)
                loaded = self._loaded[version]
            handle = loaded.use()
            handle.__enter__()
        try:
            yield loaded
        finally:
            handle.__exit__(None, None, None)

    def statuses(self, spec: model_pb2.ModelSpec) -> list[tuple[int, VersionStatus]]:
        version = self.resolve_version(spec)
        with self._lock:
            if version is not None:
                if version not in self._status:
                    raise ServingError(
                        grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {self.name}"
                    )
                return [(version, self._status[version])]
            if not self._status:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {self.name}")
            return sorted(self._status.items(), reverse=True)


class ModelRegistry:
    """All configured models, and the thread that polls their base paths."""

    def __init__(self, models: list[Model], poll_seconds: float) -> None:
        self.models = {model.name: model for model in models}
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, spec: model_pb2.ModelSpec) -> Model:
        if not spec.name:
            raise invalid("Missing ModelSpec")
        model = self.models.get(spec.name)
        if model is None:
            version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
            raise not_found_latest(spec.name) if version is None else not_found_specific(spec.name, version)
        return model

    def poll_once(self) -> None:
        for model in self.models.values():
            try:
                model.poll()
            except Exception:  # one model's trouble must not stop the others from being polled
                log.exception("polling model %s failed", model.name)

    def start(self) -> None:
        if self._poll_seconds <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="version-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            self.poll_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        for model in self.models.values():
            model.unload_all()
