"""Failed reads of the files the gateway takes up again while it runs: counted where they happen (the config file,
the TLS files, the credential files), read by the metrics (`segmentation_file_reload_failures_total`).

Each such failure keeps the gateway serving as it was (or, for a credential file, refusing every call), and says so
in one log line; the count lets an alert see it. A module of its own, without dependencies, so that the files' own
modules count without knowing of the metrics.
"""

from __future__ import annotations

import threading
from collections import Counter

# Every kind of file, so that each series exists (at 0) before its first failure.
KINDS = ("config", "tls", "tokens", "certificate identities", "JWKS")

_failures: Counter[str] = Counter()
_lock = threading.Lock()


def count(kind: str) -> None:
    with _lock:
        _failures[kind] += 1


def counts() -> dict[str, int]:
    """The failures so far, by kind of file."""
    with _lock:
        return {kind: _failures[kind] for kind in (*KINDS, *_failures)}
