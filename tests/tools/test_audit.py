"""tools/audit.py (make audit): the locks' known vulnerabilities, as pure functions."""

from __future__ import annotations

import pytest

from tools import audit

LOCK = """# header
pyjwt[crypto]==2.15.1 \\
    --hash=sha256:aa \\
    --hash=sha256:bb
    # via deeplab-gateway (pyproject.toml)
typing_extensions==4.16.0 ; python_version < "3.12"
--extra-index-url https://example.invalid/simple
"""


def test_parse_lock():
    assert audit.parse_lock(LOCK) == [("pyjwt", "2.15.1"), ("typing-extensions", "4.16.0")]
    with pytest.raises(ValueError):
        audit.parse_lock("numpy>=2\n")


GHSA = {
    "id": "GHSA-wj6h-64fc-37mp",
    "aliases": ["CVE-2024-23342", "PYSEC-2026-1325"],
    "fixed_in": [],
    "summary": "Minerva",
    "link": "https://osv.dev/x",
    "withdrawn": None,
}


PYSEC = {
    "id": "PYSEC-2026-1325",
    "aliases": ["CVE-2024-23342", "GHSA-wj6h-64fc-37mp"],
    "fixed_in": [],
    "details": "timing",
    "link": "",
    "withdrawn": None,
}


GONE = {"id": "GHSA-gone", "aliases": [], "fixed_in": ["1.0"], "withdrawn": "2025-01-01T00:00:00Z"}


def project(latest, vulns, releases=("0.18.0", "0.19.2")):
    return {
        "info": {"version": latest},
        "vulnerabilities": vulns,
        "releases": {v: [{"yanked": False}] for v in releases},
    }


def test_advisories_merge_aliases_and_drop_withdrawn():
    active, ignored = audit.advisories([GHSA, PYSEC, GONE], ignore=set())
    assert [a.id for a in active] == ["GHSA-wj6h-64fc-37mp"] and ignored == []
    active, ignored = audit.advisories([GHSA, PYSEC], ignore={"CVE-2024-23342"})
    assert active == [] and [a.id for a in ignored] == ["GHSA-wj6h-64fc-37mp"]


def test_assess_latest_is_exact():
    f = audit.assess("ecdsa", "0.19.2", None, project("0.19.2", [GHSA, PYSEC]), set())
    assert (f.status, f.source, len(f.advisories)) == (audit.EXACT_VULNERABLE, "latest", 1)


def test_assess_behind_is_latest_only():
    f = audit.assess("ecdsa", "0.18.0", None, project("0.19.2", [GHSA]), set())
    assert (f.status, f.behind, f.latest, len(f.advisories)) == (audit.LATEST_ONLY, True, "0.19.2", 1)


def test_assess_per_version_wins():
    f = audit.assess("ecdsa", "0.18.0", {"vulnerabilities": []}, project("0.19.2", [GHSA]), set())
    assert (f.status, f.source) == (audit.EXACT_CLEAN, "per-version")


def test_assess_unknown():
    assert audit.assess("nope", "1.0", None, None, set()).status == audit.UNKNOWN
    assert audit.assess("ecdsa", "9.9", None, project("0.19.2", []), set()).status == audit.UNKNOWN


def test_yanked():
    p = {
        "info": {"version": "2"},
        "vulnerabilities": [],
        "releases": {"1": [{"yanked": True, "yanked_reason": "broken"}]},
    }
    assert audit.yanked_reason(p, "1") == "broken"


def test_report_exit_codes():
    clean = audit.assess("a", "1", None, project("1", [], ("1",)), set())
    vuln = audit.assess("ecdsa", "0.19.2", None, project("0.19.2", [GHSA]), set())
    behind = audit.assess("ecdsa", "0.18.0", None, project("0.19.2", [GHSA]), set())
    unknown = audit.assess("nope", "1.0", None, None, set())
    assert audit.report([clean])[1] == 0
    assert audit.report([clean, behind])[1] == 0
    assert audit.report([clean, behind], strict=True)[1] == 1
    assert audit.report([clean, vuln])[1] == 1
    assert audit.report([vuln, unknown])[1] == 2
    lines, _ = audit.report([clean, vuln])
    assert any(line.startswith("  VULNERABLE ecdsa==0.19.2: GHSA-wj6h-64fc-37mp") for line in lines)


def test_fetch_json_retries_then_gives_up():
    sleeps = []
    with pytest.raises(audit.RegistryUnreachable):
        audit.fetch_json("https://127.0.0.1:9/x", audit._context(), tries=3, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0]
