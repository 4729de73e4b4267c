"""The configured models, their version labels, and the config's life: start-up, reloads, polling threads.

Mirrors TF Serving's ServerCore (tensorflow/serving 9d981c5c, tensorflow_serving/model_servers/server_core.cc) and
its callers in server.cc:
- Start-up (ServerCore::Create -> ReloadConfig, :260-288): the first config is applied as any reload is, then
  AddModelsViaModelConfigList waits until every model has a version that is AVAILABLE or END
  (ConnectSourcesWithFastInitialLoad, core/load_servables_fast.cc:76-121, which waits with
  ServableStateMonitor's rule, core/servable_state_monitor.cc:297-334: the first version of a model to reach either
  state decides for it). If any model's deciding version is END, start-up fails: "N servable(s) did not become
  available: ..." (UNKNOWN), and main.cc:341-346 prints "Failed to start server. Error: ..." and exits with -1. A
  model with no version on disk is waited for indefinitely (file_system_poll_wait_seconds keeps polling). Only
  then does server.cc:374-417 build and start the gRPC server: its port is closed until the models are loaded.
- Reload (ReloadConfig, :476-547): only from one model_config_list to another (FAILED_PRECONDITION otherwise);
  model names unique (ValidateModelConfigList, :117-153); no model may change platform (:157-182); then the
  version labels (UpdateModelVersionLabelMap, :549-614) *before* any model changes: a label may only name a version
  that is AVAILABLE now, unless --allow_version_labels_for_unavailable_models, which lets a label that is new, or
  keeps its version, name any version. A refused label refuses the whole reload: no model is added or changed.
  Then removed models are unloaded at once, new models are awaited as at start-up ("N model(s) did not become
  available", :328-365, :405-441), and changed policies or base paths apply at the next file-system poll.
- The config file poll (server.cc:165-180, :334-350): every --model_config_file_poll_wait_seconds the file is
  read and reloaded; an unreadable file or a refused reload is logged and the running config stays.
- Labels in requests (ServableRequestFromModelSpec and GetModelVersionForLabel, :841-892): a label is looked up
  before the model, so an unknown label is INVALID_ARGUMENT even for an unknown model.
- GetModelStatus (get_model_status_impl.cc:66-109) reports every version the server has seen, including those of
  a model since removed from the config, and ignores a version label.

Differences, all on the side of loading sooner or more predictably:
- Loads run one at a time, a model's highest version first (the order AvailabilityPreservingPolicy asks for);
  TF Serving runs the initial ones in parallel, so which version decides a model can differ when several fail or
  load at once. The port opens once every initially aspired version has been tried, not as soon as each model has
  one AVAILABLE.
- A reload loads its new models at once rather than at the next file-system poll (with
  --file_system_poll_wait_seconds=0, TF Serving would never load them and the reload would not return).
- Relative base paths are accepted (resolved from the working directory); TF Serving refuses them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from modelserver.errors import ServingError, invalid, not_found_latest, not_found_specific
from modelserver.models import LoadedVersion, LoadOptions, LoadOutcome, Model, State

log = logging.getLogger("modelserver")

TENSORFLOW_PLATFORM = "tensorflow"


class StartupError(Exception):
    """The first config could not be served; the message is the status as TF Serving prints it."""


@dataclass(frozen=True)
class RegistryOptions:
    load: LoadOptions
    file_system_poll_wait_seconds: float
    allow_version_labels_for_unavailable_models: bool = False


class ModelRegistry:
    """The models of the current config, their labels, and the threads that keep them in line with the disk."""

    def __init__(self, options: RegistryOptions) -> None:
        self._options = options
        self._models: dict[str, Model] = {}  # the configured models; replaced whole, never changed in place
        self._known: dict[str, Model] = {}  # every model ever configured: GetModelStatus reports them all
        self._labels: dict[str, dict[str, int]] = {}  # model -> label -> version; replaced whole
        self._config: model_server_config_pb2.ModelServerConfig | None = None
        self._pending: set[str] = set()  # new models a start-up or reload is waiting for; the poller leaves them
        self._config_lock = threading.Lock()  # one config change at a time, its wait included (config_mu_)
        self._manage = threading.RLock()  # one poll (loads and unloads) at a time
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def models(self) -> dict[str, Model]:
        return self._models

    # -- requests ---------------------------------------------------------------------------------------------

    def resolve(self, spec: model_pb2.ModelSpec) -> tuple[Model, int | None]:
        """The model a spec names and the version it asks for (None: the latest)."""
        if not spec.name:
            raise invalid("ModelSpec has no name specified.")
        choice = spec.WhichOneof("version_choice")
        version: int | None = None
        if choice == "version":
            version = spec.version.value
        elif choice == "version_label":
            version = self._labels.get(spec.name, {}).get(spec.version_label)
            if version is None:
                raise invalid(f"Unrecognized servable version label: {spec.version_label}")
        model = self._models.get(spec.name)
        if model is None:
            raise not_found_latest(spec.name) if version is None else not_found_specific(spec.name, version)
        return model, version

    @contextmanager
    def acquire(self, spec: model_pb2.ModelSpec) -> Iterator[tuple[Model, LoadedVersion]]:
        """The loaded version a spec asks for, held so that it cannot be unloaded while the request uses it."""
        model, version = self.resolve(spec)
        with model.acquire(version) as loaded:
            yield model, loaded

    def status(self, spec: model_pb2.ModelSpec) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatusImpl: every version the server has seen of the model, or one of them."""
        model = self._known.get(spec.name)
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        if model is None:
            if version is not None:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {spec.name}")
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, status in model.statuses(version):
            entry = response.model_version_status.add(version=number, state=int(status.state))
            entry.status.error_code = status.error_code
            entry.status.error_message = status.error_message
        return response

    # -- the config -------------------------------------------------------------------------------------------

    def start_up(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Applies the first config and waits until every model is decided. Raises StartupError with TF Serving's
        status if a label or a model cannot be served; returns early, untouched, if stop() is called."""
        try:
            self._apply(config, first=True)
        except ServingError as exc:
            raise StartupError(f"{exc.code.name}: {exc.message}") from exc

    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """ServerCore::ReloadConfig. Raises ServingError with TF Serving's code and message when it refuses."""
        self._apply(config, first=False)

    def _apply(self, config: model_server_config_pb2.ModelServerConfig, first: bool) -> None:
        with self._config_lock:
            if config.WhichOneof("config") != "model_config_list":
                raise ServingError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "Cannot transition to requested config. It is only legal to transition from one "
                    "ModelConfigList to another.",
                )
            configs = list(config.model_config_list.config)
            names = [c.name for c in configs]
            for name in names:
                if names.count(name) > 1:
                    raise invalid(f"Illegal to list model {name} multiple times in config list")
            self._check_platforms(configs)
            with self._manage:
                self._labels = self._label_map(configs)
                for c in configs:
                    if _platform(c) != TENSORFLOW_PLATFORM:
                        raise invalid(f"Model {c.name} requests unsupported platform {_platform(c)}")
                new = [c.name for c in configs if c.name not in self._models]
                removed = [m for name, m in self._models.items() if name not in names]
                for c in configs:
                    model = self._known.get(c.name)
                    if model is None:
                        model = self._known[c.name] = Model(c, self._options.load)
                    else:
                        model.configure(c)
                self._pending |= set(new)
                self._models = {name: self._known[name] for name in names}
                self._config = config
                log.info("Adding/updating models: %s; removing: %s", names, [m.name for m in removed])
                for model in removed:
                    model.retire()
                    model.poll(self._stop)
            try:
                failures = self._await([self._known[name] for name in new])
            finally:
                self._pending -= set(new)
            if failures:
                noun = "servable(s)" if first else "model(s)"
                raise ServingError(
                    grpc.StatusCode.UNKNOWN,
                    f"{len(failures)} {noun} did not become available: {{"
                    + "".join(f"{{{failure}}}, " for failure in sorted(failures))
                    + "}",
                )
            log.info("Finished adding/updating models")

    def _check_platforms(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        if self._config is None:
            return
        old = {c.name: _platform(c) for c in self._config.model_config_list.config}
        for c in configs:
            if c.name in old and old[c.name] != _platform(c):
                raise invalid(
                    f"Illegal to change a model's platform. For model {c.name} platform was {old[c.name]} and new "
                    f"platform requested is {_platform(c)}"
                )

    def _label_map(self, configs: list[model_server_config_pb2.ModelConfig]) -> dict[str, dict[str, int]]:
        """UpdateModelVersionLabelMap: the new labels, each checked against the versions' states right now."""
        labels: dict[str, dict[str, int]] = {}
        for c in configs:
            model = self._known.get(c.name)
            states = model.states() if model is not None else {}
            for label, version in c.version_labels.items():
                allowed = False
                if self._options.allow_version_labels_for_unavailable_models:
                    existing = self._labels.get(c.name, {}).get(label)
                    allowed = existing is None or existing == version
                if not allowed and states.get(version) != State.AVAILABLE:
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {c.name}, which is not currently "
                        "available for inference",
                    )
                labels.setdefault(c.name, {})[label] = version
        return labels

    def _await(self, models: list[Model]) -> list[str]:
        """Polls new models until each is decided: its first load to end decides (AVAILABLE or END). Returns
        the failures as TF Serving lists them. A model with no version on disk is polled again every
        --file_system_poll_wait_seconds, or waited for until stop() if that is 0."""
        pending = list(models)
        failures: list[str] = []
        while pending:
            for model in list(pending):
                with self._manage:
                    outcomes = model.poll(self._stop, abort_on_failure=True)
                if self._stop.is_set():
                    return failures
                if outcomes:
                    pending.remove(model)
                    decisive = outcomes[0]
                    if not decisive.available:
                        failures.append(_failure(model, decisive))
                    # Lower versions still to load: the rest of this model's aspired versions, as TF Serving
                    # would have them loading in parallel.
                    if decisive.available:
                        with self._manage:
                            model.poll(self._stop)
            if pending:
                interval = self._options.file_system_poll_wait_seconds
                if self._stop.wait(interval if interval > 0 else None):
                    return failures
        return failures

    # -- threads ----------------------------------------------------------------------------------------------

    def start_polling(self, config_file: str | None, config_poll_seconds: float) -> None:
        """The file-system poller (new and removed versions) and, if asked, the config file poller."""
        if self._options.file_system_poll_wait_seconds > 0:
            self._spawn("version-poller", self._options.file_system_poll_wait_seconds, self.poll_once)
        if config_file and config_poll_seconds > 0:
            self._spawn("config-poller", config_poll_seconds, lambda: self._reload_file(config_file))

    def _spawn(self, name: str, seconds: float, work: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.wait(seconds):
                work()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def poll_once(self) -> None:
        for model in list(self._models.values()):
            if model.name in self._pending:
                continue
            try:
                with self._manage:
                    model.poll(self._stop)
            except Exception:  # one model's trouble must not stop the others from being polled
                log.exception("polling model %s failed", model.name)

    def _reload_file(self, path: str) -> None:
        """Server::PollFilesystemAndReloadConfig."""
        config = model_server_config_pb2.ModelServerConfig()
        try:
            with open(path) as file:
                text_format.Parse(file.read(), config)
        except (OSError, text_format.ParseError) as exc:
            log.error("Failed to read ModelServerConfig file: %s", exc)
            return
        try:
            self.reload(config)
        except ServingError as exc:
            log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc.message)
        except Exception:
            log.exception("PollFilesystemAndReloadConfig failed")

    def stop(self) -> None:
        """Stops the pollers (and a start-up or reload that is waiting), then unloads every model."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        with self._manage:
            for model in self._known.values():
                model.unload_all()


def _platform(config: model_server_config_pb2.ModelConfig) -> str:
    # An empty platform is taken as TensorFlow's (TF Serving would refuse it: server_core.cc:99-104).
    return config.model_platform or TENSORFLOW_PLATFORM


def _failure(model: Model, outcome: LoadOutcome) -> str:
    """One entry of the 'did not become available' list: the ServableId and the load's error."""
    return f"{{name: {model.name} version: {outcome.version}}} due to error: {outcome.status.error_string()}"
