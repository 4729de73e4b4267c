"""Which CPUs a benchmarked process may run on: the deployment's shape on one machine, the model server on a core of
its own and the gateway (or a peer's transformer) and the load generator on another, as a model server host and
the cheap front pods it serves are apart in production.

Linux keeps an affinity per thread, and a new thread takes its creator's: every thread of a process and of its
children is set, so threads started later (TensorFlow's pools, gRPC's) stay where their process was put.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, by theirs, and so on, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, waiting = [], list(children.get(pid, []))
    while waiting:
        child = waiting.pop()
        found.append(child)
        waiting += children.get(child, [])
    return found


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` and of its descendants to `cpus`."""
    for process in [pid, *descendants(pid)]:
        for task in pathlib.Path(f"/proc/{process}/task").glob("*"):
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                os.sched_setaffinity(int(task.name), cpus)


def shape_fits() -> bool:
    """Two CPUs at least, this process allowed on them: a core for the model server and one for the rest."""
    return len(os.sched_getaffinity(0)) >= 2


def cores() -> tuple[set[int], set[int]]:
    """(the model server's core, the front's cores): the first CPU this process may use, and the others."""
    allowed = sorted(os.sched_getaffinity(0))
    return {allowed[0]}, set(allowed[1:])


@contextlib.contextmanager
def placed(model_pids: list[int], front_pids: list[int]) -> Iterator[set[int]]:
    """The model server's processes on one core and the front's on the others, until the block ends; yields the
    front's cores (for the load generator)."""
    allowed = os.sched_getaffinity(0)
    model_core, front = cores()
    try:
        for pid in model_pids:
            pin(pid, model_core)
        for pid in front_pids:
            pin(pid, front)
        yield front
    finally:
        for pid in [*model_pids, *front_pids]:
            with contextlib.suppress(ProcessLookupError):
                pin(pid, allowed)
