"""Which image is worked on next, so that no caller can take the gateway away from the others.

Two bounds, both counted in images (a unary call is one, each stream item is one):

- Places (`max_concurrent_calls`): images being worked on at once, from decode to answer. Shared by every caller;
  when several wait, the next free place goes to the caller with the fewest places (max-min fairness), so a
  connection with 40 streams gets no more than one with a single call once both want more than their share, and a
  caller alone can have them all. A wait longer than `max_queue_wait` (or the caller's deadline) ends in Overloaded
  with a retry hint (or DeadlineExceeded), before any work is done for the image.
- Quotas (`max_calls_per_caller`): images one caller holds at once: being worked on, or answered and not yet taken
  by gRPC. An answer a client does not read holds only its own caller's quota, never a place others wait for.

A caller is who its credentials say (service/auth/identity.py names it). No gRPC here: the interceptors and the
servicer take and give back, and api/status.py says what the errors become.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from service.errors import DeadlineExceeded, Overloaded

# How much the latest hold weighs in the running estimate of how long an image keeps its place.
_SMOOTHING = 0.2


@dataclass
class _Waiter:
    order: int  # arrival, for the oldest first among equals
    granted: asyncio.Future[None]


class _Counted:
    """Slots held per caller, each caller's line of waiters (first come first served among its own), and the
    bounded wait for a slot. Subclasses say when a slot is free and whose waiter gets it."""

    def __init__(self) -> None:
        self.held: collections.Counter[str] = collections.Counter()
        self._lines: dict[str, collections.deque[_Waiter]] = {}
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def _free_for(self, caller: str) -> bool:
        """Whether `caller` may take a slot at once, ahead of nobody."""
        raise NotImplementedError

    def _next(self) -> str | None:
        """The caller whose first waiter gets the next slot, if any may."""
        raise NotImplementedError

    def _take(self, caller: str) -> None:
        self.held[caller] += 1

    def _give_back(self, caller: str) -> None:
        self.held[caller] -= 1
        if self.held[caller] <= 0:
            del self.held[caller]
        self._grant()

    def _grant(self) -> None:
        while (caller := self._next()) is not None:
            line = self._lines[caller]
            waiter = line.popleft()
            if not line:
                del self._lines[caller]
            self._take(caller)
            waiter.granted.set_result(None)

    async def _wait(self, caller: str, timeout: float | None) -> bool:
        """A slot for `caller`: at once if free and nobody waits for it, else in line; False after `timeout`."""
        if self._free_for(caller):
            self._take(caller)
            return True
        waiter = _Waiter(next(self._arrivals), asyncio.get_running_loop().create_future())
        self._lines.setdefault(caller, collections.deque()).append(waiter)
        try:
            await asyncio.wait({waiter.granted}, timeout=timeout)
        except asyncio.CancelledError:
            # The caller went away while it waited: out of the line, or, granted meanwhile, the slot back.
            self._leave(caller, waiter)
            raise
        if waiter.granted.done():
            return True
        self._leave(caller, waiter)
        return False

    def _leave(self, caller: str, waiter: _Waiter) -> None:
        if waiter.granted.done() and not waiter.granted.cancelled():
            self._give_back(caller)
            return
        waiter.granted.cancel()
        line = self._lines.get(caller)
        if line is not None and waiter in line:
            line.remove(waiter)
            if not line:
                del self._lines[caller]
        self._grant()


class Places(_Counted):
    """Images being worked on at once, shared fairly between callers."""

    def __init__(self, limit: int, max_wait_s: float) -> None:
        super().__init__()
        self.limit = limit
        self.max_wait_s = max_wait_s
        self.busy = 0
        self._hold_s = 0.0  # a running estimate of how long an image keeps its place
        self._grants = itertools.count()
        self._last_grant: dict[str, int] = {}  # per caller with places or waiters: when it last got one

    def _share(self, caller: str) -> int:
        """The places `caller` may have while the others that have or want places have theirs: an equal share of
        the limit (at least one), all of them for a caller alone."""
        others = (self.held.keys() | self._lines.keys()) - {caller}
        return max(1, self.limit // (len(others) + 1))

    def _free_for(self, caller: str) -> bool:
        return self.busy < self.limit and not self._lines and self.held[caller] < self._share(caller)

    def _take(self, caller: str) -> None:
        super()._take(caller)
        self.busy += 1
        self._last_grant[caller] = next(self._grants)

    def _give_back(self, caller: str) -> None:
        self.busy -= 1
        if self.held[caller] <= 1 and caller not in self._lines:
            self._last_grant.pop(caller, None)
        super()._give_back(caller)

    def _next(self) -> str | None:
        if self.busy >= self.limit:
            return None
        # Among the callers under their share, the one with the fewest places being worked on; among equals, the
        # one served longest ago (so callers that both want more take turns), then the one waiting longest.
        eligible = [c for c in self._lines if self.held[c] < self._share(c)]
        if not eligible:
            return None
        return min(eligible, key=lambda c: (self.held[c], self._last_grant.get(c, -1), self._lines[c][0].order))

    def retry_after_s(self) -> float:
        """A hint for a refused caller: about the time the images waiting now take to get through."""
        rounds = math.ceil((self.waiting + 1) / self.limit)
        return min(max(rounds * self._hold_s, 0.1), 10.0)

    @contextlib.asynccontextmanager
    async def place(self, caller: str, deadline: float | None, bounded: bool = True) -> AsyncIterator[None]:
        """A place for the duration of the block, before any work: Overloaded past max_wait_s if `bounded` (a
        stream's items wait as long as it takes: their stream keeps its fair share), DeadlineExceeded past
        `deadline` (on the time.monotonic() clock)."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the deadline passed before the image could be worked on")
        bound = self.max_wait_s if bounded else math.inf
        timeout = min(bound, math.inf if remaining is None else remaining)
        if not await self._wait(caller, None if timeout == math.inf else timeout):
            if remaining is not None and remaining <= bound:
                raise DeadlineExceeded("the deadline passed while the image waited for a place")
            hint = self.retry_after_s()
            raise Overloaded(
                f"the service's {self.limit} places for images in progress stayed taken for {self.max_wait_s:g} s "
                f"(max_queue_wait); retry in about {hint:.1f} s",
                retry_after_s=hint,
            )
        started = time.monotonic()
        try:
            yield
        finally:
            self._hold_s += _SMOOTHING * (time.monotonic() - started - self._hold_s)
            self._give_back(caller)


