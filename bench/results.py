"""A bench run's figures as types: what bench/run.py measures, bench/analysis.py judges and bench/report.py writes.

A run is saved as JSON (bench/benchmarks-run.json beside the report) and read back by `python -m bench --render`;
runs saved before a field was measured read with its default.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    """One scenario at one concurrency: latencies, throughput, bytes and CPU, as bench/load.py measured them."""

    p50: float  # ms
    p95: float
    p99: float
    throughput: float  # requests a second
    requests: int
    errors: int
    request_bytes: int  # of one request
    response_bytes: int
    client_cpu_pct: float  # the load generator's, of one core
    server_cpu_ms: float | None  # the gateway's (or the front's) CPU per request; None where there is no front
    backend_cpu_ms: float | None  # the model server's
    encode_us: float | None
    stages_us: dict[str, float]  # the gateway's stage times, mean per call


@dataclass(frozen=True)
class PinnedCell(Cell):
    """A cell with the model server alone on a core (bench/pinning.py), and each process's share of a core."""

    concurrency: int = 0
    model_server_share: float = 0.0
    front_share: float | None = None  # the gateway's or KServe transformer's; None where there is no front
    load_generator_share: float = 0.0


# size -> scenario -> concurrency -> its cell
Cells = dict[str, dict[str, dict[int, Cell]]]
# size -> scenario -> its pinned cell
PinnedCells = dict[str, dict[str, PinnedCell]]


@dataclass(frozen=True)
class Host:
    """Where the run ran: what its report tells of the machine, and what the analysis needs of it."""

    cpus: int
    model_cores: tuple[int, ...]  # the model server's cores in the pinned runs; empty when they did not run
    front_cores: tuple[int, ...]
    machine: str
    versions: dict[str, str]
    finished: str  # UTC, "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class RunResult:
    cells: Cells
    image_bytes: dict[str, int]  # size -> the JPEG's bytes
    decode_ms: dict[str, float]  # size -> the reduced decode alone, one thread
    gateway_rss_peak_mb: float
    gateway_rss_mb: float
    start_to_serving_s: float
    pinned: PinnedCells = field(default_factory=dict)
    # bench/mixed.py's figures against each gateway: "fair" (as shipped) and "unfair" (limits lifted)
    mixed_tails: dict[str, dict[str, Any]] = field(default_factory=dict)
    decode_full_ms: dict[str, float] = field(default_factory=dict)  # size -> every pixel
    decode_per_mp: dict[str, dict[str, float]] | None = None  # format -> probe and decode costs per megapixel
    fidelity: dict[str, Any] | None = None  # bench/fidelity.py's summary
    profile_1080p: dict[str, Any] | None = None  # bench/profile.py's samples
    gateway_memory_mb: dict[str, Any] = field(default_factory=dict)  # idle and end (/proc status), peak_anon
    # bench/outputs.py's figures: size -> output -> ms, extra_ms and bytes
    outputs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    host: Host | None = None  # None in runs saved before it was recorded
    # bench/capacity.py's figures: size -> answer ("original", "model") -> its Capacity.figures()
    capacity: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def cell(self, size: str, scenario: str, concurrency: int) -> Cell | None:
        return self.cells.get(size, {}).get(scenario, {}).get(concurrency)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        saved = json.loads(text)
        # The run's own name for its cells, kept in the file for the runs saved before.
        cells = saved.pop("results", None) or saved.pop("cells")
        host = saved.pop("host", None)
        return cls(
            cells={
                size: {
                    scenario: {int(c): Cell(**cell) for c, cell in by_concurrency.items()}
                    for scenario, by_concurrency in scenarios.items()
                }
                for size, scenarios in cells.items()
            },
            pinned={
                size: {scenario: PinnedCell(**cell) for scenario, cell in scenarios.items()}
                for size, scenarios in saved.pop("pinned", {}).items()
            },
            host=None
            if host is None
            else Host(**host | {"model_cores": tuple(host["model_cores"]), "front_cores": tuple(host["front_cores"])}),
            **saved,
        )
