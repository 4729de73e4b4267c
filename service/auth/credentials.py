"""What a call presents, checked: a bearer token (the tokens file, or a JWT against the JWKS) in its headers, or
the identity of its client certificate (mutual TLS).

`Credentials.bearer` works from the headers alone, so the gRPC interceptor and the HTTP front end can refuse a call
the moment its headers arrive, before its message is read. `Credentials.certificate` needs the TLS session, which
gRPC shows a call's handler only: a certificate has already been verified by the TLS handshake (tls_client_ca),
so only its entry is looked up then.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from service.auth.files import Entry, credential_file, token_digest
from service.auth.grants import EVERYTHING, Grants
from service.auth.jwt_tokens import InvalidJwt, JwtSettings, JwtVerifier, looks_like_jwt
from service.errors import Unauthenticated

DENIED_MESSAGE = "missing or invalid bearer token"
AUTHORIZATION_KEY = "authorization"
# How many hex digits of a token's digest name it in logs and as a caller: enough to tell tokens apart, too few
# to search for the token.
TOKEN_ID_DIGITS = 12


@dataclass(frozen=True)
class Credential:
    """What authenticated a call."""

    kind: str  # "token", "jwt" or "certificate"
    subject: str  # safe in logs: a token's digest prefix, a JWT's tenant or subject, a certificate identity
    tenant: str  # the tenant it names, "" if none
    grants: Grants

    @property
    def caller(self) -> str:
        """The name of the caller it authenticates."""
        return f"tenant:{self.tenant}" if self.tenant else f"{self.kind}:{self.subject}"


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an `authorization: Bearer TOKEN` header; None without one."""
    for key, value in metadata or ():
        if key == AUTHORIZATION_KEY and isinstance(value, str):
            # The scheme's name is case-insensitive (RFC 9110 §11.1): "bearer x" is the same credential.
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


def _token_entry(entries: tuple[Entry, ...], token: str) -> Entry | None:
    """The entry of `token`, comparing with every entry so that the time taken does not say which matched."""
    given = token_digest(token).encode()
    found = None
    for entry in entries:
        if hmac.compare_digest(given, entry.key.encode()):
            found = entry
    return found


class Credentials:
    """The configured ways to authenticate, any of them: a tokens file, a JWKS, client certificates."""

    def __init__(
        self,
        tokens: str = "",
        jwt: JwtSettings | None = None,
        certificates: str = "",
        client_certificates: bool = False,
    ) -> None:
        self._tokens = credential_file(tokens, "tokens", token_digest) if tokens else None
        self._jwt = JwtVerifier(jwt) if jwt else None
        self._certificates = credential_file(certificates, "certificate identities", str) if certificates else None
        # With tls_client_ca the handshake admits only certificates the CA signed: they authenticate a caller
        # when no bearer scheme is configured.
        self._client_certificates = client_certificates

    @property
    def bearer_required(self) -> bool:
        return self._tokens is not None or self._jwt is not None

    @property
    def required(self) -> bool:
        return self.bearer_required or self._client_certificates

    def bearer(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Credential | None:
        """The credential in the headers; None when no bearer scheme is configured; Unauthenticated when one is
        and the headers carry no valid token."""
        if not self.bearer_required:
            return None
        token = bearer_token(metadata)
        if not token:
            raise Unauthenticated(DENIED_MESSAGE)
        if self._jwt is not None and looks_like_jwt(token):
            try:
                verified = self._jwt.verify(token)
            except InvalidJwt as exc:
                raise Unauthenticated(f"invalid bearer token: {exc}") from None
            return Credential("jwt", verified.subject, verified.subject if verified.tenant else "", verified.grants)
        if self._tokens is not None:
            entry = _token_entry(self._tokens.value, token)
            if entry is not None:
                return Credential("token", entry.key[:TOKEN_ID_DIGITS], entry.tenant, entry.grants)
        raise Unauthenticated(DENIED_MESSAGE)

    def certificate(self, identity: str) -> Credential | None:
        """The credential of a verified client certificate's identity (SAN URI or CN); None without client
        certificates; Unauthenticated when an identities file is configured and does not list it."""
        if not self._client_certificates or not identity:
            return None
        if self._certificates is None:
            return Credential("certificate", identity, "", EVERYTHING)
        for entry in self._certificates.value:
            if entry.key == identity:
                return Credential("certificate", identity, entry.tenant, entry.grants)
        raise Unauthenticated("this client certificate's identity is not allowed to call this service")
