"""What every gRPC backend kind shares: one channel per backend (balanced, retried, TLS), the caller's request id
and trace sent on, and gRPC failures turned into the gateway's own errors."""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import TYPE_CHECKING

import grpc

from service import tracing
from service.context import REQUEST_ID_KEY, request_id
from service.errors import (
    BackendFailed,
    BackendUnavailable,
    DeadlineExceeded,
    GatewayError,
    ModelNotFound,
    Overloaded,
)

if TYPE_CHECKING:
    from service.config import BackendConfig

# Large enough for any mask a model server may return for an image within the gateway's pixel limit.
MAX_BACKEND_MESSAGE_BYTES = 1 << 30


# round_robin spreads calls over every address of the target and skips those that are down; UNAVAILABLE is
# retried by gRPC itself, quickly: a backend that is down must turn into an UNAVAILABLE answer within a second
# (backoffs of at most 0.05 + 0.1 + 0.2 + 0.3 s), not a hang. Five attempts (gRPC's most), because a retry can
# still be picked onto a target that has just died before round_robin has seen it go (a CI run under load saw
# three attempts run out that way).
def _service_config(services: tuple[str, ...]) -> str:
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{"service": service} for service in services],
                    "retryPolicy": {
                        "maxAttempts": 5,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "0.3s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


_CHANNEL_OPTIONS = (
    ("grpc.enable_retries", 1),
    # gRPC retries a call only while all of it fits in this buffer (256 KiB by default, less than one Predict
    # request); the bytes are in memory anyway.
    ("grpc.per_rpc_retry_buffer_size", 64 << 20),
    ("grpc.max_send_message_length", MAX_BACKEND_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_BACKEND_MESSAGE_BYTES),
    # A restarted backend is found again within half a second instead of gRPC's default backoff of up to
    # 2 minutes; two connection attempts a second to a dead backend cost nothing worth saving.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


def channel_target(targets: tuple[str, ...]) -> str:
    """One gRPC target for a backend's targets.

    One target goes to gRPC as it is (its DNS resolver re-resolves names). Several host:port entries become one
    static address list (`ipv4:a,b` or `ipv6:[a],[b]`), each name resolved once, now: gRPC's Python API has no
    resolver for a list of names. For pods that come and go, use one `dns:///` name instead.
    """
    if not targets:
        raise ValueError("a backend needs at least one target")
    if len(targets) == 1:
        return targets[0]
    families: dict[int, list[str]] = {socket.AF_INET: [], socket.AF_INET6: []}
    for target in targets:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve backend target {target}: {exc.strerror}") from exc
        found = {
            family: [str(ipaddress.ip_address(a[0])) for f, _, _, _, a in infos if f == family] for family in families
        }
        # A name with both kinds of address (localhost) counts as IPv4, what TF Serving listens on by default.
        family = socket.AF_INET if found[socket.AF_INET] else socket.AF_INET6
        for ip in found[family]:
            address = f"{ip}:{port}" if family == socket.AF_INET else f"[{ip}]:{port}"
            if address not in families[family]:
                families[family].append(address)
    if families[socket.AF_INET] and families[socket.AF_INET6]:
        raise OSError(f"backend targets {', '.join(targets)} mix IPv4 and IPv6 addresses; gRPC takes one kind a list")
    if families[socket.AF_INET]:
        return "ipv4:" + ",".join(families[socket.AF_INET])
    return "ipv6:" + ",".join(families[socket.AF_INET6])


def open_channel(config: BackendConfig, services: tuple[str, ...]) -> grpc.aio.Channel:
    """One channel to the backend's targets, for calls to `services` (full gRPC service names, which gRPC retries
    while UNAVAILABLE): TLS when the backend has a CA, mutual TLS with a cert and key too."""
    options = (("grpc.service_config", _service_config(services)), *_CHANNEL_OPTIONS)
    target = channel_target(config.targets)
    if not config.ca:
        return grpc.aio.insecure_channel(target, options=options)
    # Read once, when the channel is made (at start, or by a reload that changes this backend).
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(config.ca),
        private_key=_read(config.key) if config.key else None,
        certificate_chain=_read(config.cert) if config.cert else None,
    )
    return grpc.aio.secure_channel(target, credentials, options=options)


def call_metadata() -> list[tuple[str, str]]:
    """The caller's request id, sent on so that the backend's logs (or a proxy's) can be matched with ours, and
    the trace's context when tracing is on."""
    current = request_id.get()
    metadata = [(REQUEST_ID_KEY, current)] if current != "-" else []
    tracing.inject(metadata)
    return metadata


def closed(target: str) -> BackendUnavailable:
    """For a call on a channel already closed: the gateway is stopping, or a reload retired the backend."""
    return BackendUnavailable("the model backend's channel is closed; try again", detail=f"{target}: channel closed")


def translate(error: grpc.aio.AioRpcError, target: str, what: str) -> GatewayError:
    """The domain error for a failed backend call, worded for the gateway's caller."""
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return BackendUnavailable("the model backend is unavailable; try again later", detail=f"{target}: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the deadline passed while waiting for the model backend ({what})")
    if code == grpc.StatusCode.NOT_FOUND:
        return ModelNotFound(f"{what} is not served by the backend: {details}")
    if code == grpc.StatusCode.INVALID_ARGUMENT and "version label" in details:
        return ModelNotFound(f"{what}: {details}")
    if code == grpc.StatusCode.FAILED_PRECONDITION and "signature" in details:
        return ModelNotFound(f"{what}: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        # gRPC's own refusal of an answer over MAX_BACKEND_MESSAGE_BYTES: the backend answered something unusable.
        return BackendFailed(f"the model backend's answer for {what} is too large: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Overloaded(f"the model backend is overloaded ({details}); try again later")
    if code == grpc.StatusCode.CANCELLED:
        # The caller's own cancellation never gets here (it arrives as asyncio.CancelledError): the backend or
        # the channel cancelled the call.
        return BackendUnavailable(
            f"the model backend cancelled the call ({what}); try again later", detail=f"{target}: {details}"
        )
    return BackendFailed(f"the model backend failed for {what}: {code.name}: {details}")


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()
