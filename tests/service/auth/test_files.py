"""service/auth/files.py: the tokens and certificate identities files."""

from __future__ import annotations

import pathlib

import pytest

from service.auth.credentials import Credentials
from service.auth.files import CredentialFileError, parse_entries, token_digest
from service.auth.grants import EVERYTHING
from service.errors import Unauthenticated


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


def test_a_broken_file_at_start_is_a_configuration_error_and_an_empty_one_refuses_all(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad").write_text("t tenant=\n")
    with pytest.raises(CredentialFileError, match="bad, line 1"):
        Credentials(tokens=str(tmp_path / "bad"))
    with pytest.raises(CredentialFileError, match="cannot read"):
        Credentials(tokens=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(Unauthenticated):
        Credentials(tokens=str(tmp_path / "empty")).bearer((("authorization", "Bearer x"),))
