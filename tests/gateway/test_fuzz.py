"""Fuzzing in the suite: the kept regression cases replayed, and a short coverage-guided run of each target."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tests.fuzz.targets import TARGETS
from tests.paths import ROOT

REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"
CASES = sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file())


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_kept_cases_are_refused_the_documented_way(case: pathlib.Path) -> None:
    TARGETS[case.parent.name](case.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_short_fuzzing_run_finds_nothing(target: str, tmp_path: pathlib.Path) -> None:
    # A few seconds each here; `make fuzz` runs them for minutes. A crash lands in tests/fuzz/regressions/.
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", target, "-max_total_time=4", "-print_final_stats=1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done" in result.stderr
