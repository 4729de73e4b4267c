"""service/identifiers.py: ids in a safe alphabet, anything else shown escaped."""

from __future__ import annotations

from service.identifiers import escaped, is_safe_id


def test_ids_are_accepted_in_a_safe_alphabet_and_shown_escaped() -> None:
    assert is_safe_id("0b3c-4f/9a:ff@x+y=z.~_") and not is_safe_id("") and not is_safe_id("a" * 129)
    for unsafe in ("a b", "a]b", "a\x1b[31m", "a\nb", "é"):
        assert not is_safe_id(unsafe)
    assert escaped("a b]\x1b[31m\x07\\") == "a\\x20b\\x5d\\x1b\\x5b31m\\x07\\x5c"
    assert escaped("x" * 200).endswith("...") and len(escaped("x" * 200)) == 131
