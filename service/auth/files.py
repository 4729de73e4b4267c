"""The files that list who may call: bearer tokens (`auth_tokens`) and client certificate identities
(`auth_certificates`), each entry with the tenant it names and the models it may call.

One entry a line; a line starting with `#` is a comment:

    KEY                                  the caller is the key itself (a token: its digest), every model
    KEY tenant=team-a                    the caller is the tenant team-a, every model
    KEY tenant=team-a models=deeplab,deeplab-lite/stable
                                         ... and only those models (service/auth/grants.py)

A file is checked for changes at most once a second, on a call, and read again when it has changed. Revocation
fails closed: a file that is missing, unreadable or malformed, or has no entry left, refuses every call until it
is fixed. Replace such files atomically (write a new file, then rename it over the old one, as Kubernetes does
for Secrets), so that no call ever sees half of one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from service import reload_failures
from service.auth.grants import EVERYTHING, Grants
from service.identifiers import MAX_ID_CHARS, is_safe_id

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
T = TypeVar("T")
ENTRY_KEYS = ("tenant", "models")


class CredentialFileError(Exception):
    """A credentials file that cannot be read or has a malformed line; one line for the user."""


@dataclass(frozen=True)
class Entry:
    key: str  # a token's SHA-256 digest (hex), or a certificate identity
    tenant: str  # "" when the line names none
    grants: Grants


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_entries(text: str, path: str, key_of: Callable[[str], str]) -> tuple[Entry, ...]:
    """The entries of a file's text; `key_of` turns a line's first word into the entry's key."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):  # a comment is a line of its own: a token may hold a "#"
            continue
        where = f"{path}, line {number}"
        fields: dict[str, str] = {}
        for word in words[1:]:
            name, equals, value = word.partition("=")
            if not equals or name not in ENTRY_KEYS or name in fields:
                raise CredentialFileError(
                    f"{where}: {word!r}: after the key, use tenant=NAME and models=GRANT,GRANT (each at most once)"
                )
            fields[name] = value
        tenant = fields.get("tenant", "")
        if "tenant" in fields and not is_safe_id(tenant, MAX_ID_CHARS):
            raise CredentialFileError(
                f"{where}: tenant={tenant!r}: use 1 to {MAX_ID_CHARS} letters, digits or ._~:/@+=-"
            )
        try:
            grants = Grants.parse(fields["models"].split(",")) if "models" in fields else EVERYTHING
        except ValueError as exc:
            raise CredentialFileError(f"{where}: models: {exc}") from None
        entries.append(Entry(key_of(words[0]), tenant, grants))
    return tuple(entries)


class WatchedFile(Generic[T]):
    """A file read again when it changes (checked at most once a second, when asked); what it says is `value`.

    At start a file that cannot be read or parsed raises CredentialFileError; later, it gives `refused` (nothing
    is allowed) until it is fixed.
    """

    def __init__(self, path: str, what: str, parse: Callable[[str], T], refused: T) -> None:
        self.path = path
        self.what = what  # "tokens", "certificate identities", "JWKS": for log lines
        self._parse = parse
        self._refused = refused
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._stamp = self._stat()
        self._value = self._read()
        if not self._value:
            log.warning("the %s file %s lists none: every call is refused until it does", what, path)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def _read(self) -> T:
        try:
            with open(self.path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise CredentialFileError(f"cannot read the {self.what} file {self.path}: {reason}") from exc
        return self._parse(text)

    @property
    def value(self) -> T:
        self._refresh()
        return self._value

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._checked < CHECK_EVERY_S:
                return
            self._checked = time.monotonic()
            stamp = self._stat()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                self._value = self._read()
            except CredentialFileError as exc:
                self._value = self._refused
                log.error("%s; every call is refused until it is fixed", exc)
                reload_failures.failed(self.what)
                return
            reload_failures.taken_up(self.what)
            if self._value:
                log.info("%s reloaded from %s", self.what, self.path)
            else:
                log.warning("the %s file %s lists none: every call is refused until it does", self.what, self.path)


def credential_file(path: str, what: str, key_of: Callable[[str], str]) -> WatchedFile[tuple[Entry, ...]]:
    """A tokens or certificate identities file; `key_of` turns a line's first word into its entry's key."""
    return WatchedFile(path, what, lambda text: parse_entries(text, path, key_of), ())
