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

    While the window is full no further request is read, so a fast sender is held back by gRPC's flow control
    instead of piling up work here. A failure to read the requests ends the stream after the answers so far.
    """
    places = asyncio.Semaphore(window)
    pending: asyncio.Queue[asyncio.Task[Response] | None] = asyncio.Queue()

    async def read() -> None:
        index = 0
        try:
            async for request in requests:
                await places.acquire()
                await pending.put(asyncio.create_task(answer(index, request)))
                index += 1
        finally:
            # Whatever ends the reading, the writer must not wait forever; `await reader` re-raises.
            await pending.put(None)

    reader = asyncio.create_task(read())
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
            leftover = pending.get_nowait()
            if leftover is not None:
                leftover.cancel()
