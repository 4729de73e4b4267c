"""The hash-pinned locks under requirements/, made from pyproject.toml by uv (see requirements/README.md).

    python3 tools/lock.py compile --uv .venv/bin/uv [--upgrade | --upgrade-package NAME ...]   (`make lock`)
    python3 tools/lock.py check [--warn]       (`make check-lock`, `make lint`; `make setup` with --warn)
    .venv/bin/python tools/lock.py extraneous requirements/build.txt requirements/dev.txt    (`make setup`)

compile: writes every lock in LOCKS, for CPython 3.11 on Linux x86_64 (manylinux_2_36: Debian bookworm's glibc, the
images' base), with the sha256 of every file PyPI has for each pinned version. dev.txt first; the others are
constrained by it, so that a package pinned in two locks has one version (the images run what the tests ran).
Versions already pinned are kept unless pyproject.toml no longer allows them (or --upgrade). Each lock's header
records a digest of the inputs: pyproject.toml's dependencies, extras, requires-python and build requirements, and
this recipe.
check: offline; fails (exit 1) when a lock is missing or its digest is not that of pyproject.toml as it is now, i.e.
pyproject.toml's dependencies changed since `make lock`. With --warn it prints the same and exits 0.
extraneous: the distributions installed in the running interpreter's environment that none of the given locks pins
(nor the project itself), one a line, for `pip uninstall`: the venv then holds what the locks hold and nothing more.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS = "requirements"
PROJECT = "deeplab-gateway"

# The target every lock is resolved for.
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-manylinux_2_36"

# name: (what it is for, the extras of pyproject.toml it holds, or None for the build lock). In this order: the
# first is the one the others are constrained by.
LOCKS: dict[str, tuple[str, list[str] | None]] = {
    "dev": ("the development environment (`make setup`): every extra", ["model", "dev", "client", "tracing"]),
    "gateway": ("the gateway's image (deploy/Containerfile): the dependencies and the tracing extra", ["tracing"]),
    "modelserver": ("the local modelserver's image (deploy/Containerfile.modelserver): the model extra", ["model"]),
    "build": (
        "pip, and pyproject.toml's build requirements: installed before the others, then the project is built "
        "without build isolation",
        None,
    ),
}
DIGEST_PREFIX = "# inputs-sha256: "


def normalize(name: str) -> str:
    """PEP 503's normal form of a distribution name: `PyJWT` -> `pyjwt`, `typing_extensions` -> `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def inputs_digest(pyproject: dict) -> str:
    """The digest of what the locks are made from: the parts of pyproject.toml (as parsed by tomllib) that decide
    the dependencies, and the recipe (target and lock names). Comments and the rest of pyproject.toml do not count."""
    project = pyproject.get("project", {})
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build-requires": pyproject.get("build-system", {}).get("requires", []),
        "recipe": [PYTHON_VERSION, PYTHON_PLATFORM, {name: extras for name, (_, extras) in LOCKS.items()}],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock_text: str) -> str | None:
    """The inputs digest a lock's header records, or None."""
    for line in lock_text.splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line[len(DIGEST_PREFIX) :].split()[0]
    return None


def pinned_names(lock_text: str) -> set[str]:
    """The normalized names a requirements lock pins (`name==version`, with or without hashes and markers)."""
    names = set()
    for line in lock_text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==", line)
        if match:
            names.add(normalize(match.group(1)))
    return names


def with_header(lock_text: str, purpose: str, digest: str) -> str:
    """uv's output with our lines after its two-line header: what the lock is for, and the inputs digest."""
    lines = [line for line in lock_text.splitlines() if not line.startswith(("# for: ", DIGEST_PREFIX))]
    at = 0
    while at < len(lines) and lines[at].startswith("#"):
        at += 1
    ours = [f"# for: {purpose}", f"{DIGEST_PREFIX}{digest} (pyproject.toml's dependencies; `make check-lock`)"]
    return "\n".join([*lines[:at], *ours, *lines[at:]]) + "\n"


