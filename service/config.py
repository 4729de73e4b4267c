"""The gateway's one typed configuration: server settings, backends, models and their profiles.

Built by service/flags.py from defaults, then the config file (service/config_file.py), then SEGMENTATION_*
variables, then flags. Immutable: a new configuration is a new object. Every mistake is a ConfigError whose message
is one line naming where it is and what is accepted.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.auth.proxies import TrustedProxies
from service.backends.kinds import DEFAULT_KIND, KINDS
from service.profiles import DEEPLAB_ZOO, Profile, Upscale

MIB = 1024 * 1024
DEFAULT_BACKEND = "default"


class ConfigError(Exception):
    """A bad flag, variable, config file or labels file; the message is one line for the user."""


@dataclass(frozen=True)
class Interface:
    """A model's signature and tensor aliases at its backend."""

    signature: str
    input_key: str
    output_key: str
    scores_key: str  # empty: the model gives no scores beside its class ids

    @property
    def output_keys(self) -> tuple[str, ...]:
        """The outputs to ask for."""
        return (self.output_key, self.scores_key) if self.scores_key else (self.output_key,)


@dataclass(frozen=True)
class BackendConfig:
    """One model server deployment: one channel, balanced round robin over its targets."""

    name: str = DEFAULT_BACKEND
    kind: str = DEFAULT_KIND  # the protocol it speaks: a key of backends.kinds.KINDS
    # One gRPC target (host:port, dns:///host:port, ipv4:..., unix:...) or several host:port entries.
    targets: tuple[str, ...] = ("localhost:8500",)
    # TLS to the backend: the CA (PEM file) that signed its certificate; with cert and key, mutual TLS.
    # Empty: plaintext, as TF Serving listens by default.
    ca: str = ""
    cert: str = ""
    key: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """A model as clients name it, and how to call it at its backend and read its answer."""

    name: str = "deeplab"
    backend: str = DEFAULT_BACKEND
    served_name: str = ""  # the model's name at TF Serving; empty means the same as `name`
    # The signature and tensor aliases at the backend; empty: the profile's.
    signature: str = ""
    input_key: str = ""
    output_key: str = ""
    scores_key: str = ""
    profile: Profile = DEEPLAB_ZOO
    labels: tuple[str, ...] = ()
    # Pinned at the backend; a request's own version or label wins. Neither means the latest version.
    version: int | None = None
    version_label: str = ""
    # A weighted split of the model's traffic (empty: all traffic as above), and a share of it mirrored.
    variants: tuple[Variant, ...] = ()
    shadow: Shadow | None = None

    @property
    def name_at_backend(self) -> str:
        return self.served_name or self.name

    @property
    def interface(self) -> Interface:
        """The signature and tensors to call: the model's own settings, else its profile's."""
        profile = self.profile
        return Interface(
            signature=self.signature or profile.signature,
            input_key=self.input_key or profile.input_key,
            output_key=self.output_key or profile.output_key,
            # Scores are asked for only when they will decide pixels.
            scores_key=(self.scores_key or profile.scores_key) if profile.upscale == Upscale.SCORES else "",
        )

    @property
    def variant_models(self) -> tuple[ModelConfig, ...]:
        """The model as each variant of its split calls it."""
        return tuple(variant.model for variant in self.variants)

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else f"class_{class_id}"


@dataclass(frozen=True)
class Variant:
    """One arm of a model's traffic split: the model as this variant calls it, and its share of the traffic."""

    name: str
    weight: int  # relative to the other variants' weights; 0: never chosen by the split (e.g. a shadow only)
    # The model's settings with the variant's own: a version or label, and optionally another served model,
    # backend, signature, keys or profile.
    model: ModelConfig


@dataclass(frozen=True)
class Shadow:
    """A share of a model's requests also sent, in the background, to one of its variants, for comparison."""

    variant: str
    percent: float  # 0 < percent <= 100


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 20 * MIB
    max_image_pixels: int = 50_000_000


