"""python -m modelserver: serve SavedModels over TF Serving's gRPC API, and its REST API with --rest_api_port.

Start-up follows TF Serving's Server::BuildAndStart (model_servers/server.cc:182-462, tensorflow/serving 9d981c5c):
the models are loaded first (registry.py), and only then is the gRPC port opened, then the REST port. A config
that cannot be served ends the process as main.cc:341-346 does: "Failed to start server. Error: <status>", exit
status 255 (its -1).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

# TensorFlow's C++ start-up chatter is noise for a server log; real errors still get through.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from modelserver.monitoring import Metrics, prometheus_path
from modelserver.options import OptionsError, ServerOptions, parse_options

if TYPE_CHECKING:
    from modelserver.http_server import RestApp, RestServer

log = logging.getLogger("modelserver")

STARTUP_FAILED = 255


async def serve(argv: list[str] | None) -> int:
    options = parse_options(argv)
    # Read before the models load, so that a bad file fails at once, as the other files' errors do.
    metrics_path = prometheus_path(options)
    # These load TensorFlow.
    from modelserver.http_server import RestApp  # noqa: PLC0415
    from modelserver.registry import StartupError  # noqa: PLC0415
    from modelserver.server import build_registry, create_server  # noqa: PLC0415

    # Handlers go in first: a SIGTERM during start-up must still shut down cleanly.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    registry = build_registry(options)
    start_up = asyncio.ensure_future(asyncio.to_thread(registry.start_up, options.config))
    stop_wait = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({start_up, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if stopping.is_set():
        # A load in progress cannot be interrupted; stop() waits for it, then unloads.
        await asyncio.to_thread(registry.stop)
        with contextlib.suppress(StartupError):
            await start_up
        return 0
    stop_wait.cancel()
    try:
        start_up.result()
    except StartupError as exc:
        print(f"Failed to start server. Error: {exc}", file=sys.stderr, flush=True)
        await asyncio.to_thread(registry.stop)
        return STARTUP_FAILED

    # TensorFlow leaves hundreds of thousands of objects that live as long as the process; without this every full
    # collection walks them all, which tripled the time to parse a REST request's JSON (250-450 ms -> 60-110 ms
    # for a 513x513 image).
    gc.collect()
    gc.freeze()
    metrics = Metrics()
    server, port, executor = create_server(options, registry, metrics)
    await server.start()
    rest_server = await _start_rest(options, RestApp(registry, executor, metrics, metrics_path))
    registry.start_polling(options.model_config_file or None, options.model_config_file_poll_wait_seconds)
    names = ", ".join(registry.models)
    print(f"Running gRPC ModelServer at {options.bind_address}:{port} (models: {names}) ...", flush=True)
    if rest_server is not None:
        print(f"Exporting HTTP/REST API at:{options.bind_address}:{rest_server.port} ...", flush=True)

    await stopping.wait()
    log.info("shutting down: draining calls for up to %.1f s", options.shutdown_grace_seconds)
    stops = [server.stop(options.shutdown_grace_seconds)]
    if rest_server is not None:
        stops.append(rest_server.stop())
    await asyncio.gather(*stops)
    executor.shutdown(wait=True, cancel_futures=True)
    await asyncio.to_thread(registry.stop)
    return 0


async def _start_rest(options: ServerOptions, app: RestApp) -> RestServer | None:
    """The REST server, or None: not asked for, or (as TF Serving, which serves gRPC regardless) not possible."""
    from modelserver.http_server import RestServer  # noqa: PLC0415

    if not options.rest_api_port:
        return None
    if options.rest_api_port == options.port:
        log.error(
            "server_options.http_port cannot be same as grpc_port. Please use a different port for HTTP/REST API. "
            "Skipped exporting HTTP/REST API."
        )
        return None
    try:
        return await RestServer.start(app, options.bind_address, options.rest_api_port, options.shutdown_grace_seconds)
    except OSError as exc:
        log.error("Failed to start HTTP Server at %s:%d: %s", options.bind_address, options.rest_api_port, exc)
        return None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(argv))
    except OptionsError as exc:
        print(f"modelserver: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
