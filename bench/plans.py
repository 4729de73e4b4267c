"""What a bench run measures: the plans (sizes, concurrencies, seconds a cell), the image sizes, the shared data."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from deploy.local import ROOT

# The shared real data beside the checkout (see the README).
SHARED = ROOT.parent / "shared"

IMAGES = SHARED / "images"

FROZEN_GRAPH = SHARED / "models" / "deeplabv3_mnv2_pascal" / "frozen_inference_graph.pb"

LABELS = SHARED / "models" / "deeplabv3_mnv2_pascal" / "labels.txt"

SIZES = {"640x480": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}

PLOTTED = ("floor", "gateway-png", "gateway-rle", "seed")

# The gateway's model as shipped (make run, deploy/, examples/): the exported graph at its own working size. The floor
# and the peers that resize send the same tensor; the in-graph peer resizes to it in the graph.
PROFILE = "deeplab-257"


@dataclass(frozen=True)
class Plan:
    sizes: tuple[str, ...]
    concurrencies: tuple[int, ...]
    seconds: float  # per scenario and concurrency, split over `rounds` interleaved phases
    rounds: int
    fidelity: str | None  # bench/fidelity.py's plan, for the agreement beside the speed; None: not measured
    out: pathlib.Path


PLANS = {
    "full": (tuple(SIZES), (1, 4, 8), 6.0, 6, "full"),
    "quick": (("1080p", "4k"), (1, 4), 2.0, 2, "short"),
    "smoke": (("640x480",), (1,), 0.2, 1, None),
}


# The fairness limits lifted, for the mixed-load tails' comparison: as many places as callers could want, no
# share per caller, waits as long as a call's deadline.
UNFAIR_FLAGS = ("--max-concurrent-calls=64", "--max-calls-per-caller=1000", "--max-queue-wait=60")


# Seconds py-spy samples the gateway at 1080p (bench/profile.py).
PROFILE_SECONDS = 10
