"""python -m service: the SegmentationService gateway."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
import sys

import PIL.Image

from service import tracing
from service.config import ConfigError, Limits
from service.flags import load_config
from service.logs import configure_logging

log = logging.getLogger("service.main")

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_malloc() -> None:
    """Keeps glibc from returning each request's large buffers to the kernel.

    Every call allocates a few large buffers: the decoded image (6 MB at 1080p, 25 MB at 4K), the input tensor,
    the answer, the mask. Above glibc's default 128 KiB threshold each one is a fresh mmap, and touching it costs a
    page fault per 4 KiB: measured 4.7 ms of system time per 1080p decode and 14 ms per 4K one, none with these
    settings; two arenas instead of one per thread keep the peak RSS down.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return  # not glibc
    # Buffers up to 32 MiB (a decoded 4K image is 25 MB) are reused from the heap; larger ones, such as a 50 MP
    # image at the pixel limit, still go straight back to the kernel. The decodes at once are as many as the worker
    # threads, so what the heap keeps is bounded by them; past 64 MiB free at its top, it is given back.
    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
    libc.mallopt(_M_ARENA_MAX, 2)


def cap_decoders(limits: Limits) -> None:
    """The decoders' own limits on what they may allocate, set from max_image_pixels: a second bound beside the
    probe's, for a header that lies. OpenCV reads its limit once, as it loads, so this comes before the first import
    of cv2 (the gateway's modules import it); Pillow (AVIF) reads its own at each open. libheif bounds a decode by
    the container's coded sizes, which the probe checks; libavif's limit is not reachable through Pillow, so the
    probe reads the AV1 sequence headers instead (service/image/av1.py)."""
    if "cv2" in sys.modules:
        log.warning("OpenCV was loaded before its pixel limit could be set")
    else:
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(limits.max_image_pixels)
    PIL.Image.MAX_IMAGE_PIXELS = limits.max_image_pixels


async def serve(argv: list[str] | None) -> int:
    config = load_config(argv)
    configure_logging(config.log_format, config.log_level)
    cap_decoders(config.limits)
    from service.app import create_gateway  # noqa: PLC0415  (cv2, after cap_decoders)
    from service.reload import ConfigReloader  # noqa: PLC0415

    if config.tracing:
        try:
            tracing.start(config.tracing, config.tracing_sample_ratio)
        except ImportError as exc:
            raise ConfigError(
                f"tracing = {config.tracing!r} needs the 'tracing' extra (pip install 'deeplab-gateway[tracing]'): "
                f"{exc}"
            ) from exc
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    gateway = create_gateway(config)
    reloader = ConfigReloader(gateway, lambda: load_config(argv))
    if config.source:
        loop.add_signal_handler(signal.SIGHUP, reloader.on_signal)
        if config.config_poll_s > 0:
            reloader.start_polling(config.source, config.config_poll_s)
    else:
        loop.add_signal_handler(signal.SIGHUP, lambda: log.warning("SIGHUP: no config file to reload"))
    await gateway.start()
    if gateway.http is not None:
        # Before the "listening" line, which tells whoever waits for it that every port is open.
        scheme, http_host = "https" if gateway.http.tls else "http", config.http_listen.rsplit(":", 1)[0]
        print(f"HTTP (Connect, gRPC-Web) and the web page on {scheme}://{http_host}:{gateway.http.port}/", flush=True)
    if config.health_listen:
        print(f"health on {config.health_listen.rsplit(':', 1)[0]}:{gateway.health_port} (plaintext)", flush=True)
    host = config.listen.rsplit(":", 1)[0]
    backends = ", ".join(f"{b.name} ({','.join(b.targets)})" for b in config.backends)
    models = ", ".join(m.name + (" (default)" if m is config.model else "") for m in config.models)
    print(f"SegmentationService listening on {host}:{gateway.port}, backends {backends}, models {models}", flush=True)
    if config.metrics_listen:
        print(f"metrics on http://{config.metrics_listen.rsplit(':', 1)[0]}:{gateway.metrics_port}/metrics", flush=True)
    await stopping.wait()
    log.info("shutting down: NOT_SERVING, draining calls for up to %.1f s", config.shutdown_grace_s)
    reloader.stop()
    await gateway.stop(config.shutdown_grace_s)
    tracing.stop()  # sends the spans not yet exported
    return 0


def main(argv: list[str] | None = None) -> int:
    tune_malloc()
    configure_logging("text", "INFO")  # until the configuration says otherwise
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
