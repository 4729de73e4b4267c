"""service/auth/: grants, credential files, JWTs, trusted proxies and who a caller is, without a server."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.auth import files
from service.auth.credentials import DENIED_MESSAGE, Credential, Credentials, bearer_token
from service.auth.files import CredentialFileError, parse_entries, token_digest
from service.auth.grants import EVERYTHING, Grants, RouteFacts, parse_grant
from service.auth.identity import certificate_identity, identify
from service.auth.jwt_tokens import JwtSettings
from service.auth.proxies import TrustedProxies, peer_host
from service.errors import Unauthenticated
from service.identifiers import escaped, is_safe_id

pytestmark = pytest.mark.unit  # make test-unit: in-process, nothing but the venv


def facts(model: str = "deeplab", variant: str = "", version: int | None = None, label: str = "", signature=True):
    return RouteFacts(model, variant, version, label, signature)


def test_grants_name_models_their_variants_labels_versions_and_signatures() -> None:
    grants = Grants.parse(["deeplab", "lite/stable", "lite/3", "zoo/*"])
    assert grants.may_use("deeplab") and grants.may_use("lite") and not grants.may_use("other")
    assert grants.allows(facts()) and grants.allows(facts(version=7, label="canary"))
    assert not grants.allows(facts(signature=False))  # a signature other than the configured one
    assert grants.allows(facts("lite", variant="stable")) and grants.allows(facts("lite", label="stable"))
    assert grants.allows(facts("lite", version=3)) and not grants.allows(facts("lite", version=4))
    assert not grants.allows(facts("lite", variant="canary"))
    assert not grants.allows(facts("lite", label="stable", signature=False))
    assert grants.allows(facts("zoo", signature=False))
    assert grants.may_choose("lite", ("stable", "", "")) and not grants.may_choose("lite", ("canary", "", "5"))
    assert EVERYTHING.allows(facts("anything", signature=False)) and str(EVERYTHING) == "*"
    for bad in ("", "a b", "a,b", "/x", "a/", "a/b/c", "*/x", "x" * 300):
        with pytest.raises(ValueError):
            parse_grant(bad)


def test_a_credentials_file_gives_each_key_a_tenant_and_grants() -> None:
    text = "# team a\nsecret-a tenant=team-a models=deeplab,lite/stable\nsecret-b\n   \nhash#in-token tenant=b\n"
    a, b, c = parse_entries(text, "tokens", token_digest)
    assert (a.key, a.tenant, str(a.grants)) == (token_digest("secret-a"), "team-a", "deeplab,lite/stable")
    assert (b.tenant, b.grants) == ("", EVERYTHING)
    assert c.key == token_digest("hash#in-token")  # a "#" starts a comment only at the start of a line
    for line, problem in (
        ("t models=", "models"),
        ("t tenant=a tenant=b", "at most once"),
        ("t owner=me", "tenant=NAME"),
        ("t tenant=a]b", "tenant="),
        ("t models=a/b/c", "models"),
    ):
        with pytest.raises(CredentialFileError, match=problem) as error:
            parse_entries(f"ok\n{line}\n", "tokens", token_digest)
        assert "tokens, line 2" in str(error.value)


def test_tokens_and_their_revocation(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens"
    path.write_text("one tenant=a models=deeplab\ntwo\n")
    credentials = Credentials(tokens=str(path))
    bearer = (("authorization", "Bearer one"),)
    assert credentials.bearer(bearer) == Credential("token", token_digest("one")[:12], "a", Grants.parse(["deeplab"]))
    assert credentials.bearer((("authorization", "bearer two"),)).caller == f"token:{token_digest('two')[:12]}"
    for metadata in ((), (("authorization", "Bearer three"),), (("authorization", "Basic b25l"),)):
        with pytest.raises(Unauthenticated, match=DENIED_MESSAGE):
            credentials.bearer(metadata)

    def replace(text: str | None) -> None:
        """The file replaced atomically, as the docs ask, and the next check a second later."""
        if text is None:
            path.unlink()
        else:
            (tmp_path / "new").write_text(text)
            os.replace(tmp_path / "new", path)
        files_checked_long_ago(credentials)

    replace("two\n")  # one revoked
    with pytest.raises(Unauthenticated):
        credentials.bearer(bearer)
    assert credentials.bearer((("authorization", "Bearer two"),)) is not None
    replace("# nobody\n")  # every token revoked: every call refused, said at WARNING
    with caplog.at_level(logging.WARNING, logger="service.auth.files"), pytest.raises(Unauthenticated):
        credentials.bearer((("authorization", "Bearer two"),))
    assert "lists none" in caplog.text
    replace("two models=a/b/c\n")  # malformed: refused whole, said at ERROR
    with pytest.raises(Unauthenticated):
        credentials.bearer((("authorization", "Bearer two"),))
    replace(None)  # gone: the same
    with pytest.raises(Unauthenticated):
        credentials.bearer((("authorization", "Bearer two"),))
    replace("two\n")
    assert credentials.bearer((("authorization", "Bearer two"),)) is not None


def files_checked_long_ago(credentials: Credentials) -> None:
    """Makes the credentials' files look again at their next use, as they do a second after the last look."""
    for watched in vars(credentials).values():
        if isinstance(watched, files.WatchedFile):
            watched._checked -= files.CHECK_EVERY_S


