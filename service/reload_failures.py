"""Changed files the gateway could not take up while it runs (the config file, the TLS files, the credential files):
told where it happens, read by the metrics (`segmentation_file_reload_failures_total`, and
`segmentation_file_unreadable` while the latest change is still not taken up).

Each such failure keeps the gateway serving as it was (or, for a credential file, refusing every call it would
admit) and says so in one log line; the figures let an alert see it, and see it end. A module of its own, without
dependencies, so that the files' own modules tell it without knowing of the metrics.
"""

from __future__ import annotations

import threading
from collections import Counter

# Every kind of file, so that each series exists (at 0) before its first failure.
KINDS = ("config", "tls", "tokens", "certificate identities", "JWKS")

_failures: Counter[str] = Counter()
_unreadable: set[str] = set()
_lock = threading.Lock()


def failed(kind: str) -> None:
    """The latest change of a file of this kind could not be taken up."""
    with _lock:
        _failures[kind] += 1
        _unreadable.add(kind)


def taken_up(kind: str) -> None:
    """A file of this kind was read and is in use."""
    with _lock:
        _unreadable.discard(kind)


def counts() -> dict[str, int]:
    """The failures so far, by kind of file."""
    with _lock:
        return {kind: _failures[kind] for kind in (*KINDS, *_failures)}


def unreadable() -> dict[str, bool]:
    """Whether the latest change of each kind of file is still not taken up."""
    with _lock:
        return {kind: kind in _unreadable for kind in (*KINDS, *_unreadable)}
