"""python -m service: the SegmentationService gateway."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from service.config import ConfigError, load_config
from service.server import create_gateway

log = logging.getLogger("service")


async def serve(argv: list[str] | None) -> int:
    config = load_config(argv)
    logging.getLogger().setLevel(config.log_level)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    gateway = create_gateway(config)
    await gateway.start()
    host = config.listen.rsplit(":", 1)[0]
    print(
        f"SegmentationService listening on {host}:{gateway.port}, backend {config.backend}, "
        f"default model {config.model.name!r}",
        flush=True,
    )
    await stopping.wait()
    log.info("shutting down: NOT_SERVING, draining calls for up to %.1f s", config.shutdown_grace_s)
    await gateway.stop(config.shutdown_grace_s)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(argv))
    except ConfigError as exc:
        print(f"service: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"service: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