@dataclass(frozen=True)
class Config:
    listen: str = "0.0.0.0:50051"
    backends: tuple[BackendConfig, ...] = (BackendConfig(),)
    models: tuple[ModelConfig, ...] = (ModelConfig(),)
    default_model: str = "deeplab"
    limits: Limits = field(default_factory=Limits)
    # Upper bound on one Predict; the caller's own deadline applies when it is shorter.
    predict_timeout_s: float = 30.0
    # Images worked on at once per SegmentImageStream call.
    stream_window: int = 4
    # A stream whose answers the client has not read for this long is ended (RESOURCE_EXHAUSTED).
    stream_write_timeout_s: float = 30.0
    # Images worked on at once (unary calls and stream items), shared fairly between callers (service/admission.py):
    # four per core, about what a core's decodes and the model server's calls keep busy; more only queue inside.
    max_concurrent_calls: int = field(default_factory=lambda: 4 * (os.cpu_count() or 2))
    # Images one caller (a connection, or an x-tenant) holds at once: worked on, or answered and not yet read.
    max_calls_per_caller: int = 16
    # Seconds an image may wait for a place before RESOURCE_EXHAUSTED (with a retry hint).
    max_queue_wait_s: float = 2.0
    # SegmentationService calls open at once (a stream is one, however many items): past it, new calls get
    # RESOURCE_EXHAUSTED. Each open call may hold one received message beyond the images in progress. Health and
    # reflection are not counted.
    max_concurrent_rpcs: int = 256
    # Threads for the CPU stages (decode, resize, encode); by default one per core.
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    health_poll_s: float = 1.0
    shutdown_grace_s: float = 10.0
    log_level: str = "INFO"
    # Shadow requests in flight at once, all models together; past it, shadow requests are dropped (and counted).
    max_shadow_in_flight: int = 8
    # Seconds between checks of the config file for changes (0: only on SIGHUP).
    config_poll_s: float = 0.0
    # Prometheus metrics at http://metrics_listen/metrics; empty: off.
    metrics_listen: str = ""
    # grpc.health.v1 alone, plaintext and without tokens, for probes that cannot speak TLS (Kubernetes' gRPC
    # probes, container health checks); empty: off.
    health_listen: str = ""
    # The same service over HTTP (Connect with JSON or binary, gRPC-Web) and the web page at /; empty: off.
    http_listen: str = ""
    log_format: str = "text"  # or "json"
    # TLS on the gateway's port (PEM files); with tls_client_ca, clients must present a certificate it signed.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Bearer tokens, one a line ("#" comments), each with the tenant it names and the models it may call
    # (service/auth/files.py); empty: no tokens. Health and reflection stay open unless auth_health.
    auth_tokens: str = ""
    # JWTs as bearer tokens: verified against this JWKS file's public keys, for this issuer and audience; the
    # tenant claim names the caller, the scope claim's model:GRANT items what it may call.
    auth_jwks: str = ""
    auth_jwt_issuer: str = ""
    auth_jwt_audience: str = ""
    auth_jwt_tenant_claim: str = "tenant"
    auth_jwt_scope_claim: str = "scope"
    # With tls_client_ca: the client certificate identities (URI SAN or CN) that may call, with their tenants and
    # models, in the tokens file's form; empty: every certificate the CA signed, named by its identity.
    auth_certificates: str = ""
    auth_health: bool = False
    # Proxies whose x-tenant header names the caller: addresses or networks, and certificate identities,
    # comma-separated; a header anyone else sends is ignored.
    trusted_proxies: str = ""
    # grpc.reflection (what grpcurl's list and describe ask); off in production unless wanted.
    reflection: bool = True
    # Seconds a request message (or an HTTP request's body) may take to arrive once the call has a place for it.
    read_timeout_s: float = 30.0
    # Seconds an HTTP request's headers may take to arrive (slowloris).
    header_timeout_s: float = 10.0
    # A connection with no call for this long is closed; any connection is closed after max_connection_age,
    # its calls given shutdown_grace to finish (clients reconnect, and re-resolve).
    max_connection_idle_s: float = 300.0
    max_connection_age_s: float = 1800.0
    # OpenTelemetry traces: "otlp" (to OTEL_EXPORTER_OTLP_ENDPOINT) or "console"; empty: off.
    tracing: str = ""
    tracing_sample_ratio: float = 1.0
    source: str = ""  # the config file, if any, for messages

    @property
    def model(self) -> ModelConfig:
        """The default model."""
        return next(m for m in self.models if m.name == self.default_model)

    @property
    def proxies(self) -> TrustedProxies:
        return TrustedProxies.parse(item.strip() for item in self.trusted_proxies.split(",") if item.strip())


