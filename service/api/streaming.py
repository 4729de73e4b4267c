"""Answering a stream of requests in order, with a bounded number of them being worked on at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

Request = TypeVar("Request")
Response = TypeVar("Response")


async def answer_in_order(
    requests: AsyncIterator[Request], answer: Callable[[int, Request], Awaitable[Response]], window: int
) -> AsyncIterator[Response]:
    """answer(index, request) for each request, up to `window` at once, yielded in request order.

    A request is read only once the window has room for it, so a fast sender is held back by gRPC's flow control
    instead of piling up work here, and a request is never read before it can be worked on. A failure to read
    the requests ends the stream after the answers so far.
    """
    places = asyncio.Semaphore(window)
    pending: asyncio.Queue[asyncio.Task[Response] | None] = asyncio.Queue()

    async def read() -> None:
        index = 0
        try:
            while True:
                await places.acquire()
                try:
                    request = await anext(requests)
                except StopAsyncIteration:
                    break
                await pending.put(asyncio.create_task(answer(index, request)))
                index += 1
        finally:
            # Whatever ends the reading, the writer must not wait forever; `await reader` re-raises.
            await pending.put(None)

    reader = asyncio.create_task(read())
    leftovers: list[asyncio.Task[Response]] = []
    try:
        while (task := await pending.get()) is not None:
            try:
                yield await task
            finally:
                places.release()
        await reader
    finally:
        reader.cancel()
        while not pending.empty():
            if (leftover := pending.get_nowait()) is not None:
                leftover.cancel()
                leftovers.append(leftover)
        # Cancelled work is waited for, so that nothing of this call outlives it (or its load-shedding places).
        await asyncio.gather(reader, *leftovers, return_exceptions=True)
