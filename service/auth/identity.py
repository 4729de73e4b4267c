"""Who a call's caller is: the unit of quotas, fair shares and log lines, and what it may call.

In order:
1. a trusted proxy's `x-tenant` header (the proxy, e.g. the shipped Envoy, authenticated the client and names it);
2. the tenant its credential names (a token's `tenant=`, a JWT's tenant claim, a certificate's entry);
3. the credential itself (`token:<digest prefix>`, `jwt:<subject>`, `certificate:<identity>`);
4. its connection (the peer address), when the gateway authenticates nobody.

`x-tenant` from anyone else is ignored: a header a client sets says nothing about who it is. What the caller may
call is always its credential's (every model without authentication).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from service.auth.credentials import Credential
from service.auth.grants import EVERYTHING, Grants
from service.identifiers import MAX_ID_CHARS, escaped, is_safe_id

log = logging.getLogger(__name__)

TENANT_KEY = "x-tenant"
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Caller:
    name: str  # "tenant:team-a", "token:9f86d081884c", "ipv4:127.0.0.1:51234", ...
    grants: Grants = EVERYTHING


NOBODY = Caller("unknown")  # outside calls, and in calls refused before they were named


def peer_host(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a gRPC peer ("ipv4:10.0.0.5:4711", "ipv6:[::1]:4711") or an HTTP one ("http:..." the
    same way); None for anything else (unix sockets)."""
    kind, _, rest = peer.removeprefix("http:").partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host = rest.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def certificate_identity(auth_context: Mapping[str, Sequence[bytes]]) -> str:
    """A verified client certificate's identity: its URI SAN (a SPIFFE ID), else its subject's CN, else its first
    other SAN (a DNS name, an email address), else its whole subject; "" without a certificate."""

    def names(key: str) -> list[str]:
        return [name.decode("utf-8", "replace") for name in auth_context.get(key, ()) if name]  # gRPC gives b"" too

    alternative = names("x509_subject_alternative_name")
    uris = [name for name in alternative if "://" in name]
    return next(iter(uris or names("x509_common_name") or alternative or names("x509_subject")), "")


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose `x-tenant` header names the caller: networks, and certificate identities."""

    networks: tuple[IpNetwork, ...] = ()
    identities: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, items: Iterable[str]) -> TrustedProxies:
        """Addresses or networks (10.0.0.0/8, ::1) and certificate identities (spiffe://..., or a CN);
        ValueError says what is accepted."""
        networks, identities = [], set()
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if not is_safe_id(item, 2048):
                    raise ValueError(
                        f"{item!r}: use an address or network (10.0.0.0/8) or a client certificate identity"
                    ) from None
                identities.add(item)
        return cls(tuple(networks), frozenset(identities))

    def __bool__(self) -> bool:
        return bool(self.networks or self.identities)

    def trust(self, peer: str, identity: str) -> bool:
        if identity and identity in self.identities:
            return True
        host = peer_host(peer)
        return host is not None and any(host in network for network in self.networks)


def _tenant_header(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    for key, value in metadata or ():
        if key == TENANT_KEY:
            if isinstance(value, str) and is_safe_id(value, MAX_ID_CHARS):
                return value
            log.warning("x-tenant %s from a trusted proxy ignored: not a safe name", escaped(value))
            return ""
    return ""


def identify(
    credential: Credential | None,
    metadata: Iterable[tuple[str, str | bytes]] | None,
    peer: str,
    identity: str,
    proxies: TrustedProxies,
) -> Caller:
    """The caller of a call authenticated by `credential` (None: nothing was required), from `peer` with
    certificate `identity` ("" without)."""
    grants = credential.grants if credential is not None else EVERYTHING
    if proxies and proxies.trust(peer, identity) and (tenant := _tenant_header(metadata)):
        return Caller(f"tenant:{tenant}", grants)
    if credential is not None:
        return Caller(credential.caller, grants)
    return Caller(peer or "unknown", grants)