def read_labels(path: pathlib.Path, relative_to: pathlib.Path | None = None) -> tuple[str, ...]:
    """The class names in a labels file, one a line, class 0 first; a ConfigError of one line says what is accepted.

    `relative_to` is the config file's folder, which a relative `path` in the file is read from.
    """
    full = relative_to / path if relative_to is not None else path
    accepted = "use a readable UTF-8 text file, one class name a line, class 0 first"
    if relative_to is not None:
        accepted += f", relative to the config file's folder ({relative_to})"
    try:
        # utf-8-sig: a byte order mark, as some Windows editors write, is not part of class 0's name.
        lines = full.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {full}: {exc.strerror or exc}; {accepted}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the labels file {full} is not UTF-8 text (byte {exc.start}); {accepted}") from exc
    labels = tuple(line.strip() for line in lines if line.strip())
    if not labels:
        raise ConfigError(f"the labels file {full} has no labels; {accepted}")
    return labels


# Checks of setting values: each takes a value already of the right Python type and raises ValueError saying what
# is accepted.


def finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def positive(value: int | float) -> int | float:
    if not value > 0 or not math.isfinite(value):
        raise ValueError("must be positive")
    return value


def at_most(limit: int, unit: str = "") -> Callable[[int], int]:
    def check(value: int) -> int:
        if not 0 < value <= limit:
            raise ValueError(f"must be positive and at most {limit}{unit}")
        return value

    return check


# A model input side: far above any segmentation model's, far below what would exhaust memory per call.
pixels = at_most(8192, " pixels")
# 2 x max_image_bytes + 1 MiB is gRPC's receive limit, a C int.
MAX_IMAGE_BYTES_LIMIT = 1000 * MIB

TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def _check_address(target: str, lowest_port: int) -> str:
    if target.startswith(TARGET_SCHEMES):
        if not target.split(":", 1)[1].strip("/"):
            raise ValueError("a target URI needs an address after its scheme, e.g. dns:///tfserving:8500")
        return target
    host, _, port = target.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not host or (":" in host and not bracketed) or target != target.strip() or " " in target:
        raise ValueError("use host:port ([v6 address]:port), or dns:///host:port for a name gRPC re-resolves")
    if not port.isdigit() or not lowest_port <= int(port) < 65536:
        raise ValueError(f"the port must be a number from {lowest_port} to 65535")
    return target


def check_target(target: str) -> str:
    """A backend's host:port ([v6]:port for IPv6) or gRPC target URI; ValueError says what is accepted."""
    return _check_address(target, lowest_port=1)


def check_listen(address: str) -> str:
    """An address to listen on; port 0 picks a free port."""
    return _check_address(address, lowest_port=0)


def not_negative(value: int | float) -> int | float:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def backend_kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError("use " + " or ".join(KINDS))
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError("use " + " or ".join(choices))
        return value

    return check


def readable(path: str) -> str:
    """A file that can be read now, or "" for none."""
    if path:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ValueError(f"cannot read it: {exc.strerror}") from None
    return path


def check_listen_or_off(address: str) -> str:
    return check_listen(address) if address else address


def log_level(value: str) -> str:
    if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("use DEBUG, INFO, WARNING or ERROR")
    return value.upper()


def nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def ratio(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be from 0 to 1")
    return value


def same(value: Any) -> Any:
    return value


def trusted_proxies(value: str) -> str:
    TrustedProxies.parse(item.strip() for item in value.split(",") if item.strip())
    return value


KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}


@dataclass(frozen=True)
class Setting:
    """A server setting: a key of the config file's [server] table, a flag and a SEGMENTATION_* variable."""

    key: str  # e.g. "max_image_bytes": flag --max-image-bytes, variable SEGMENTATION_MAX_IMAGE_BYTES
    kind: type  # int, float, str or bool
    check: Callable[[Any], Any]
    apply: Callable[[Config, Any], Config]
    help: str
    path: bool = False  # a file: in the config file, relative to the file's folder


