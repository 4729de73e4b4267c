"""Shadow traffic: a share of a model's requests also run, in the background, on one of its variants.

The caller never waits for a shadow and never sees its errors. Shadow work in flight is bounded; past the bound
a shadow request is dropped and counted. Each shadow mask is compared with the caller's at model size (pixel
agreement, mean IoU), and the running figures per model and variant are kept for ListModels.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from service import inference
from service.backends import Backend
from service.mask.agreement import agreement
from service.routing import Route

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ShadowStats:
    """Running figures of one model's shadow variant."""

    compared: int = 0  # shadow answers compared with the caller's
    dropped: int = 0  # shadow requests not sent: too many in flight
    failed: int = 0  # shadow requests that failed (the caller's answer was unaffected)
    skipped: int = 0  # shadow answers with nothing to compare with: the caller's request failed
    pixel_sum: float = 0.0
    iou_sum: float = 0.0

    @property
    def pixel_agreement(self) -> float:
        return self.pixel_sum / self.compared if self.compared else 0.0

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.compared if self.compared else 0.0


class ShadowRunner:
    def __init__(self, max_in_flight: int, predict_timeout_s: float) -> None:
        self.max_in_flight = max_in_flight
        self.predict_timeout_s = predict_timeout_s
        # The shadows' CPU work (reading the answer, the comparison) has a thread of its own,
        # so that it never queues ahead of callers' images in the pool they share.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self.stats: dict[tuple[str, str], ShadowStats] = {}
        self._tasks: dict[asyncio.Task[None], Backend] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def uses(self, backend: Backend) -> bool:
        """Whether a shadow request in flight may still call `backend`."""
        return any(used is backend for used in self._tasks.values())

    def keep_only(self, figures_of: set[tuple[str, str]]) -> None:
        """Forgets the figures of (model, variant) shadows no longer configured."""
        for key in [key for key in self.stats if key not in figures_of]:
            del self.stats[key]

    def figures(self, model: str, variant: str) -> ShadowStats:
        return self.stats.setdefault((model, variant), ShadowStats())

    def start(self, shadow: Route, tensor: np.ndarray, primary_mask: asyncio.Future[np.ndarray]) -> None:
        """Runs the shadow on its model's input `tensor` in the background; `primary_mask` will hold the caller's
        model-size mask."""
        figures = self.figures(shadow.model.name, shadow.variant)
        if len(self._tasks) >= self.max_in_flight:
            figures.dropped += 1
            return
        task = asyncio.create_task(self._run(shadow, tensor, primary_mask, figures), name="shadow")
        self._tasks[task] = shadow.backend
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    async def _run(
        self, shadow: Route, tensor: np.ndarray, primary_mask: asyncio.Future[np.ndarray], figures: ShadowStats
    ) -> None:
        model = shadow.model
        try:
            # Compared at the model's size: the scores behind the class ids are not needed.
            prediction = await inference.predict(shadow, tensor, self.predict_timeout_s, scores=False)
            answer = await self._off_loop(inference.read_answer, prediction, shadow, tensor, False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a shadow's failure is only recorded
            figures.failed += 1
            log.warning("shadow %s/%s failed: %s", model.name, shadow.variant, getattr(exc, "message", repr(exc)))
            return
        await asyncio.wait([primary_mask])
        if primary_mask.cancelled() or primary_mask.exception() is not None:
            figures.skipped += 1
            return
        result = await self._off_loop(agreement, primary_mask.result(), answer.classes)
        figures.compared += 1
        figures.pixel_sum += result.pixels
        figures.iou_sum += result.mean_iou

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in the shadows' thread, with this task's context (its log lines keep the request id)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: context.run(work, *args))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._thread.shutdown(wait=False)
