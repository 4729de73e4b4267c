"""The proxies whose `x-tenant` header names a call's caller (`trusted_proxies`), and the peer addresses they are
matched against."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from service.identifiers import is_safe_id

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
