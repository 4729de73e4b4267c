"""Places shared fairly between callers, bounded waits, and per-caller quotas (service/admission.py), on their own."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.admission import Bodies, Places, Quotas
from service.errors import DeadlineExceeded, Overloaded


async def _hold(places: Places, caller: str, release: asyncio.Event, order: list[str]) -> None:
    async with places.place(caller, deadline=None):
        order.append(caller)
        await release.wait()


def test_a_caller_alone_takes_every_place_and_the_next_free_one_goes_to_the_caller_with_fewest() -> None:
    async def scenario() -> list[str]:
        places, release, order = Places(limit=4, max_wait_s=10), asyncio.Event(), []
        # One connection with many streams takes all four places, and queues more.
        greedy = [asyncio.create_task(_hold(places, "greedy", release, order)) for _ in range(8)]
        await asyncio.sleep(0)
        assert places.busy == 4 and places.held["greedy"] == 4 and places.waiting == 4
        # A polite caller arrives after them, and is next all the same: it holds nothing.
        polite = asyncio.create_task(_hold(places, "polite", release, order))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*greedy, polite)
        return order

    order = asyncio.run(scenario())
    assert order[:4] == ["greedy"] * 4 and order[4] == "polite"


def test_places_alternate_between_two_callers_that_both_want_more() -> None:
    async def scenario() -> list[str]:
        places, order = Places(limit=1, max_wait_s=10), []
        first = asyncio.Event()

        async def one(caller: str) -> None:
            async with places.place(caller, deadline=None):
                order.append(caller)
                await first.wait()

        tasks = [asyncio.create_task(one("a")) for _ in range(4)]
        tasks += [asyncio.create_task(one("b")) for _ in range(2)]
        await asyncio.sleep(0)
        first.set()
        await asyncio.gather(*tasks)
        return order

    # b arrived later but is not left behind a's queue: once both wait, each free place goes to b while b holds
    # fewer than a (here: none while a works), so they take turns until b has no more.
    assert asyncio.run(scenario()) == ["a", "b", "a", "b", "a", "a"]


def test_a_wait_past_max_queue_wait_is_overloaded_with_a_hint_and_leaves_the_line() -> None:
    async def scenario() -> tuple[Overloaded, Places, float]:
        places, release = Places(limit=1, max_wait_s=0.2), asyncio.Event()
        holder = asyncio.create_task(_hold(places, "a", release, []))
        await asyncio.sleep(0)
        start = time.monotonic()
        with pytest.raises(Overloaded) as error:
            async with places.place("b", deadline=None):
                pass
        waited = time.monotonic() - start
        release.set()
        await holder
        return error.value, places, waited

    error, places, waited = asyncio.run(scenario())
    assert 0.2 <= waited < 1.0
    assert "stayed taken for 0.2 s (max_queue_wait); retry in about" in error.message
    assert error.retry_after_s is not None and 0.1 <= error.retry_after_s <= 10
    assert places.busy == 0 and places.waiting == 0 and not places.held


def test_a_deadline_shorter_than_the_wait_is_deadline_exceeded_and_a_passed_one_at_once() -> None:
    async def scenario() -> None:
        places, release = Places(limit=1, max_wait_s=5), asyncio.Event()
        holder = asyncio.create_task(_hold(places, "a", release, []))
        await asyncio.sleep(0)
        with pytest.raises(DeadlineExceeded, match="while the image waited for a place"):
            async with places.place("b", deadline=time.monotonic() + 0.1):
                pass
        with pytest.raises(DeadlineExceeded, match="before the image could be worked on"):
            async with places.place("b", deadline=time.monotonic() - 1):
                pass
        release.set()
        await holder
        assert places.busy == 0 and places.waiting == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_line_and_a_granted_one_gives_its_place_back() -> None:
    async def scenario() -> None:
        places, release = Places(limit=1, max_wait_s=10), asyncio.Event()
        holder = asyncio.create_task(_hold(places, "a", release, []))
        await asyncio.sleep(0)
        gone = asyncio.create_task(_hold(places, "b", asyncio.Event(), []))
        await asyncio.sleep(0)
        assert places.waiting == 1
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert places.waiting == 0
        # Granted and cancelled in the same turn of the loop: the place comes back.
        late = asyncio.create_task(_hold(places, "c", asyncio.Event(), []))
        await asyncio.sleep(0)
        release.set()
        await holder
        late.cancel()
        await asyncio.gather(late, return_exceptions=True)
        assert places.busy == 0 and places.waiting == 0 and not places.held

    asyncio.run(scenario())


def test_a_quota_holds_back_only_its_own_caller() -> None:
    async def scenario() -> None:
        quotas = Quotas(per_caller=2)
        await quotas.take("a", None)
        await quotas.take("a", None)
        third = asyncio.create_task(quotas.take("a", None))  # a stream item: it waits as long as it takes
        await quotas.take("b", 0)  # another caller is not held back
        await asyncio.sleep(0.05)
        assert not third.done()
        with pytest.raises(Overloaded, match="already has 2 images in progress or unread"):
            await quotas.take("a", 0.05)  # a unary call: a bounded wait
        quotas.give_back("a")
        await asyncio.wait_for(third, 1)
        assert quotas.held == {"a": 2, "b": 1}
        quotas.give_back("a", 2)
        quotas.give_back("b")
        assert not quotas.held and quotas.waiting == 0

    asyncio.run(scenario())


def test_http_bodies_reserve_their_bytes_and_wait_a_bounded_time_for_them() -> None:
    async def scenario() -> None:
        bodies = Bodies(100)
        first = await bodies.reserve(60, 1)
        assert (first, bodies.held) == (60, 60)
        with pytest.raises(Overloaded, match="reading 60 bytes of HTTP request bodies"):
            await bodies.reserve(50, 0.05)
        waiting = asyncio.ensure_future(bodies.reserve(50, 5))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await bodies.give_back(first)
        assert await asyncio.wait_for(waiting, 1) == 50
        await bodies.give_back(50)
        # A body larger than the capacity (no Content-Length: the body limit) reserves the whole capacity.
        assert (await bodies.reserve(1000, 1), bodies.held) == (100, 100)

    asyncio.run(scenario())
