"""Names that callers give and the gateway writes into logs, metrics and headers: request ids and tenants.

They are accepted only in a safe alphabet and length, so that a value cannot carry terminal control sequences
into a log, forge a log line's fields (`]`, spaces, newlines) or fill memory; anything else is shown escaped.
"""

from __future__ import annotations

import re

MAX_ID_CHARS = 128
# Letters, digits and the punctuation of UUIDs, W3C trace ids, ULIDs, base64 and URIs (SPIFFE ids).
_SAFE = re.compile(r"[A-Za-z0-9._~:/@+=-]+")


def is_safe_id(text: str, max_chars: int = MAX_ID_CHARS) -> bool:
    """Whether `text` is a non-empty id of at most `max_chars` characters from the safe alphabet."""
    return 0 < len(text) <= max_chars and _SAFE.fullmatch(text) is not None


def escaped(text: str | bytes, max_chars: int = MAX_ID_CHARS) -> str:
    """`text` shown for a log line: printable ASCII but for spaces, brackets, quotes and backslashes kept, the rest
    escaped (\\xNN, \\uNNNN), cut at `max_chars` characters."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    shown = "".join(c if " " < c <= "~" and c not in _ESCAPED else _escape(c) for c in text[:max_chars])
    return shown + ("..." if len(text) > max_chars else "")


_ESCAPED = frozenset('[]"\\')


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
