"""Bearer tokens that are JWTs, verified with PyJWT against the public keys of a JWKS file (`auth_jwks`).

A token is accepted when its signature verifies with the key its header names (`kid`; asymmetric algorithms only:
an HMAC or unsigned token is refused whatever it says), it has not expired, and its issuer and audience are the
configured ones. Its tenant claim names the caller (else its subject), and its scope claim's `model:GRANT` items
are the models it may call (service/auth/grants.py); a token without any may call none. The JWKS file is read
again when it changes, so keys rotate without a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt

from service.auth.files import CredentialFileError, WatchedFile
from service.auth.grants import Grants
from service.identifiers import MAX_ID_CHARS, is_safe_id

# Public-key algorithms only: with HS256 a public key would be used as the shared secret (the "alg confusion" of
# RFC 8725 §2.1), and "none" is no signature at all.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
SCOPE_PREFIX = "model:"
# Clock skew allowed between the issuer and this gateway for exp, nbf and iat.
LEEWAY_S = 30
# Far above any real token; a bigger one is refused before it is parsed.
MAX_JWT_CHARS = 8192


class InvalidJwt(Exception):
    """Why a JWT was refused, in words safe to tell the caller."""


@dataclass(frozen=True)
class JwtSettings:
    jwks: str  # the JWKS file
    issuer: str
    audience: str
    tenant_claim: str = "tenant"
    scope_claim: str = "scope"


@dataclass(frozen=True)
class VerifiedJwt:
    subject: str  # the tenant claim's value, else the subject's; safe in logs
    tenant: bool  # whether `subject` came from the tenant claim
    grants: Grants


def looks_like_jwt(token: str) -> bool:
    """A JWS in compact form: three base64url parts, the first a JSON header."""
    if token.count(".") != 2 or len(token) > MAX_JWT_CHARS:
        return False
    try:
        return isinstance(jwt.get_unverified_header(token), dict)
    except jwt.PyJWTError:
        return False


def _read_jwks(text: str, path: str) -> dict[str, jwt.PyJWK]:
    try:
        keys = jwt.PyJWKSet.from_json(text)
    except (jwt.PyJWTError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CredentialFileError(f"the JWKS file {path} is not a JSON Web Key Set with usable keys: {exc}") from exc
    usable = {key.key_id: key for key in keys if key.key_id and key.algorithm_name in ALGORITHMS}
    if not usable and any(True for _ in keys):
        raise CredentialFileError(
            f"the JWKS file {path} has no key with a kid and a public-key algorithm ({', '.join(ALGORITHMS)})"
        )
    return usable


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys = WatchedFile(settings.jwks, "JWKS", lambda text: _read_jwks(text, settings.jwks), {})

    def verify(self, token: str) -> VerifiedJwt:
        """The caller a JWT names; InvalidJwt says why not."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidJwt("the bearer token is not a well-formed JWT") from exc
        key = self._keys.value.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidJwt("the JWT is signed by a key this service does not know (its kid)")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidJwt("the JWT has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidJwt("the JWT is not for this service (its aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidJwt("the JWT's issuer is not the one this service trusts") from exc
        except jwt.PyJWTError as exc:
            raise InvalidJwt("the JWT's signature or claims are not valid") from exc
        return self._caller(claims)

    def _caller(self, claims: dict[str, Any]) -> VerifiedJwt:
        tenant = claims.get(self.settings.tenant_claim)
        subject = tenant if tenant is not None else claims.get("sub")
        if not isinstance(subject, str) or not is_safe_id(subject, MAX_ID_CHARS):
            raise InvalidJwt(
                f"the JWT names no caller: its {self.settings.tenant_claim!r} (or 'sub') claim must be 1 to "
                f"{MAX_ID_CHARS} letters, digits or ._~:/@+=-"
            )
        scope = claims.get(self.settings.scope_claim, "")
        items = scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else []
        granted = [item.removeprefix(SCOPE_PREFIX) for item in items if str(item).startswith(SCOPE_PREFIX)]
        try:
            grants = Grants.parse(granted)
        except ValueError as exc:
            raise InvalidJwt(f"the JWT's {self.settings.scope_claim!r} claim: {exc}") from exc
        return VerifiedJwt(subject, tenant is not None, grants)
