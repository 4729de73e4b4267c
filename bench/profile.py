"""Where the gateway's time goes, sampled by py-spy while it serves 1080p calls: a flame summary for the report.

py-spy samples every thread of the gateway process from outside (it needs ptrace: root, or CAP_SYS_PTRACE); the
samples are grouped by the deepest frame in the gateway's own code (service/, but for the loop runner in
service/__main__.py), or by the innermost library frame where there is none.
"""

from __future__ import annotations

import collections
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?):\d+\)$")


def _where(frames: list[str]) -> str:
    parsed = [match.groupdict() for frame in frames if (match := _FRAME.match(frame))]
    # service/__main__.py only runs the event loop: below it, the loop's own frames say more.
    own = [f for f in parsed if f["file"].startswith("service/") and f["file"] != "service/__main__.py"]
    if own:
        return f"{own[-1]['function']} ({own[-1]['file']})"
    if parsed:
        return f"{parsed[-1]['function']} ({parsed[-1]['file'].rsplit('site-packages/', 1)[-1]})"
    return "?"


def summarise(folded: str, top: int = 12) -> tuple[int, list[tuple[float, str]]]:
    """(samples, [(share, where)]) from py-spy's raw (folded) output, the largest shares first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")[1:]  # the first is the thread
        counts[_where(frames)] += int(count)
    total = sum(counts.values())
    return total, [(count / total, where) for where, count in counts.most_common(top)] if total else []


def record(pid: int, seconds: float) -> str | None:
    """py-spy's folded stacks of `pid` over `seconds`, or None where py-spy cannot run here."""
    py_spy = shutil.which("py-spy") or str(pathlib.Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        out = pathlib.Path(tmp) / "gateway.folded"
        command = [py_spy, "record", "-p", str(pid), "-d", str(round(seconds)), "-r", "200"]
        command += ["--format", "raw", "--threads", "--nonblocking", "-o", str(out)]
        try:
            subprocess.run(command, capture_output=True, check=True, timeout=seconds + 60)
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"profile not taken: {exc}", flush=True)
            return None
        return out.read_text()