SERVER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "listen",
        str,
        check_listen,
        lambda c, v: replace(c, listen=v),
        "address to listen on, host:port (default 0.0.0.0:50051)",
    ),
    Setting(
        "max_image_bytes",
        int,
        at_most(MAX_IMAGE_BYTES_LIMIT),
        lambda c, v: replace(c, limits=replace(c.limits, max_image_bytes=v)),
        "largest accepted image in bytes (default 20 MiB)",
    ),
    Setting(
        "max_image_pixels",
        int,
        positive,
        lambda c, v: replace(c, limits=replace(c.limits, max_image_pixels=v)),
        "largest accepted width x height (default 50000000)",
    ),
    Setting(
        "predict_timeout",
        float,
        positive,
        lambda c, v: replace(c, predict_timeout_s=v),
        "upper bound on one Predict in seconds (default 30)",
    ),
    Setting(
        "stream_window",
        int,
        positive,
        lambda c, v: replace(c, stream_window=v),
        "images worked on at once per stream (default 4)",
    ),
    Setting(
        "stream_write_timeout",
        float,
        positive,
        lambda c, v: replace(c, stream_write_timeout_s=v),
        "seconds a stream's answer may wait for the client to read it before the stream is ended (default 30)",
    ),
    Setting(
        "max_concurrent_calls",
        int,
        positive,
        lambda c, v: replace(c, max_concurrent_calls=v),
        "images worked on at once, calls and stream items, shared fairly between callers (default: 4 per core)",
    ),
    Setting(
        "max_calls_per_caller",
        int,
        positive,
        lambda c, v: replace(c, max_calls_per_caller=v),
        "images one caller (a connection, or the x-tenant header's tenant) holds at once, worked on or answered and "
        "unread: past it its streams read no further and its calls wait (default 16)",
    ),
    Setting(
        "max_queue_wait",
        float,
        positive,
        lambda c, v: replace(c, max_queue_wait_s=v),
        "seconds an image may wait for a place (or a call for its caller's quota) before RESOURCE_EXHAUSTED with a "
        "retry hint (default 2)",
    ),
    Setting(
        "max_concurrent_rpcs",
        int,
        positive,
        lambda c, v: replace(c, max_concurrent_rpcs=v),
        "SegmentationService calls open at once, a stream counting once, before more are refused; health and "
        "reflection are not counted (default 256)",
    ),
    Setting(
        "workers",
        int,
        positive,
        lambda c, v: replace(c, workers=v),
        "threads for decoding and encoding (default: one per core)",
    ),
    Setting(
        "health_poll",
        float,
        positive,
        lambda c, v: replace(c, health_poll_s=v),
        "seconds between backend model status checks (default 1)",
    ),
    Setting(
        "shutdown_grace",
        float,
        positive,
        lambda c, v: replace(c, shutdown_grace_s=v),
        "seconds in-flight calls get on SIGTERM (default 10)",
    ),
    Setting(
        "log_level",
        str,
        log_level,
        lambda c, v: replace(c, log_level=v),
        "DEBUG, INFO, WARNING or ERROR (default INFO)",
    ),
    Setting(
        "max_shadow_in_flight",
        int,
        positive,
        lambda c, v: replace(c, max_shadow_in_flight=v),
        "shadow requests in flight at once before more are dropped (default 8)",
    ),
    Setting(
        "metrics_listen",
        str,
        check_listen_or_off,
        lambda c, v: replace(c, metrics_listen=v),
        "host:port for Prometheus metrics at /metrics; empty: off (default off)",
    ),
    Setting(
        "health_listen",
        str,
        check_listen_or_off,
        lambda c, v: replace(c, health_listen=v),
        "host:port for grpc.health.v1 alone, plaintext and open, for probes that cannot speak TLS; empty: off "
        "(default off)",
    ),
    Setting(
        "http_listen",
        str,
        check_listen_or_off,
        lambda c, v: replace(c, http_listen=v),
        "host:port for the service over HTTP (Connect JSON, gRPC-Web) and the web page at /; empty: off (default off)",
    ),
    Setting(
        "log_format",
        str,
        one_of("text", "json"),
        lambda c, v: replace(c, log_format=v),
        "text or json: one line per record, with the request id (default text)",
    ),
    Setting(
        "tls_cert",
        str,
        readable,
        lambda c, v: replace(c, tls_cert=v),
        "PEM certificate chain for TLS on the gateway's port (with tls_key); re-read when it changes",
        path=True,
    ),
    Setting("tls_key", str, readable, lambda c, v: replace(c, tls_key=v), "PEM private key for tls_cert", path=True),
    Setting(
        "tls_client_ca",
        str,
        readable,
        lambda c, v: replace(c, tls_client_ca=v),
        "PEM CA: clients must present a certificate it signed (mutual TLS)",
        path=True,
    ),
    Setting(
        "auth_tokens",
        str,
        readable,
        lambda c, v: replace(c, auth_tokens=v),
        "file of bearer tokens, one a line (# comments); calls need 'authorization: Bearer TOKEN'; re-read when it "
        "changes",
        path=True,
    ),
    Setting(
        "auth_jwks",
        str,
        readable,
        lambda c, v: replace(c, auth_jwks=v),
        "JWKS file of the public keys that sign JWT bearer tokens (with auth_jwt_issuer and auth_jwt_audience); "
        "re-read when it changes",
        path=True,
    ),
    Setting(
        "auth_jwt_issuer",
        str,
        same,
        lambda c, v: replace(c, auth_jwt_issuer=v),
        "the iss a JWT must have",
    ),
    Setting(
        "auth_jwt_audience",
        str,
        same,
        lambda c, v: replace(c, auth_jwt_audience=v),
        "the aud a JWT must have",
    ),
    Setting(
        "auth_jwt_tenant_claim",
        str,
        nonempty,
        lambda c, v: replace(c, auth_jwt_tenant_claim=v),
        "the JWT claim that names the caller's tenant; without it, sub (default tenant)",
    ),
    Setting(
        "auth_jwt_scope_claim",
        str,
        nonempty,
        lambda c, v: replace(c, auth_jwt_scope_claim=v),
        "the JWT claim whose model:GRANT items are the models it may call (default scope)",
    ),
    Setting(
        "auth_certificates",
        str,
        readable,
        lambda c, v: replace(c, auth_certificates=v),
        "file of the client certificate identities (URI SAN or CN) that may call, one a line with tenant= and "
        "models= as in auth_tokens; needs tls_client_ca; re-read when it changes",
        path=True,
    ),
    Setting(
        "auth_health",
        bool,
        same,
        lambda c, v: replace(c, auth_health=v),
        "true: health and reflection need a token too (default false: open)",
    ),
    Setting(
        "trusted_proxies",
        str,
        trusted_proxies,
        lambda c, v: replace(c, trusted_proxies=v),
        "proxies whose x-tenant header names the caller, comma-separated: addresses, networks (10.0.0.0/8) or "
        "client certificate identities; empty: x-tenant is ignored (default)",
    ),
    Setting(
        "reflection",
        bool,
        same,
        lambda c, v: replace(c, reflection=v),
        "serve grpc.reflection, what grpcurl's list and describe use (default true)",
    ),
    Setting(
        "read_timeout",
        float,
        positive,
        lambda c, v: replace(c, read_timeout_s=v),
        "seconds a request message or HTTP body may take to arrive once the call has a place for it (default 30)",
    ),
    Setting(
        "header_timeout",
        float,
        positive,
        lambda c, v: replace(c, header_timeout_s=v),
        "seconds an HTTP request's headers may take to arrive (default 10)",
    ),
    Setting(
        "max_connection_idle",
        float,
        positive,
        lambda c, v: replace(c, max_connection_idle_s=v),
        "seconds a gRPC connection without calls stays open (default 300)",
    ),
    Setting(
        "max_connection_age",
        float,
        positive,
        lambda c, v: replace(c, max_connection_age_s=v),
        "seconds a gRPC connection lives before the gateway asks its client to reconnect, its calls given "
        "shutdown_grace to finish (default 1800)",
    ),
    Setting(
        "tracing",
        str,
        lambda v: one_of("otlp", "console")(v) if v else v,
        lambda c, v: replace(c, tracing=v),
        "OpenTelemetry traces: otlp (to OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4317) or console; empty: off "
        "(default off; needs the 'tracing' extra)",
    ),
    Setting(
        "tracing_sample_ratio",
        float,
        ratio,
        lambda c, v: replace(c, tracing_sample_ratio=v),
        "share of new traces recorded, 0 to 1; a caller's sampled traceparent is always followed (default 1)",
    ),
    Setting(
        "config_poll",
        float,
        not_negative,
        lambda c, v: replace(c, config_poll_s=v),
        "seconds between checks of the config file for changes; 0: reload only on SIGHUP (default 0)",
    ),
)
SERVER_KEYS = {setting.key: setting for setting in SERVER_SETTINGS}


