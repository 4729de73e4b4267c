"""Fair turns at what images wait for: the worker threads of the CPU stages, and (service/pipeline.py) a backend's
calls in flight. Waiters are served by their callers' costs, not by arrival, so that a small photo does not wait
behind another caller's large ones.

A turn's cost is what it has to work through: for the CPU stages, the megapixels of its image plus a fixed part for
what any call costs beside its pixels. Turns are given in start-time fair order (Goyal, Vin and Cheng's SFQ): a
caller's turn starts, in virtual time, where its previous turn ended or where the turns in progress have got to,
whichever is later, and the waiter whose turn starts first goes next. A caller that sends a 0.3 MP photo now and
then is served at once, between another caller's 8 MP decodes; two callers that keep the threads busy each get half
of their time, whatever their photos' sizes, instead of half of the turns. Every waiter is served: the order
changes, not how much gets done. A waiter whose caller stopped waiting leaves the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# What a CPU job costs beside its pixels, in megapixels of decoding: a call's own work (gRPC, the thread hops) is
# about what a quarter of a megapixel of JPEG takes to decode.
JOB_COST_MP = 0.25
# Callers whose last turn ended this far behind the turns in progress are forgotten: their next starts now anyway.
_FORGET_AFTER = 1024


@dataclass(order=True)
class _Waiter:
    start: float  # in virtual time
    order: int  # arrival, among equal starts
    granted: asyncio.Future[None] = field(compare=False)


class FairQueue:
    """`slots` turns at once; waiters take free ones in start-time fair order of their callers' costs."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.busy = 0
        self._waiting: list[_Waiter] = []
        self._virtual = 0.0  # the start of the turn given last: how far the turns in progress have got
        self._ends: dict[str, float] = {}  # per caller: where its last turn ends, in virtual time
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(not w.granted.done() for w in self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self, caller: str, cost: float) -> AsyncIterator[None]:
        """A turn for the duration of the block, in its order among the waiters."""
        start = max(self._virtual, self._ends.get(caller, 0.0))
        self._ends[caller] = start + max(cost, 0.0)
        waiter = _Waiter(start, next(self._arrivals), asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiting, waiter)
        self._grant()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._give_back()  # granted as its caller stopped waiting
            raise
        try:
            yield
        finally:
            self._give_back()

    def _give_back(self) -> None:
        self.busy -= 1
        self._grant()

    def _grant(self) -> None:
        while self.busy < self.slots and self._waiting:
            waiter = heapq.heappop(self._waiting)
            if waiter.granted.done():  # its caller stopped waiting
                continue
            self._virtual = max(self._virtual, waiter.start)
            self.busy += 1
            waiter.granted.set_result(None)
        if len(self._ends) > _FORGET_AFTER:
            self._ends = {caller: end for caller, end in self._ends.items() if end > self._virtual}


class FairWorkers:
    """`threads` worker threads for the CPU stages, taken in start-time fair order of their jobs' megapixels."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._turns = FairQueue(threads)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="image")

    @property
    def waiting(self) -> int:
        return self._turns.waiting

    async def run(self, caller: str, megapixels: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on a worker thread in the caller's context (its request id, its route), in
        its turn for `caller`'s job of `megapixels`. A job that started runs to its end."""
        context = contextvars.copy_context()
        async with self._turns.turn(caller, megapixels + JOB_COST_MP):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, lambda: context.run(function, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
