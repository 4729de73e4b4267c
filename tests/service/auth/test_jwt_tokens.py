"""service/auth/jwt_tokens.py: JWTs verified against a JWKS file."""

from __future__ import annotations

import json
import pathlib
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.auth.credentials import DENIED_MESSAGE, Credential, Credentials
from service.auth.grants import EVERYTHING, Grants
from service.auth.jwt_tokens import JwtSettings
from service.errors import Unauthenticated


@pytest.fixture
def issuer(tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict[str, object]]:
    """A JWKS file with an RSA and an EC key, and their private keys by kid."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, key, alg in (("r1", rsa_key, "RS256"), ("e1", ec_key, "ES256")):
        public = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        keys.append({**public, "kid": kid, "alg": alg, "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path, {"r1": rsa_key, "e1": ec_key}


def token(private: object, kid: str, alg: str = "RS256", **claims: object) -> str:
    body = {"iss": "https://idp.example", "aud": "deeplab-gateway", "exp": time.time() + 60, "sub": "u1"} | claims
    return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})


def test_jwts_are_verified_against_the_jwks_and_name_a_tenant_and_grants(
    issuer: tuple[pathlib.Path, dict[str, object]],
) -> None:
    path, keys = issuer
    credentials = Credentials(jwt=JwtSettings(str(path), "https://idp.example", "deeplab-gateway"))

    def check(value: str) -> Credential | None:
        return credentials.bearer((("authorization", f"Bearer {value}"),))

    good = check(token(keys["r1"], "r1", tenant="team-a", scope="openid model:deeplab model:lite/stable"))
    assert good == Credential("jwt", "team-a", "team-a", Grants.parse(["deeplab", "lite/stable"]))
    assert check(token(keys["e1"], "e1", "ES256", scope=["model:*"])) == Credential("jwt", "u1", "", EVERYTHING)
    assert check(token(keys["r1"], "r1")).grants == Grants(())  # no model scope: nothing granted
    refused = {  # what the caller is told, for each way a JWT may be wrong
        "has expired": token(keys["r1"], "r1", exp=time.time() - 120),
        "its aud": token(keys["r1"], "r1", aud="someone-else"),
        "issuer is not": token(keys["r1"], "r1", iss="https://evil.example"),
        "(its kid)": token(keys["r1"], "nope"),
        "signature or claims": token(keys["e1"], "r1", "ES256"),  # signed by another key than its kid's
        # An HMAC token "signed" with what the server would use as the shared secret (alg confusion).
        "signature or claims ": jwt.encode(
            {"iss": "https://idp.example"}, "s" * 32, algorithm="HS256", headers={"kid": "r1"}
        ),
        "names no caller": token(keys["r1"], "r1", tenant="a b"),
        "'scope' claim": token(keys["r1"], "r1", scope="model:a/b/c"),
    }
    for told, value in refused.items():
        with pytest.raises(Unauthenticated, match="invalid bearer token") as error:
            check(value)
        assert told.strip() in str(error.value), (told, error.value)
    with pytest.raises(Unauthenticated, match=DENIED_MESSAGE):
        check("not-a-jwt")  # no tokens file: nothing else to try
