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

import logging
from collections.abc import Iterable, Mapping, Sequence

from service.auth.caller import Caller
from service.auth.credentials import Credential
from service.auth.grants import EVERYTHING
from service.auth.proxies import TrustedProxies
from service.identifiers import MAX_ID_CHARS, escaped, is_safe_id

log = logging.getLogger(__name__)

TENANT_KEY = "x-tenant"


def certificate_identity(auth_context: Mapping[str, Sequence[bytes]]) -> str:
    """A verified client certificate's identity: its URI SAN (a SPIFFE ID), else its subject's CN, else its first
    other SAN (a DNS name, an email address), else its whole subject; "" without a certificate."""

    def names(key: str) -> list[str]:
        return [name.decode("utf-8", "replace") for name in auth_context.get(key, ()) if name]  # gRPC gives b"" too

    alternative = names("x509_subject_alternative_name")
    uris = [name for name in alternative if "://" in name]
    return next(iter(uris or names("x509_common_name") or alternative or names("x509_subject")), "")


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
