"""How many cores the gateway may use: what sizes its worker threads and places by default.

`os.cpu_count()` counts the host's cores. In a container with a CPU limit (Kubernetes' `limits.cpu`, a cgroup
quota) that can be sixteen where the process gets two, and sixteen threads and 64 places would each hold a decoded
photo on two cores' worth of time. So: the CPUs this process may run on (its affinity, which a cpuset narrows),
capped by its cgroup's quota rounded up, and at least one.
"""

from __future__ import annotations

import math
import os
import pathlib

CGROUP = pathlib.Path("/sys/fs/cgroup")


def usable_cores(cgroup: pathlib.Path = CGROUP) -> int:
    """The cores this process may use: its CPU affinity, capped by its cgroup's CPU quota rounded up; at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_quota(cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(cores, 1)


def cgroup_quota(cgroup: pathlib.Path = CGROUP) -> float | None:
    """The cgroup's CPU quota in cores (cgroup v2's cpu.max, else v1's cpu.cfs_quota_us over cpu.cfs_period_us), or
    None where there is none or it cannot be read."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
