"""service/auth/grants.py: what a grant names."""

from __future__ import annotations

import pytest

from service.auth.grants import EVERYTHING, Grants, RouteFacts, parse_grant


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
