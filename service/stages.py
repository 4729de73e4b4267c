"""The stages of one image's way through the gateway, in order, and the time each took: one value that the answer,
the metrics and the traces loop over. A new stage is one name here (and its `<stage>_us` field in the API's Timing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

STAGES = ("probe", "decode", "resize", "pack", "predict", "unpack", "postprocess", "encode")


@dataclass
class StageClock:
    """Times stages that run one after another: each lap ends the stage it names."""

    started_ns: int = field(default_factory=time.perf_counter_ns)  # perf_counter_ns, for trace spans
    laps_us: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._last_ns = self.started_ns

    def lap(self, stage: str) -> None:
        assert stage in STAGES, stage
        now = time.perf_counter_ns()
        self.laps_us[stage], self._last_ns = (now - self._last_ns) // 1000, now

    def spans(self) -> Iterator[tuple[str, int, int]]:
        """(stage, start in perf_counter_ns, µs) of each lap, laid end to end from the clock's start."""
        start_ns = self.started_ns
        for stage, us in self.laps_us.items():
            yield stage, start_ns, us
            start_ns += us * 1000


@dataclass(frozen=True)
class Timings:
    """Microseconds per stage, every stage of STAGES in that order, and for the whole image."""

    stages_us: tuple[tuple[str, int], ...] = tuple((stage, 0) for stage in STAGES)
    total_us: int = 0

    @staticmethod
    def of(clocks: tuple[StageClock, ...], total_us: int) -> Timings:
        laps = {stage: us for clock in clocks for stage, us in clock.laps_us.items()}
        return Timings(tuple((stage, laps.get(stage, 0)) for stage in STAGES), total_us)

    def __getitem__(self, stage: str) -> int:
        return dict(self.stages_us)[stage]
