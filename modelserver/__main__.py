"""python -m modelserver: serve SavedModels over TF Serving's gRPC API."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

# TensorFlow's C++ start-up chatter is noise for a server log; real errors still get through.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from modelserver.options import OptionsError, parse_options

log = logging.getLogger("modelserver")


async def serve(argv: list[str] | None) -> int:
    options = parse_options(argv)
    from modelserver.server import build_registry, create_server  # noqa: PLC0415 (loads TensorFlow)

    # Handlers go in first: a SIGTERM during start-up must still shut down cleanly.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    registry = build_registry(options)
    # As TF Serving does, load what is on disk before accepting calls, so a started server can answer.
    await asyncio.to_thread(registry.poll_once)
    server, port, executor = create_server(options, registry)
    await server.start()
    registry.start()
    names = ", ".join(registry.models)
    print(f"Running gRPC ModelServer at {options.bind_address}:{port} (models: {names}) ...", flush=True)
    await stopping.wait()
    log.info("shutting down: draining calls for up to %.1f s", options.shutdown_grace_seconds)
    await server.stop(options.shutdown_grace_seconds)
    executor.shutdown(wait=True, cancel_futures=True)
    await asyncio.to_thread(registry.stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(argv))
    except OptionsError as exc:
        print(f"modelserver: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
