"""service/workers.py: the CPU stages' threads, taken by waiting jobs in start-time fair order of their cost."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from service.workers import FairWorkers

request = contextvars.ContextVar("request", default="-")


async def _blocked(workers: FairWorkers) -> tuple[threading.Event, asyncio.Task[None]]:
    """The only thread taken by a job that runs until the event is set, so that the jobs after it wait."""
    gate = threading.Event()
    task = asyncio.create_task(workers.run("holder", 0.0, gate.wait, 10))
    await asyncio.sleep(0.05)
    return gate, task


async def _in_order(workers: FairWorkers, jobs: list[tuple[str, float]]) -> list[str]:
    """The order the jobs (caller, megapixels), queued behind a blocked thread in this order, ran in."""
    ran: list[str] = []
    gate, holder = await _blocked(workers)
    tasks = [
        asyncio.create_task(workers.run(caller, megapixels, ran.append, f"{caller}{i}"))
        for i, (caller, megapixels) in enumerate(jobs)
    ]
    await asyncio.sleep(0.05)
    assert workers.waiting == len(jobs)
    gate.set()
    await asyncio.gather(holder, *tasks)
    return ran


def test_a_small_photo_goes_before_another_callers_large_ones() -> None:
    async def main() -> list[str]:
        workers = FairWorkers(1)
        try:
            return await _in_order(workers, [("big", 8.3), ("big", 8.3), ("big", 8.3), ("small", 0.3)])
        finally:
            workers.shutdown()

    ran = asyncio.run(main())
    # The small caller's job starts where the work in progress is; the big caller's second starts after its first.
    assert ran == ["big0", "small3", "big1", "big2"]


def test_two_busy_callers_share_the_threads_by_cost_not_by_jobs() -> None:
    async def main() -> list[str]:
        workers = FairWorkers(1)
        try:
            return await _in_order(workers, [("large", 4.0)] * 3 + [("small", 0.75)] * 12)
        finally:
            workers.shutdown()

    ran = asyncio.run(main())
    # With a quarter of a megapixel each for the call, a 4 MP job costs 4.25 and a 0.75 MP one 1.0: the small
    # caller's jobs that start before the large caller's next one go first (five, then four), and every job runs.
    assert sorted(ran) == sorted([f"large{i}" for i in range(3)] + [f"small{i}" for i in range(3, 15)])
    first_large = [i for i, name in enumerate(ran) if name.startswith("large")]
    assert first_large == [0, 6, 11]


def test_a_job_runs_in_its_callers_context_and_its_error_comes_back() -> None:
    async def main() -> tuple[str, str]:
        workers = FairWorkers(2)
        request.set("req-1")
        try:
            seen = await workers.run("a", 1.0, request.get)
            with pytest.raises(ZeroDivisionError):
                await workers.run("a", 1.0, lambda: 1 / 0)
            return seen, await workers.run("a", 1.0, str.upper, "ok")
        finally:
            workers.shutdown()

    assert asyncio.run(main()) == ("req-1", "OK")


def test_a_job_whose_caller_stopped_waiting_is_dropped_before_it_starts() -> None:
    async def main() -> list[str]:
        workers = FairWorkers(1)
        ran: list[str] = []
        try:
            gate, holder = await _blocked(workers)
            gone = asyncio.create_task(workers.run("gone", 1.0, ran.append, "gone"))
            kept = asyncio.create_task(workers.run("kept", 1.0, ran.append, "kept"))
            await asyncio.sleep(0.05)
            gone.cancel()
            gate.set()
            await asyncio.gather(holder, kept)
            with pytest.raises(asyncio.CancelledError):
                await gone
            return ran
        finally:
            workers.shutdown()

    assert asyncio.run(main()) == ["kept"]
