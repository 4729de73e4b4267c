"""bench/report.py and bench/results.py without servers: the committed run's figures, saved as JSON, render the
committed report again, line for line."""

from __future__ import annotations

import dataclasses
import pathlib

from bench.outputs import OUTPUTS
from bench.plans import PLANS, Plan
from bench.report import write_report
from bench.results import Host, RunResult
from tests.paths import ROOT

COMMITTED = ROOT / "bench" / "benchmarks-run.json"
# Written by the run's host: the committed run was saved before runs recorded theirs.
HOST_LINES = ("Written by ", "Machine: ")


def test_the_committed_run_renders_the_committed_report(tmp_path: pathlib.Path) -> None:
    run = RunResult.from_json(COMMITTED.read_text())
    summary = write_report(run, Plan(*PLANS["full"], out=tmp_path), "full")
    written = (tmp_path / "BENCHMARKS.md").read_text().splitlines()
    committed = (ROOT / "bench" / "BENCHMARKS.md").read_text().splitlines()
    assert len(written) == len(committed) > 200
    differ = [(a, b) for a, b in zip(written, committed, strict=True) if a != b]
    assert all(a.startswith(HOST_LINES) and b.startswith(HOST_LINES) for a, b in differ), differ[:3]
    assert summary["size"] == "1080p" and summary["throughput_vs_ingraph_exact_c4_1080p"] is not None
    for plot in ("benchmarks.png", "benchmarks-per-core.png"):
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


def test_a_run_keeps_its_host_and_every_figure_through_json(tmp_path: pathlib.Path) -> None:
    host = Host(
        cpus=16,
        model_cores=(0,),
        front_cores=tuple(range(1, 16)),
        machine="16 CPUs (a test's)",
        versions={"python": "3.11"},
        finished="2026-01-02 03:04",
    )
    run = dataclasses.replace(RunResult.from_json(COMMITTED.read_text()), host=host)
    again = RunResult.from_json(run.to_json())
    assert again == run
    write_report(again, Plan(*PLANS["full"], out=tmp_path), "full")
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "on 2026-01-02 03:04 UTC." in report and "Machine: 16 CPUs (a test's). Versions: python 3.11." in report
    # The pinned table names the run's own cores, not this machine's.
    assert "The model server alone on CPU 0; the gateway (or KServe's transformer) and the load" in report
    assert "generator on CPU 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 (`taskset`" in report


def test_the_outputs_figures_come_back_from_json_as_a_table_a_row_an_output(tmp_path: pathlib.Path) -> None:
    figures = {name: {"ms": 10.0 + i, "extra_ms": float(i), "bytes": 1000 * i} for i, name in enumerate(OUTPUTS)}
    run = dataclasses.replace(RunResult.from_json(COMMITTED.read_text()), outputs={"1080p": figures, "4k": figures})
    again = RunResult.from_json(run.to_json())
    assert again.outputs == run.outputs
    write_report(again, Plan(*PLANS["full"], out=tmp_path), "full")
    report = (tmp_path / "BENCHMARKS.md").read_text().splitlines()
    start = report.index("## Outputs: what each costs and weighs (concurrency 1, bench/outputs.py)")
    rows = [line for line in report[start:] if line.startswith("| cut-out")]
    assert len(rows) == sum(name.startswith("cut-out") for name in OUTPUTS) == 5
    assert "| cut-out, hard, PNG | 15.0 (+5.0) | 5,000 | 15.0 (+5.0) | 5,000 |" in rows
