"""The worker threads of the CPU stages, and the order waiting jobs take them in: by their callers' costs, so that a
small photo does not wait behind another caller's large ones.

A job's cost is what it has to work through: the megapixels of its image, plus a fixed part for what any call costs
beside its pixels. Jobs are taken in start-time fair order (Goyal, Vin and Cheng's SFQ): a caller's job starts, in
virtual time, where its previous job ended or where the work in progress has got to, whichever is later, and the job
that starts first goes next. A caller that sends a 0.3 MP photo now and then is served at once, between another
caller's 8 MP decodes; two callers that keep the threads busy each get half of the threads' time, whatever their
photos' sizes, instead of half of the jobs. Every job is run: the order changes, not how much gets done.

The job runs in the caller's context (its request id, its route), as asyncio.to_thread would run it. A job whose
caller stopped waiting before it started is dropped; one that started runs to its end.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# What a job costs beside its pixels, in megapixels of decoding: a call's own work (gRPC, the thread hops) is about
# what a quarter of a megapixel of JPEG takes to decode.
JOB_COST_MP = 0.25
# Callers whose last job ended this far behind the work in progress are forgotten: their next job starts now anyway.
_FORGET_AFTER = 1024


@dataclass(order=True)
class _Job:
    start: float  # in virtual time, in megapixels
    order: int  # arrival, among equal starts
    run: Callable[[], Any] = field(compare=False)
    done: asyncio.Future[Any] = field(compare=False)


class FairWorkers:
    """`threads` worker threads for the CPU stages, taken by the waiting jobs in start-time fair order of cost."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="image")
        self._idle = threads
        self._waiting: list[_Job] = []
        self._virtual = 0.0  # the start of the job taken last: how far the work in progress has got
        self._ends: dict[str, float] = {}  # per caller: where its last job ends, in virtual time
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def run(self, caller: str, megapixels: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on a worker thread, in its turn for `caller`'s job of `megapixels`."""
        loop = asyncio.get_running_loop()
        start = max(self._virtual, self._ends.get(caller, 0.0))
        self._ends[caller] = start + max(megapixels, 0.0) + JOB_COST_MP
        context = contextvars.copy_context()
        job = _Job(start, next(self._arrivals), lambda: context.run(function, *args, **kwargs), loop.create_future())
        heapq.heappush(self._waiting, job)
        self._dispatch()
        return await job.done

    def _dispatch(self) -> None:
        while self._idle and self._waiting:
            job = heapq.heappop(self._waiting)
            if job.done.done():  # its caller stopped waiting
                continue
            self._virtual = max(self._virtual, job.start)
            self._idle -= 1
            loop = job.done.get_loop()
            self._executor.submit(job.run).add_done_callback(
                lambda ran, job=job, loop=loop: loop.call_soon_threadsafe(self._finished, ran, job)
            )
        if len(self._ends) > _FORGET_AFTER:
            self._ends = {caller: end for caller, end in self._ends.items() if end > self._virtual}

    def _finished(self, ran: Future[Any], job: _Job) -> None:
        self._idle += 1
        if not job.done.done():
            error = ran.exception()
            if error is not None:
                job.done.set_exception(error)
            else:
                job.done.set_result(ran.result())
        self._dispatch()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
