"""One model's versions: found on disk, loaded and unloaded as TF Serving's manager does, held by requests.

Mirrors TF Serving (tensorflow/serving 9d981c5c, paths under tensorflow_serving/):
- sources/storage_path/file_system_storage_path_source.cc: every numeric directory under the base path is a
  version; the policy (latest N, all, specific) says which are aspired; a base path that cannot be read changes
  nothing (:257-262, the poll fails and is retried); none found is logged (:313-318) and unloads every version.
- core/availability_preserving_policy.cc:47-88: an aspired version that is new is loaded, the highest first; a
  version no longer aspired is unloaded only once an aspired one is AVAILABLE, or no version is aspired, or more
  than one unaspired version is loaded (the lowest goes first), so the model stays available through an upgrade.
- core/loader_harness.cc:74-116 with util/retrier.cc:27-54: a failed load is tried again --max_num_load_retries
  times, --load_retry_interval_micros apart, the version LOADING meanwhile, then END with the error.
- core/aspired_versions_manager.cc:300-350: a version that ended in error is not loaded again while it stays
  aspired (--enable_reload_servables_with_error is off by default); once it is no longer aspired it is forgotten.
A version is a SavedModel, or with --prefer_tflite_model a `model.tflite` when the directory holds one (tflite.py).
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
from tensorflow_serving.config import model_server_config_pb2

from modelserver.errors import ServingError, not_found_latest, not_found_specific
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

    def error_string(self) -> str:
        """absl::Status::ToString of the version's error, as TF Serving's messages quote it."""
        return f"{code_name(self.error_code)}: {self.error_message}"


def code_name(code: int) -> str:
    """The canonical name of a tensorflow.error.Code (the numbers are gRPC's)."""
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return f"UNKNOWN_CODE({code})"


@dataclass(frozen=True)
class LoadOutcome:
    """How one load ended: AVAILABLE, or END with the error of its last attempt."""

    version: int
    status: VersionStatus

    @property
    def available(self) -> bool:
        return self.status.state == State.AVAILABLE


@dataclass(frozen=True)
class LoadOptions:
    """How versions are loaded; the same for every model of a server, as TF Serving's SessionBundleConfig and
    manager options."""

    intra_op: int = 0
    inter_op: int = 0
    prefer_tflite_model: bool = False
    num_tflite_interpreters: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0


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
    """One configured model: its versions on disk, their states, and the loaded ones.

    poll() changes what is loaded and is called from one thread at a time (the registry's); acquire() and
    statuses() are called by requests on any thread.
    """

    def __init__(self, config: model_server_config_pb2.ModelConfig, load_options: LoadOptions) -> None:
        self.name = config.name
        self._load_options = load_options
        self._lock = threading.Lock()
        self._loaded: dict[int, LoadedVersion] = {}
        self._status: dict[int, VersionStatus] = {}
        self._failed: set[int] = set()
        self._warned_empty = False
        self.configure(config)

    def configure(self, config: model_server_config_pb2.ModelConfig) -> None:
        """A new base path or version policy; the next poll applies it, as TF Serving's next file-system poll."""
        self.base_path = pathlib.Path(config.base_path)
        self.policy = type(config.model_version_policy)()
        self.policy.CopyFrom(config.model_version_policy)
        self.configured = True

    def retire(self) -> None:
        """The model left the config: nothing is aspired any more, so the next poll unloads every version."""
        self.configured = False

    def _versions_on_disk(self) -> list[int] | None:
        try:
            versions = sorted(int(p.name) for p in self.base_path.iterdir() if p.is_dir() and p.name.isdigit())
        except OSError as exc:
            log.error(
                "Could not find base path %s for servable %s with error %s", self.base_path, self.name, exc.strerror
            )
            return None
        if not versions and not self._warned_empty:
            log.warning(
                "No versions of servable %s found under base path %s. Did you forget to name your leaf directory "
                "as a number (eg. '/1/')?",
                self.name,
                self.base_path,
            )
        self._warned_empty = not versions
        return versions

    def _aspired(self, on_disk: list[int]) -> set[int]:
        choice = self.policy.WhichOneof("policy_choice")
        if choice == "all":
            return set(on_disk)
        if choice == "specific":
            return set(on_disk) & set(self.policy.specific.versions)
        count = self.policy.latest.num_versions if choice == "latest" and self.policy.latest.num_versions else 1
        return set(on_disk[-count:])

    def poll(self, stop: threading.Event, abort_on_failure: bool = False) -> list[LoadOutcome]:
        """One file-system poll: loads new aspired versions (highest first), unloads the unaspired ones as the
        policy allows. Returns how each load ended, in order; with abort_on_failure, stops at the first failure."""
        if self.configured:
            on_disk = self._versions_on_disk()
            if on_disk is None:
                return []
            aspired = self._aspired(on_disk)
        else:
            aspired = set()
        self._failed &= aspired
        outcomes: list[LoadOutcome] = []
        self._unload_unaspired(aspired)
        for version in sorted(aspired - set(self._loaded) - self._failed, reverse=True):
            if stop.is_set():
                break
            outcome = self._load(version, stop)
            outcomes.append(outcome)
            if not outcome.available:
                self._failed.add(version)
                if abort_on_failure:
                    break
            self._unload_unaspired(aspired)
        return outcomes

    def _unload_unaspired(self, aspired: set[int]) -> None:
        """AvailabilityPreservingPolicy::GetNextAction's unload rule, applied until it has nothing more to do."""
        while True:
            unaspired = sorted(v for v in self._loaded if v not in aspired)
            if not unaspired:
                return
            aspired_serving = any(v in self._loaded for v in aspired)
            if aspired and not aspired_serving and len(unaspired) == 1:
                return
            self._unload(unaspired[0])

    def _load(self, version: int, stop: threading.Event) -> LoadOutcome:
        path = self.base_path / str(version)
        with self._lock:
            self._status[version] = VersionStatus(State.LOADING)
        options = self._load_options
        code, message = 0, ""
        for attempt in range(options.max_num_load_retries + 1):
            if attempt:
                if stop.wait(options.load_retry_interval_seconds):
                    break  # shutting down: TF Serving cancels the retries of a load nobody waits for
                log.info("Retrying of Loading servable: %s retry: %d", self._id(version), attempt)
            log.info("Loading servable version %s from %s", self._id(version), path)
            try:
                session, signature_defs = load_version(path, options)
            except Exception as exc:  # a broken version must not take the server or other versions down
                code, message = _tf_error_code(exc)
                log.error("Loading servable: %s failed: %s: %s", self._id(version), code_name(code), message)
                continue
            with self._lock:
                self._loaded[version] = LoadedVersion(version, session, signature_defs)
                status = self._status[version] = VersionStatus(State.AVAILABLE)
            log.info("Successfully loaded servable version %s", self._id(version))
            return LoadOutcome(version, status)
        with self._lock:
            status = self._status[version] = VersionStatus(State.END, code, message)
        return LoadOutcome(version, status)

    def _id(self, version: int) -> str:
        """ServableId::DebugString."""
        return f"{{name: {self.name} version: {version}}}"

    def _unload(self, version: int) -> None:
        with self._lock:
            loaded = self._loaded.pop(version)
            self._status[version] = VersionStatus(State.UNLOADING)
        log.info("Unloading servable version %s", self._id(version))
        loaded.close_when_idle()
        with self._lock:
            self._status[version] = VersionStatus(State.END)
        log.info("Done unloading servable version %s", self._id(version))

    def unload_all(self) -> None:
        for version in sorted(self._loaded):
            self._unload(version)

    @contextmanager
    def acquire(self, version: int | None) -> Iterator[LoadedVersion]:
        """A loaded version (None: the latest), held so that it cannot be unloaded during the request."""
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

    def states(self) -> dict[int, State]:
        with self._lock:
            return {version: status.state for version, status in self._status.items()}

    def statuses(self, version: int | None) -> list[tuple[int, VersionStatus]]:
        """Every version's status, highest first, or one version's (GetModelStatusImpl)."""
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
