"""`make soak` in its smallest form, so that it cannot rot: the figures come from `make soak`, not from here."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from tests.paths import ROOT


def test_a_short_soak_has_no_unexpected_error(servable_base: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes=0.1", "--concurrency=4", f"--model-base={servable_base}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["unexpected_errors"] == 0 and summary["calls"] > 20
    assert summary["hostile_calls"] > 0
    assert set(summary["outcomes"]) == {"OK", "INVALID_ARGUMENT"}
    assert summary["rss_mb_max"] > 0 and summary["p99_ms_first_minute"] > 0