def with_server_settings(config: Config, values: Mapping[str, Any]) -> Config:
    """`config` with the server settings among `values` (keyed by setting key) applied."""
    for key, value in values.items():
        if key in SERVER_KEYS:
            config = SERVER_KEYS[key].apply(config, value)
    return config


def check_config(config: Config, origins: Mapping[str, str] | None = None) -> Config:
    """The checks across settings, once every source has been applied.

    `origins` maps a setting's key (a flag's: "tls_cert", "backend_cert") to the flag or variable that set it
    ("--tls-cert", "SEGMENTATION_TLS_CERT"); the other settings came from the config file, config.source, if any.
    A message starts as the file's and the flags' do: FILE: server.tls_cert = '...': or --tls-cert='...':.
    """
    origins = origins or {}

    def spelled(key: str, file_key: str, like: str) -> str:
        """Setting `key` (`file_key` in the file) named as the setting `like` was given."""
        origin = origins.get(like, "")
        if origin.startswith("--"):
            return "--" + key.replace("_", "-")
        if origin:
            return "SEGMENTATION_" + key.upper()
        return file_key if config.source else file_key.removeprefix("server.")

    def error(key: str, file_key: str, value: str, problem: str) -> ConfigError:
        if key in origins:
            return ConfigError(f"{origins[key]}={value!r}: {problem}")
        if config.source:
            return ConfigError(f"{config.source}: {file_key} = {value!r}: {problem}")
        return ConfigError(f"{file_key.removeprefix('server.')} = {value!r}: {problem}")

    for given, missing in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if getattr(config, given) and not getattr(config, missing):
            other = spelled(missing, f"server.{missing}", like=given)
            problem = f"needs {other} too: tls_cert and tls_key go together, or neither for plaintext"
            raise error(given, f"server.{given}", getattr(config, given), problem)
    if config.tls_client_ca and not config.tls_cert:
        cert, key = (spelled(k, f"server.{k}", like="tls_client_ca") for k in ("tls_cert", "tls_key"))
        problem = f"needs {cert} and {key}: client certificates (mutual TLS) are checked over TLS"
        raise error("tls_client_ca", "server.tls_client_ca", config.tls_client_ca, problem)
    if config.auth_jwks and not (config.auth_jwt_issuer and config.auth_jwt_audience):
        issuer, audience = (
            spelled(k, f"server.{k}", like="auth_jwks") for k in ("auth_jwt_issuer", "auth_jwt_audience")
        )
        problem = f"needs {issuer} and {audience}: a JWT is accepted only for one issuer and audience"
        raise error("auth_jwks", "server.auth_jwks", config.auth_jwks, problem)
    if config.auth_certificates and not config.tls_client_ca:
        ca = spelled("tls_client_ca", "server.tls_client_ca", like="auth_certificates")
        problem = f"needs {ca}: client certificate identities are those of certificates the CA signed"
        raise error("auth_certificates", "server.auth_certificates", config.auth_certificates, problem)
    for i, backend in enumerate(config.backends):
        where = f"backends[{i}]"
        for given, missing in (("cert", "key"), ("key", "cert")):
            if getattr(backend, given) and not getattr(backend, missing):
                other = spelled(f"backend_{missing}", f"{where}.{missing}", like=f"backend_{given}")
                problem = f"needs {other} too: a backend's cert and key go together (mutual TLS), or neither"
                raise error(f"backend_{given}", f"{where}.{given}", getattr(backend, given), problem)
        if backend.cert and not backend.ca:
            ca = spelled("backend_ca", f"{where}.ca", like="backend_cert")
            problem = f"needs {ca}, the CA (PEM file) that signed the backend's certificate: mutual TLS is over TLS"
            raise error("backend_cert", f"{where}.cert", backend.cert, problem)
    kinds = {backend.name: backend.kind for backend in config.backends}
    for i, model in enumerate(config.models):
        for called in (model, *model.variant_models):
            kind = kinds.get(called.backend, DEFAULT_KIND)
            if called.version_label and not KINDS[kind].version_labels:
                where = f"models[{i}]" if called is model else f"models[{i}].variants ({called.name})"
                problem = f"backend {called.backend!r} speaks {kind}, which has no version labels; pin a version"
                raise error("version_label", f"{where}.version_label", called.version_label, problem)
    return config