def compile_locks(uv: str, upgrade: list[str]) -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text())
    digest = inputs_digest(pyproject)
    common = [
        "--generate-hashes",
        f"--python-version={PYTHON_VERSION}",
        f"--python-platform={PYTHON_PLATFORM}",
        "--custom-compile-command=make lock",
        "--quiet",
        *upgrade,
    ]
    constraint: list[str] = []
    for name, (purpose, extras) in LOCKS.items():
        out = Path(REQUIREMENTS) / f"{name}.txt"
        if extras is None:
            # From standard input: pip itself, and what builds the project (pyproject.toml's build-system).
            source = ["-"]
            stdin = "\n".join(["pip", *pyproject["build-system"]["requires"]]) + "\n"
        else:
            source = ["pyproject.toml", *(f"--extra={extra}" for extra in extras)]
            stdin = None
        # uv writes a copy (it reads the versions to keep from it); the lock is replaced only if it changed, so
        # that an idempotent `make lock` does not make `make setup` run again.
        path = ROOT / out
        draft = path.with_name(f".{path.name}.draft")
        if path.exists():
            shutil.copyfile(path, draft)
        try:
            cmd = [uv, "pip", "compile", *source, *common, *constraint, f"--output-file={draft}"]
            subprocess.run(cmd, cwd=ROOT, input=stdin, text=True, check=True)
            text = with_header(draft.read_text(), purpose, digest).replace(str(draft.relative_to(ROOT)), str(out))
        finally:
            draft.unlink(missing_ok=True)
        changed = not path.exists() or path.read_text() != text
        if changed:
            path.write_text(text)
        print(f"lock: {out} ({len(pinned_names(text))} packages{'' if changed else ', unchanged'})")
        if not constraint:
            constraint = [f"--constraint={out}"]


def check(warn: bool) -> int:
    digest = inputs_digest(tomllib.loads(PYPROJECT.read_text()))
    problems = []
    for name in LOCKS:
        path = ROOT / REQUIREMENTS / f"{name}.txt"
        if not path.exists():
            problems.append(f"{path.relative_to(ROOT)} is missing")
        elif recorded_digest(path.read_text()) != digest:
            problems.append(f"{path.relative_to(ROOT)} was made from another pyproject.toml")
    if not problems:
        print("locks are fresh: made from pyproject.toml's dependencies as they are")
        return 0
    for problem in problems:
        print(f"check-lock: {problem}", file=sys.stderr)
    print(
        "check-lock: pyproject.toml's dependencies changed since the locks were made: run `make lock` and commit "
        "requirements/",
        file=sys.stderr,
    )
    return 0 if warn else 1


def extraneous(locks: list[str]) -> list[str]:
    wanted = {normalize(PROJECT)}
    for lock in locks:
        wanted |= pinned_names(Path(lock).read_text())
    installed = {normalize(dist.metadata["Name"]) for dist in importlib.metadata.distributions()}
    return sorted(installed - wanted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("compile", help="write the locks (make lock)")
    make.add_argument("--uv", default="uv", help="the uv program (default: uv on PATH)")
    make.add_argument("--upgrade", action="store_true", help="every package at its newest allowed version")
    make.add_argument("--upgrade-package", action="append", default=[], metavar="NAME", help="this one (repeatable)")
    fresh = sub.add_parser("check", help="are the locks made from pyproject.toml as it is (offline)")
    fresh.add_argument("--warn", action="store_true", help="print, but exit 0")
    extra = sub.add_parser("extraneous", help="installed here, but in none of these locks")
    extra.add_argument("locks", nargs="+")
    args = parser.parse_args()
    if args.command == "compile":
        upgrade = ["--upgrade"] if args.upgrade else []
        upgrade += [f"--upgrade-package={name}" for name in args.upgrade_package]
        compile_locks(args.uv, upgrade)
        return check(warn=False)
    if args.command == "check":
        return check(args.warn)
    print("\n".join(extraneous(args.locks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