def test_a_broken_file_at_start_is_a_configuration_error_and_an_empty_one_refuses_all(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad").write_text("t tenant=\n")
    with pytest.raises(CredentialFileError, match="bad, line 1"):
        Credentials(tokens=str(tmp_path / "bad"))
    with pytest.raises(CredentialFileError, match="cannot read"):
        Credentials(tokens=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(Unauthenticated):
        Credentials(tokens=str(tmp_path / "empty")).bearer((("authorization", "Bearer x"),))


def test_bearer_tokens_are_read_from_the_authorization_header_only() -> None:
    assert bearer_token((("authorization", "Bearer  t  "),)) == "t"
    assert bearer_token((("authorization", "Token t"),)) == ""
    assert bearer_token((("x-authorization", "Bearer t"),)) is None
    assert Credentials().bearer((("authorization", "junk"),)) is None  # nothing configured, nothing required


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


def test_certificates_name_callers_and_an_identities_file_lists_who_may_call(tmp_path: pathlib.Path) -> None:
    spiffe = {"x509_subject_alternative_name": [b"spiffe://example.org/ns/a/sa/b"], "x509_common_name": [b"b"]}
    assert certificate_identity(spiffe) == "spiffe://example.org/ns/a/sa/b"
    assert certificate_identity({"x509_common_name": [b"legacy"]}) == "legacy"
    assert certificate_identity({"x509_subject_alternative_name": [b"client.example"], "x509_subject": [b"O=x"]}) == (
        "client.example"
    )
    assert certificate_identity({"x509_subject": [b"O=Example,OU=batch"]}) == "O=Example,OU=batch"
    assert certificate_identity({"transport_security_type": [b"insecure"]}) == ""
    anyone = Credentials(client_certificates=True)
    assert anyone.certificate("legacy") == Credential("certificate", "legacy", "", EVERYTHING)
    (tmp_path / "ids").write_text("spiffe://example.org/ns/a/sa/b tenant=team-b models=deeplab\n")
    listed = Credentials(certificates=str(tmp_path / "ids"), client_certificates=True)
    assert listed.certificate("spiffe://example.org/ns/a/sa/b").caller == "tenant:team-b"
    with pytest.raises(Unauthenticated):
        listed.certificate("legacy")
    assert Credentials().certificate("legacy") is None


def test_x_tenant_names_the_caller_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies.parse(["10.0.0.0/8", "::1", "spiffe://cluster.local/ns/edge/sa/envoy"])
    header = (("x-tenant", "team-a"),)
    token_a = Credential("token", "9f86d081884c", "", Grants.parse(["deeplab"]))
    assert identify(None, header, "ipv4:192.168.1.5:4000", "", proxies).name == "ipv4:192.168.1.5:4000"
    assert identify(None, header, "ipv4:10.1.2.3:4000", "", proxies).name == "tenant:team-a"
    assert identify(None, header, "ipv6:[::1]:4000", "", proxies).name == "tenant:team-a"
    assert identify(None, header, "http:ipv4:10.1.2.3:4000", "", proxies).name == "tenant:team-a"
    assert identify(None, header, "unix:/tmp/s", "spiffe://cluster.local/ns/edge/sa/envoy", proxies).name == (
        "tenant:team-a"
    )
    # A credential names the caller; a trusted proxy's header names the client behind it, with the credential's grants.
    named = identify(token_a, header, "ipv4:192.168.1.5:4000", "", proxies)
    assert (named.name, named.grants) == ("token:9f86d081884c", token_a.grants)
    assert identify(token_a, header, "ipv4:10.0.0.1:1", "", proxies).grants == token_a.grants
    assert identify(None, (("x-tenant", "a]\x1b"),), "ipv4:10.0.0.1:1", "", proxies).name == "ipv4:10.0.0.1:1"
    assert identify(None, header, "ipv4:10.0.0.1:1", "", TrustedProxies()).name == "ipv4:10.0.0.1:1"
    assert peer_host("unix:/tmp/x") is None and str(peer_host("ipv6:[fe80::1%eth0]:5")) == "fe80::1"
    with pytest.raises(ValueError):
        TrustedProxies.parse(["not an address"])


def test_ids_are_accepted_in_a_safe_alphabet_and_shown_escaped() -> None:
    assert is_safe_id("0b3c-4f/9a:ff@x+y=z.~_") and not is_safe_id("") and not is_safe_id("a" * 129)
    for unsafe in ("a b", "a]b", "a\x1b[31m", "a\nb", "é"):
        assert not is_safe_id(unsafe)
    assert escaped("a b]\x1b[31m\x07\\") == "a\\x20b\\x5d\\x1b\\x5b31m\\x07\\x5c"
    assert escaped("x" * 200).endswith("...") and len(escaped("x" * 200)) == 131
