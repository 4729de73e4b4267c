"""The versioned directory layout TF Serving polls: <base>/<version>/saved_model.pb."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
from collections.abc import Iterator

from exporter.graph import ExportError

# TF Serving ignores directories whose names are not integers, so work in progress is invisible to it.
TEMP_PREFIX = ".tmp-export-"


def existing_versions(base: pathlib.Path) -> list[int]:
    """Version numbers present under base, ascending."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def choose_version(base: pathlib.Path, requested: int | None) -> int:
    """The requested version if it is free, or one above the highest existing version."""
    versions = existing_versions(base)
    if requested is None:
        return (versions[-1] + 1) if versions else 1
    if requested <= 0:
        raise ExportError(f"--version must be a positive integer, got {requested}")
    if (base / str(requested)).exists():
        raise ExportError(f"{base / str(requested)} already exists; versions are never overwritten")
    return requested


@contextlib.contextmanager
def staging_dir(base: pathlib.Path, version: int) -> Iterator[pathlib.Path]:
    """Yields an empty temp directory beside the final one; removes it unless it was published."""
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f"{TEMP_PREFIX}{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: pathlib.Path, base: pathlib.Path, version: int) -> pathlib.Path:
    """Atomically renames the finished staging directory to <base>/<version>."""
    final = base / str(version)
    try:
        # rename() over an existing non-empty directory fails, so a version that appeared meanwhile is kept.
        os.rename(staging, final)
    except OSError as exc:
        raise ExportError(f"cannot publish {final}: {exc.strerror}") from exc
    return final
