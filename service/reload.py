"""Reloading the config file: on SIGHUP, and when it changes on disk if `config_poll` is set.

A valid new configuration takes effect for new calls at once (Gateway.apply); an invalid one is refused with one
logged line and the running configuration stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from service import reload_failures
from service.app import Gateway
from service.config import Config, ConfigError

log = logging.getLogger(__name__)


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is written or replaced (a Kubernetes ConfigMap swaps a symlink)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


class ConfigReloader:
    def __init__(self, gateway: Gateway, load: Callable[[], Config]) -> None:
        self._gateway = gateway
        self._load = load
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._signalled: set[asyncio.Task[bool]] = set()

    async def reload(self, why: str) -> bool:
        """Reads the configuration again and applies it; False when it was refused."""
        async with self._lock:
            try:
                config = await asyncio.to_thread(self._load)
            except (ConfigError, OSError) as exc:
                log.error("config reload (%s) refused, the running configuration stays: %s", why, exc)
                reload_failures.failed("config")
                return False
            try:
                await self._gateway.apply(config)
            except Exception as exc:  # e.g. a channel that cannot be made; the running configuration stays
                log.error("config reload (%s) failed, the running configuration stays: %r", why, exc)
                reload_failures.failed("config")
                return False
            models = ", ".join(m.name for m in config.models)
            log.info("config reloaded (%s): models %s, default %s", why, models, config.default_model)
            reload_failures.taken_up("config")
            return True

    def on_signal(self) -> None:
        """SIGHUP: a reload in a task of its own (kept, so that it is neither collected nor its error lost)."""
        task = asyncio.create_task(self.reload("SIGHUP"), name="config-reload")
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)

    def start_polling(self, path: str, interval_s: float) -> None:
        self._task = asyncio.create_task(self._poll(path, interval_s), name="config-poll")

    async def _poll(self, path: str, interval_s: float) -> None:
        seen = _stamp(path)
        while True:
            await asyncio.sleep(interval_s)
            stamp = _stamp(path)
            if stamp is not None and stamp != seen:
                seen = stamp
                await self.reload(f"{path} changed")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
