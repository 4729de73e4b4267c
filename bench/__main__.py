"""python -m bench: the gateway, the floor and the seed-style chain, side by side in one run.

Starts modelserver and the gateway on loopback, derives JPEGs (quality 90) at several sizes from a shared
photo, runs each scenario at each concurrency in a load-generator process of its own, and writes
BENCHMARKS.md (tables, machine, versions, date), a plot, and a last line of JSON with the target ratios.
Running is bench/run.py, judging bench/analysis.py, writing bench/report.py; the figures between them are
bench/results.py's types.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from bench.plans import PLANS, Plan
from bench.report import write_report
from bench.results import RunResult
from bench.run import run
from deploy.local import ROOT
from service.__main__ import tune_malloc

RUN_FILE = "benchmarks-run.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--plan", choices=sorted(PLANS), default="full")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench")
    parser.add_argument("--model-base", type=pathlib.Path, default=None, help="an exported servable to use")
    parser.add_argument(
        "--render", action="store_true", help=f"write the report again from OUT/{RUN_FILE}, the last run's figures"
    )
    args = parser.parse_args(argv)
    plan = Plan(*PLANS[args.plan], out=args.out)
    started = time.monotonic()
    tune_malloc()  # decode_ms measures the decode as the gateway runs it
    if args.render:
        result = RunResult.from_json((args.out / RUN_FILE).read_text())
    else:
        sizes = ", ".join(plan.sizes)
        print(f"bench ({args.plan}): sizes {sizes}; concurrency {plan.concurrencies}; {plan.seconds} s a cell")
        result = run(plan, args.model_base)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / RUN_FILE).write_text(result.to_json())
    summary = write_report(result, plan, args.plan)
    print(f"wrote {plan.out / 'BENCHMARKS.md'} in {time.monotonic() - started:.0f} s")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
