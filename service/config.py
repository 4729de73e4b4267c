"""The gateway's one typed configuration: server settings, backends, models and their profiles.

Each key is declared once, on the field that holds it (service/settings.py): its type, default, check and help.
Read by service/config_file.py (the TOML file) and service/flags.py (flags and SEGMENTATION_* variables, and the
checks across keys); described by service/config_schema.py. Immutable: a new configuration is a new object.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.auth.proxies import TrustedProxies
from service.backends.kinds import DEFAULT_KIND, KINDS
from service.cores import usable_cores
from service.profiles import AUTO, BUILTIN_PROFILES, Profile, Upscale
from service.settings import (
    at_most,
    check_listen,
    check_listen_or_off,
    check_target,
    nested,
    nonempty,
    not_negative,
    one_of,
    percentage,
    positive,
    ratio,
    readable,
    setting,
    with_schema,
)

MIB = 1024 * 1024
DEFAULT_BACKEND = "default"
# 2 x max_image_bytes + 1 MiB is gRPC's receive limit, a C int.
MAX_IMAGE_BYTES_LIMIT = 1000 * MIB


class ConfigError(Exception):
    """A bad flag, variable, config file or labels file; the message is one line for the user."""


@with_schema(enum=list(KINDS))
def backend_kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError("use " + " or ".join(KINDS))
    return value


@with_schema(pattern="^(?i:debug|info|warning|error)$")
def log_level(value: str) -> str:
    if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("use DEBUG, INFO, WARNING or ERROR")
    return value.upper()


def trusted_proxies(value: str) -> str:
    TrustedProxies.parse(item.strip() for item in value.split(",") if item.strip())
    return value


def builtin_profile(name: str) -> str:
    if name not in BUILTIN_PROFILES:
        raise ValueError(f"no such profile; built in: {', '.join(BUILTIN_PROFILES)} (others need a config file)")
    return name


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


_TARGETS = {
    "description": "one gRPC target (host:port, dns:///host:port, ipv4:, unix:...) or several host:port entries",
    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
}


@dataclass(frozen=True)
class BackendConfig:
    """One model server deployment: one channel, balanced round robin over its targets."""

    name: str = setting(DEFAULT_BACKEND, "what models name as their backend", nonempty)
    kind: str = setting(
        DEFAULT_KIND, "the protocol it speaks: " + " or ".join(KINDS), backend_kind, flag="backend-kind"
    )
    targets: tuple[str, ...] = setting(
        ("localhost:8500",),
        "the model server's gRPC target, host:port",
        check_target,
        flag="backend",
        shown="localhost:8500",
        form=_TARGETS,
    )
    # Empty: plaintext, as TF Serving listens by default.
    ca: str = setting("", "PEM CA of the backend's certificate: TLS to it", readable, flag="backend-ca", path=True)
    cert: str = setting(
        "", "PEM client certificate, mutual TLS to the backend", readable, flag="backend-cert", path=True
    )
    key: str = setting(
        "", "PEM private key of the backend's client certificate", readable, flag="backend-key", path=True
    )


_INTERFACE = "(default: the profile's)"


@dataclass(frozen=True)
class ModelConfig:
    """A model as clients name it, and how to call it at its backend and read its answer."""

    name: str = setting("deeplab", "the model's name, for clients and at the backend", nonempty, flag="model-name")
    backend: str = setting(DEFAULT_BACKEND, "a [[backends]] name", nonempty, variant=True, shown="the only backend")
    served_name: str = setting("", "the model's name at the backend", nonempty, variant=True, shown="name")
    signature: str = setting("", "signature to run", nonempty, flag="signature", variant=True, shown="the profile's")
    input_key: str = setting(
        "", "input tensor alias in the signature", nonempty, flag="input-key", variant=True, shown="the profile's"
    )
    output_key: str = setting(
        "", "output tensor alias in the signature", nonempty, flag="output-key", variant=True, shown="the profile's"
    )
    scores_key: str = setting(
        "",
        "alias of the scores behind the class ids",
        nonempty,
        flag="scores-key",
        variant=True,
        shown="the profile's",
    )
    profile: Profile = setting(
        AUTO,
        "what the model takes and returns: a built-in profile (auto: read from the servable's signatures, exact "
        "where it offers scores; deeplab-zoo or deeplab-257), a [profiles.NAME], or a table of profile keys",
        builtin_profile,
        flag="profile",
        variant=True,
        shown="auto",
        form={"oneOf": [{"type": "string"}, {"$ref": "#/$defs/profile"}]},
    )
    labels: tuple[str, ...] = setting(
        (),
        "labels file, one class name a line, class 0 first",
        nonempty,
        flag="labels",
        shown="class_<id>",
        form={"type": "string", "minLength": 1},
    )
    # Pinned at the backend; a request's own version or label wins. Neither means the latest version.
    version: int | None = setting(None, "the model version to call", positive, variant=True, shown="the latest")
    version_label: str = setting("", "the version label to call (tfserving only)", nonempty, variant=True)
    variants: tuple[Variant, ...] = setting(
        (),
        "a weighted split of the model's traffic, one table a variant",
        form={"type": "array", "items": {"$ref": "#/$defs/variant"}},
    )
    shadow: Shadow | None = setting(
        None, "a share of the model's requests also sent to one of its variants", form={"$ref": "#/$defs/shadow"}
    )

    @property
    def name_at_backend(self) -> str:
        return self.served_name or self.name

    @property
    def reads_profile(self) -> bool:
        """Whether its profile is read from its servable: `auto`, with no signature or tensor named of its own (a
        model that names them has chosen deeplab-zoo's settings for the rest)."""
        own = self.signature or self.input_key or self.output_key or self.scores_key
        return self.profile.detect and not own

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


# A model table's key that is no field of the model: the configuration's default_model names the model that has it.
MODEL_DEFAULT_KEY = "default"
MODEL_DEFAULT_HELP = "the model for requests that name none (at most one; default: the first)"


@dataclass(frozen=True)
class Variant:
    """One arm of a model's traffic split: the model as this variant calls it, and its share of the traffic."""

    name: str = setting(help="reported with every answer it serves", check=nonempty)
    weight: int = setting(
        help="its share is weight / the sum of the weights; 0: never chosen by the split (e.g. a shadow only)",
        check=not_negative,
    )
    # The model's settings with the variant's own: a version or label, and optionally another served model,
    # backend, signature, keys or profile.
    model: ModelConfig


@dataclass(frozen=True)
class Shadow:
    """A share of a model's requests also sent, in the background, to one of its variants, for comparison."""

    variant: str = setting(help="the variant the shadow requests go to", check=nonempty)
    percent: float = setting(help="of the model's requests, 0 < percent <= 100", check=percentage)


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = setting(
        20 * MIB, "largest accepted image in bytes", at_most(MAX_IMAGE_BYTES_LIMIT), shown="20 MiB"
    )
    max_image_pixels: int = setting(50_000_000, "largest accepted width x height", positive)
    max_regions: int = setting(
        1000, "most regions an answer lists (a request's regions.min_area leaves out smaller ones)", positive
    )
    max_polygon_points: int = setting(200_000, "most vertices of the regions' outlines in one answer", positive)
    max_probability_maps: int = setting(4, "most probability maps one answer carries", positive)
    # A cut-out decodes the photo again once the model has answered (3 bytes a pixel) and builds its alpha and
    # encoding at that size: 16 megapixels holds 4K and a 12-megapixel phone photo (a 4K one peaks at about 63 MB
    # beyond the mask's work, in a worker thread).
    max_cutout_pixels: int = setting(16_000_000, "largest width x height of a photo an answer cuts out", positive)


@dataclass(frozen=True)
class Config:
    """The server settings (the file's [server] table, each also a flag and a variable), backends and models."""

    listen: str = setting("0.0.0.0:50051", "address to listen on, host:port", check_listen)
    backends: tuple[BackendConfig, ...] = (BackendConfig(),)
    models: tuple[ModelConfig, ...] = (ModelConfig(),)
    default_model: str = "deeplab"
    limits: Limits = nested(Limits())
    predict_timeout_s: float = setting(
        30.0,
        "upper bound on one Predict in seconds; the caller's own deadline applies when it is shorter",
        positive,
        name="predict_timeout",
    )
    stream_window: int = setting(4, "images worked on at once per SegmentImageStream call", positive)
    stream_write_timeout_s: float = setting(
        30.0,
        "seconds a stream's answer may wait for the client to read it before the stream is ended (RESOURCE_EXHAUSTED)",
        positive,
        name="stream_write_timeout",
    )
    # Four per core: about what a core's decodes and the model server's calls keep busy; more only queue inside.
    max_concurrent_calls: int = setting(
        help="images worked on at once, calls and stream items, shared fairly between callers",
        check=positive,
        factory=lambda: 4 * usable_cores(),
        shown="4 per core",
    )
    max_calls_per_caller: int = setting(
        16,
        "images one caller (who its credentials say, or its connection) holds at once, worked on or answered and "
        "unread: past it its streams read no further and its calls wait",
        positive,
    )
    max_queue_wait_s: float = setting(
        2.0,
        "seconds an image may wait for a place (or a call for its caller's quota) before RESOURCE_EXHAUSTED with a "
        "retry hint",
        positive,
        name="max_queue_wait",
    )
    # Each open call may hold one received message beyond the images in progress.
    max_concurrent_rpcs: int = setting(
        256,
        "SegmentationService calls open at once, a stream counting once, before more are refused; health and "
        "reflection are not counted",
        positive,
    )
    workers: int = setting(
        help="threads for the CPU stages (decode, resize, encode)",
        check=positive,
        factory=usable_cores,
        shown="one per core",
    )
    health_poll_s: float = setting(1.0, "seconds between backend model status checks", positive, name="health_poll")
    shutdown_grace_s: float = setting(10.0, "seconds in-flight calls get on SIGTERM", positive, name="shutdown_grace")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR", log_level)
    max_shadow_in_flight: int = setting(
        8, "shadow requests in flight at once, all models together, before more are dropped (and counted)", positive
    )
    config_poll_s: float = setting(
        0.0,
        "seconds between checks of the config file for changes; 0: reload only on SIGHUP",
        not_negative,
        name="config_poll",
    )
    metrics_listen: str = setting("", "host:port for Prometheus metrics at /metrics; empty: off", check_listen_or_off)
    health_listen: str = setting(
        "",
        "host:port for grpc.health.v1 alone, plaintext and without tokens, for probes that cannot speak TLS; "
        "empty: off",
        check_listen_or_off,
    )
    http_listen: str = setting(
        "",
        "host:port for the service over HTTP (Connect JSON, gRPC-Web) and the web page at /; empty: off",
        check_listen_or_off,
    )
    log_format: str = setting("text", "text or json: one line per record, with the request id", one_of("text", "json"))
    tls_cert: str = setting(
        "",
        "PEM certificate chain for TLS on the gateway's port (with tls_key); re-read when it changes",
        readable,
        path=True,
    )
    tls_key: str = setting("", "PEM private key for tls_cert", readable, path=True)
    tls_client_ca: str = setting(
        "", "PEM CA: clients must present a certificate it signed (mutual TLS)", readable, path=True
    )
    auth_tokens: str = setting(
        "",
        "file of bearer tokens, one a line (# comments), each with the tenant it names and the models it may "
        "call; calls need 'authorization: Bearer TOKEN'; re-read when it changes",
        readable,
        path=True,
    )
    auth_jwks: str = setting(
        "",
        "JWKS file of the public keys that sign JWT bearer tokens (with auth_jwt_issuer and auth_jwt_audience); "
        "re-read when it changes",
        readable,
        path=True,
    )
    auth_jwt_issuer: str = setting("", "the iss a JWT must have")
    auth_jwt_audience: str = setting("", "the aud a JWT must have")
    auth_jwt_tenant_claim: str = setting(
        "tenant", "the JWT claim that names the caller's tenant; without it, sub", nonempty
    )
    auth_jwt_scope_claim: str = setting(
        "scope", "the JWT claim whose model:GRANT items are the models it may call", nonempty
    )
    auth_certificates: str = setting(
        "",
        "file of the client certificate identities (URI SAN or CN) that may call, one a line with tenant= and "
        "models= as in auth_tokens; needs tls_client_ca; empty: every certificate the CA signed; re-read when it "
        "changes",
        readable,
        path=True,
    )
    auth_health: bool = setting(False, "true: health and reflection need a token too")
    trusted_proxies: str = setting(
        "",
        "proxies whose x-tenant header names the caller, comma-separated: addresses, networks (10.0.0.0/8) or "
        "client certificate identities; empty: x-tenant is ignored",
        trusted_proxies,
        shown="none",
    )
    reflection: bool = setting(True, "serve grpc.reflection, what grpcurl's list and describe use")
    read_timeout_s: float = setting(
        30.0,
        "seconds a request message or HTTP body may take to arrive once the call has a place for it",
        positive,
        name="read_timeout",
    )
    header_timeout_s: float = setting(
        10.0, "seconds an HTTP request's headers may take to arrive", positive, name="header_timeout"
    )
    max_connection_idle_s: float = setting(
        300.0, "seconds a gRPC connection without calls stays open", positive, name="max_connection_idle"
    )
    max_connection_age_s: float = setting(
        1800.0,
        "seconds a gRPC connection lives before the gateway asks its client to reconnect, its calls given "
        "shutdown_grace to finish",
        positive,
        name="max_connection_age",
    )
    tracing: str = setting(
        "",
        "OpenTelemetry traces: otlp (to OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4317) or console; empty: off "
        "(needs the 'tracing' extra)",
        one_of("otlp", "console", off=True),
        shown="off",
    )
    tracing_sample_ratio: float = setting(
        1.0, "share of new traces recorded, 0 to 1; a caller's sampled traceparent is always followed", ratio
    )
    source: str = ""  # the config file, if any, for messages

    @property
    def model(self) -> ModelConfig:
        """The default model."""
        return next(m for m in self.models if m.name == self.default_model)

    @property
    def proxies(self) -> TrustedProxies:
        return TrustedProxies.parse(item.strip() for item in self.trusted_proxies.split(",") if item.strip())
