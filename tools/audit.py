"""Known vulnerabilities in the versions a lock pins, from PyPI's JSON API (`make audit`, part of `make lint`).

    python3 tools/audit.py [LOCK ...] [--ignore-vuln ID ...] [--strict]     (default: requirements/gateway.txt)

For each `name==version` of the lock it asks PyPI, in parallel:
  - https://pypi.org/pypi/NAME/VERSION/json: the advisories of that very version (OSV's PYSEC and GHSA entries), the
    data pip-audit's default service reads. Where this answers, the locked version is checked exactly.
  - https://pypi.org/pypi/NAME/json: the project, whose `vulnerabilities` are those of its latest release only. Where
    the locked version is the latest release, that is the locked version's own list: checked exactly too.
A locked version that is behind the latest release, where the per-version endpoint does not answer (it answers 404
on the machines this project runs on, and OSV's own API is not reachable there, so pip-audit skips every package and
passes), cannot be checked: it is listed as such, with the latest release's advisories, if any, as a warning.

Exit status: 0 when no locked version that could be checked has a known vulnerability; 1 when one has (or, with
--strict, when a package could be checked only against its latest release and that release has advisories); 2 when
PyPI could not be reached or does not know a locked package or version: then nothing passes unchecked.
An advisory can be set aside with --ignore-vuln ID (its id or any alias; say why where the flag is given).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

try:
    from packaging.version import InvalidVersion, Version
except ImportError:  # the tool runs with any Python 3.11; versions are then compared as written
    Version = None  # type: ignore[assignment,misc]
    InvalidVersion = ValueError  # type: ignore[assignment,misc]

PYPI = "https://pypi.org/pypi"
TRIES = 4
TIMEOUT = 20.0
WORKERS = 16

# What assess() finds for one package.
EXACT_CLEAN = "clean"  # the locked version's own advisories were read: none
EXACT_VULNERABLE = "vulnerable"  # the locked version's own advisories were read: some
LATEST_ONLY = "latest-only"  # only the latest release's advisories could be read
UNKNOWN = "unknown"  # PyPI does not know the package or the version


class RegistryUnreachable(Exception):
    """PyPI did not answer (after retries), or answered something other than JSON or 404."""


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    summary: str
    link: str

    def names(self) -> set[str]:
        return {self.id, *self.aliases}

    def describe(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fixed release"
        summary = f": {self.summary}" if self.summary else ""
        return f"{self.id}{aliases}{summary}; {fixed}; {self.link}".rstrip("; ")


@dataclass
class Finding:
    name: str
    version: str
    status: str
    latest: str | None = None
    source: str = ""  # where the locked version's advisories came from, if they could be read
    advisories: list[Advisory] = field(default_factory=list)  # the locked version's, or the latest's (LATEST_ONLY)
    ignored: list[Advisory] = field(default_factory=list)
    yanked: str | None = None  # the reason, when every file of the locked version is yanked
    behind: bool | None = None  # locked version older than the latest release (None: cannot tell)


def normalize(name: str) -> str:
    """PEP 503's normal form of a project name: `PyJWT` -> `pyjwt`, `typing_extensions` -> `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> list[tuple[str, str]]:
    """The (normalized name, version) pairs a requirements lock pins, in order: `name==version` or
    `name[extra]==version`, each perhaps followed by `; marker`, `\\` and `--hash=...` continuation lines, which are
    skipped like comments and options. A requirement that is not pinned with `==` is refused (ValueError): a lock
    pins everything."""
    pins = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement = line.rstrip("\\").split(";", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([^\s;]+)", requirement)
        if not match:
            raise ValueError(f"not pinned with ==: {line!r}")
        pins.append((normalize(match.group(1)), match.group(2)))
    return pins


def same_version(a: str, b: str) -> bool:
    """`1.0` and `1.0.0` are one version (PEP 440), where packaging is importable; else the strings are compared."""
    if Version is not None:
        try:
            return Version(a) == Version(b)
        except InvalidVersion:
            pass
    return a == b


def older(a: str, b: str) -> bool | None:
    """Is version a older than version b? None when that cannot be told (no packaging, or not PEP 440)."""
    if Version is None:
        return None
    try:
        return Version(a) < Version(b)
    except InvalidVersion:
        return None


def first_line(text: str, width: int = 160) -> str:
    """The first non-empty line of text, cut to width."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def advisories(vulnerabilities: Iterable[dict], ignore: set[str]) -> tuple[list[Advisory], list[Advisory]]:
    """PyPI's `vulnerabilities` list as (active, ignored) advisories: withdrawn entries dropped, and entries that
    name each other (a PYSEC id and its GHSA alias) merged into the first one met. An advisory is ignored when its id
    or one of its aliases is in `ignore`."""
    merged: list[Advisory] = []
    for entry in vulnerabilities:
        if entry.get("withdrawn"):
            continue
        advisory = Advisory(
            id=entry.get("id") or "?",
            aliases=tuple(entry.get("aliases") or ()),
            fixed_in=tuple(entry.get("fixed_in") or ()),
            summary=first_line(entry.get("summary") or entry.get("details") or ""),
            link=entry.get("link") or "",
        )
        for i, known in enumerate(merged):
            if known.names() & advisory.names():
                aliases = sorted((known.names() | advisory.names()) - {known.id})
                fixed = sorted(set(known.fixed_in) | set(advisory.fixed_in))
                merged[i] = Advisory(known.id, tuple(aliases), tuple(fixed), known.summary, known.link)
                break
        else:
            merged.append(advisory)
    active = [a for a in merged if not (a.names() & ignore)]
    ignored = [a for a in merged if a.names() & ignore]
    return active, ignored


def yanked_reason(project: dict, version: str) -> str | None:
    """The yank reason when every file PyPI has for this version is yanked (pip then refuses it unless pinned)."""
    files = (project.get("releases") or {}).get(version) or []
    if files and all(f.get("yanked") for f in files):
        return next((f.get("yanked_reason") for f in files if f.get("yanked_reason")), None) or "no reason given"
    return None


def assess(name: str, version: str, version_json: dict | None, project_json: dict | None, ignore: set[str]) -> Finding:
    """What can be known of `name==version` from PyPI's answers: version_json is /pypi/NAME/VERSION/json (None when
    it answered 404), project_json is /pypi/NAME/json (None when it answered 404: PyPI does not know the project)."""
    if project_json is None:
        return Finding(name, version, UNKNOWN)
    info = project_json.get("info") or {}
    latest = info.get("version")
    releases = project_json.get("releases")
    finding = Finding(name, version, UNKNOWN, latest=latest, yanked=yanked_reason(project_json, version))
    finding.behind = older(version, latest) if latest else None
    if releases is not None and not any(same_version(version, known) for known in releases):
        return finding  # PyPI has no such release
    if version_json is not None:
        vulnerabilities, finding.source = version_json.get("vulnerabilities") or [], "per-version"
    elif latest is not None and same_version(version, latest):
        vulnerabilities, finding.source = project_json.get("vulnerabilities") or [], "latest"
    else:
        finding.status = LATEST_ONLY
        finding.advisories, finding.ignored = advisories(project_json.get("vulnerabilities") or [], ignore)
        return finding
    finding.advisories, finding.ignored = advisories(vulnerabilities, ignore)
    finding.status = EXACT_VULNERABLE if finding.advisories else EXACT_CLEAN
    return finding


def report(findings: list[Finding], strict: bool = False) -> tuple[list[str], int]:
    """The lines to print for these findings, and the exit status (0 pass, 1 vulnerable, 2 could not audit)."""
    lines = []
    by = {
        status: [f for f in findings if f.status == status]
        for status in (EXACT_CLEAN, EXACT_VULNERABLE, LATEST_ONLY, UNKNOWN)
    }
    exact = by[EXACT_CLEAN] + by[EXACT_VULNERABLE]
    per_version = sum(1 for f in exact if f.source == "per-version")
    lines.append(
        f"  checked exactly: {len(exact)} of {len(findings)} (the per-version endpoint answered for "
        f"{per_version}; {len(exact) - per_version} locked at their latest release)"
    )
    for f in by[EXACT_VULNERABLE]:
        for a in f.advisories:
            lines.append(f"  VULNERABLE {f.name}=={f.version}: {a.describe()}")
    behind = by[LATEST_ONLY]
    if behind:
        lines.append(
            f"  checked only against the latest release's advisories (the locked version's own cannot be "
            f"read here): {len(behind)}"
        )
        for f in behind:
            where = "behind" if f.behind else "not" if f.behind is None else "ahead of"
            count = len(f.advisories)
            state = (
                "which has no advisory"
                if not count
                else f"which has {count} advisor{'y' if count == 1 else 'ies'} that may affect {f.version} too:"
            )
            lines.append(f"    {f.name}=={f.version}: {where} the latest release ({f.latest}), {state}")
            lines.extend(
                f"      {'POSSIBLY VULNERABLE' if strict else 'warning'}: {a.describe()}" for a in f.advisories
            )
    for f in findings:
        lines.extend(f"  ignored (--ignore-vuln) {f.name}=={f.version}: {a.describe()}" for a in f.ignored)
        if f.yanked:
            lines.append(f"  warning: {f.name}=={f.version} is yanked on PyPI: {f.yanked}")
    for f in by[UNKNOWN]:
        known = "the project" if f.latest is None else f"version {f.version} (latest {f.latest})"
        lines.append(f"  NOT AUDITED {f.name}=={f.version}: PyPI does not know {known}")
    vulnerable = sum(len(f.advisories) for f in by[EXACT_VULNERABLE])
    possible = sum(len(f.advisories) for f in behind)
    if by[UNKNOWN]:
        lines.append(f"audit: FAILED: {len(by[UNKNOWN])} locked package(s) could not be audited")
        return lines, 2
    if vulnerable or (strict and possible):
        count = vulnerable + (possible if strict else 0)
        lines.append(f"audit: FAILED: {count} known vulnerabilit{'y' if count == 1 else 'ies'} in the locked versions")
        return lines, 1
    tail = f"; {possible} advisor{'y' if possible == 1 else 'ies'} of newer releases to look at" if possible else ""
    lines.append(
        f"audit: passed: no known vulnerability in the {len(exact)} locked versions that could be checked; "
        f"{len(behind)} checked against their latest release only{tail}"
    )
    return lines, 0


# Network: everything below talks to PyPI.


def _context() -> ssl.SSLContext:
    # Behind a TLS-intercepting proxy, the CA bundle pip is given (PIP_CERT) or SSL_CERT_FILE (read by OpenSSL).
    cafile = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or None
    return ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)


def _resolve_once() -> None:
    """Makes this process look each host up once: parallel lookups stall for 5 s on some resolvers (this machine's,
    from 8 at once), and every request here goes to one host."""
    lookup, answers, lock = socket.getaddrinfo, {}, threading.Lock()

    def getaddrinfo(*args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        with lock:
            if key not in answers:
                answers[key] = lookup(*args, **kwargs)
            return answers[key]

    socket.getaddrinfo = getaddrinfo


def fetch_json(url: str, context: ssl.SSLContext, tries: int = TRIES, sleep: Callable[[float], None] = time.sleep):
    """The JSON at url, or None on 404. Retries time-outs, connection errors, 429 and 5xx; then RegistryUnreachable."""
    request = urllib.request.Request(
        url,
        headers={
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": "deeplab-gateway-audit (tools/audit.py)",
        },
    )
    error: Exception | None = None
    for attempt in range(tries):
        if attempt:
            sleep(0.5 * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
                body = response.read()
                if response.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                return json.loads(body)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            error = e
            if e.code != 429 and e.code < 500:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError, OSError) as e:
            error = e
    raise RegistryUnreachable(f"{url}: {getattr(error, 'reason', None) or error}")


def audit_lock(path: str, base: str, ignore: set[str], strict: bool) -> int:
    started = time.monotonic()
    with open(path) as f:
        pins = parse_lock(f.read())
    context = _context()
    _resolve_once()

    def one(pin: tuple[str, str]) -> Finding | RegistryUnreachable:
        name, version = pin
        try:
            version_json = fetch_json(f"{base}/{name}/{version}/json", context)
            project_json = fetch_json(f"{base}/{name}/json", context)
        except RegistryUnreachable as e:
            return e
        return assess(name, version, version_json, project_json, ignore)

    # One request first: where PyPI cannot be reached, say so after one package's retries, not every package's.
    try:
        if pins:
            fetch_json(f"{base}/{pins[0][0]}/json", context)
    except RegistryUnreachable as e:
        results: list[Finding | RegistryUnreachable] = [e]
    else:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(one, pins))
    failures = [r for r in results if isinstance(r, RegistryUnreachable)]
    seconds = time.monotonic() - started
    print(f"audit: {path}: {len(pins)} locked packages, PyPI's JSON API ({base}), {seconds:.1f} s")
    if failures:
        count = f"{len(failures)} of {len(pins)} packages" if len(results) == len(pins) else "the first package"
        print(
            f"audit: FAILED: PyPI's JSON API could not be reached for {count} ({TRIES} tries each), e.g. "
            f"{failures[0]}. Nothing passes unchecked: check the network or proxy "
            f"(HTTPS_PROXY; PIP_CERT or SSL_CERT_FILE behind a TLS-intercepting one) and run `make audit` again.",
            file=sys.stderr,
        )
        return 2
    lines, status = report([r for r in results if isinstance(r, Finding)], strict=strict)
    print("\n".join(lines))
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("locks", nargs="*", default=["requirements/gateway.txt"], metavar="LOCK")
    parser.add_argument(
        "--ignore-vuln",
        action="append",
        default=[],
        metavar="ID",
        help="set an advisory aside, by its id or an alias (repeatable)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when the latest release of a package locked behind it has advisories",
    )
    parser.add_argument("--pypi", default=os.environ.get("AUDIT_PYPI", PYPI), help=f"JSON API base (default {PYPI})")
    args = parser.parse_args()
    return max(audit_lock(lock, args.pypi.rstrip("/"), set(args.ignore_vuln), args.strict) for lock in args.locks)


if __name__ == "__main__":
    sys.exit(main())
