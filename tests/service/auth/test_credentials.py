"""service/auth/credentials.py: bearer tokens, their revocation, and client certificates."""

from __future__ import annotations

import logging
import os
import pathlib

import pytest

from service.auth import files
from service.auth.credentials import DENIED_MESSAGE, Credential, Credentials, bearer_token
from service.auth.files import token_digest
from service.auth.grants import EVERYTHING, Grants
from service.auth.identity import certificate_identity
from service.errors import Unauthenticated


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


def test_bearer_tokens_are_read_from_the_authorization_header_only() -> None:
    assert bearer_token((("authorization", "Bearer  t  "),)) == "t"
    assert bearer_token((("authorization", "Token t"),)) == ""
    assert bearer_token((("x-authorization", "Bearer t"),)) is None
    assert Credentials().bearer((("authorization", "junk"),)) is None  # nothing configured, nothing required


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