class Quotas(_Counted):
    """Images each caller holds at once: being worked on, or answered and not yet taken."""

    def __init__(self, per_caller: int) -> None:
        super().__init__()
        self.per_caller = per_caller

    def _free_for(self, caller: str) -> bool:
        return self.held[caller] < self.per_caller and caller not in self._lines

    def _next(self) -> str | None:
        return next((caller for caller in self._lines if self.held[caller] < self.per_caller), None)

    async def take(self, caller: str, max_wait_s: float | None) -> None:
        """One image of the caller's quota; with `max_wait_s`, Overloaded if it stays full that long."""
        if not await self._wait(caller, max_wait_s):
            raise Overloaded(
                f"this caller already has {self.per_caller} images in progress or unread (max_calls_per_caller); "
                "wait for their answers, then retry",
                retry_after_s=max_wait_s or 1.0,
            )

    def give_back(self, caller: str, count: int = 1) -> None:
        for _ in range(count):
            self._give_back(caller)


class Bodies:
    """Bytes of HTTP request bodies being read or held at once: a request reserves its body's size (its
    Content-Length, else the body limit) before the body is read, and gives it back once answered. The HTTP side's
    part of the memory budget (deploy/CAPACITY.md), which Connect reads whole before the servicer runs."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self._freed = asyncio.Condition()

    async def reserve(self, size: int, max_wait_s: float) -> int:
        """Reserves `size` bytes (at most the capacity) within `max_wait_s`; the bytes reserved, to give back."""
        size = min(size, self.capacity)
        async with self._freed:
            try:
                await asyncio.wait_for(self._freed.wait_for(lambda: self.held + size <= self.capacity), max_wait_s)
            except TimeoutError:
                raise Overloaded(
                    f"the service is reading {self.held} bytes of HTTP request bodies, its limit; retry in a moment",
                    retry_after_s=1.0,
                ) from None
            self.held += size
        return size

    async def give_back(self, size: int) -> None:
        async with self._freed:
            self.held -= size
            self._freed.notify_all()
