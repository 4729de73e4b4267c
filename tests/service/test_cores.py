"""service/cores.py: the cores the gateway sizes its threads and places by, a container's CPU limit included."""

from __future__ import annotations

import os
import pathlib

import pytest

from service.cores import cgroup_quota, usable_cores

AFFINITY = len(os.sched_getaffinity(0))


def v2(tmp_path: pathlib.Path, cpu_max: str) -> pathlib.Path:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


def v1(tmp_path: pathlib.Path, quota_us: int, period_us: int = 100_000) -> pathlib.Path:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    return tmp_path


@pytest.mark.parametrize(
    ("cgroup", "quota"),
    [
        (lambda p: v2(p, "50000 100000"), 0.5),
        (lambda p: v2(p, "250000 100000"), 2.5),
        (lambda p: v2(p, "max 100000"), None),
        (lambda p: v1(p, 150_000), 1.5),
        (lambda p: v1(p, -1), None),
        (lambda p: v2(p, "garbage"), None),
        (lambda p: p, None),
    ],
)
def test_the_cgroup_quota_is_read_from_v2_or_v1_and_none_without_one(tmp_path: pathlib.Path, cgroup, quota) -> None:  # type: ignore[no-untyped-def]
    assert cgroup_quota(cgroup(tmp_path)) == quota


def test_a_cpu_limit_caps_the_cores_rounded_up_and_never_below_one(tmp_path: pathlib.Path) -> None:
    half, one, many = (tmp_path / name for name in ("half", "one", "many"))
    for folder in (half, one, many):
        folder.mkdir()
    assert usable_cores(v2(half, "50000 100000")) == 1  # half a CPU: one thread, four places
    assert usable_cores(v1(one, 100_000)) == 1
    assert usable_cores(tmp_path / "no-cgroup") == AFFINITY  # no quota: the CPUs the process may run on
    assert usable_cores(v2(many, f"{64 * 100_000} 100000")) == AFFINITY  # a quota above the CPUs changes nothing
