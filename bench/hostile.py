"""Image files made to hurt a decoder, for the soak's mix and the abuse bench's `hostile` shape: not images at all, cut
short, claiming a size far past the limits, their boxes or coded data overwritten. Each comes with the status codes
a gateway may answer it with: a decoder given scrambled coded data may well draw a picture of noise, which is an
answer too; anything else (a crash, INTERNAL, a hang until the deadline) is not.

Made from a photo's pixels at run time; the same seed makes the same files.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

import numpy as np

from bench import photos

OK = frozenset({"OK"})
INVALID = frozenset({"INVALID_ARGUMENT"})
NOISE_OR_INVALID = frozenset({"OK", "INVALID_ARGUMENT"})


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    codes: frozenset[str]  # the status code names a gateway may answer with


def iso_media_claiming(data: bytes, width: int, height: int) -> bytes:
    """A HEIF or AVIF file whose every image size property (`ispe`) claims width x height."""
    out, start = bytearray(data), 0
    while (found := out.find(b"ispe", start)) != -1:
        out[found + 8 : found + 16] = struct.pack(">II", width, height)  # after the version and flags
        start = found + 4
    return bytes(out)


def _top_level_box(data: bytes, kind: bytes) -> tuple[int, int]:
    """(payload start, end) of the first top-level box of `kind`."""
    start = 0
    while start + 8 <= len(data):
        size = int.from_bytes(data[start : start + 4], "big")
        if data[start + 4 : start + 8] == kind:
            return start + 8, start + size
        if size < 8:
            break
        start += size
    raise ValueError(f"no {kind!r} box")


def _scrambled(data: bytes, start: int, end: int, rng: random.Random) -> bytes:
    out = bytearray(data)
    out[start:end] = rng.randbytes(end - start)
    return bytes(out)


def samples(bgr: np.ndarray, seed: int = 7) -> list[Sample]:
    """The hostile files, made from one photo (BGR pixels)."""
    rng = random.Random(seed)
    jpeg = photos.encoded(bgr, "JPEG")
    made = [
        Sample("text", b"this is not an image", INVALID),
        Sample("gif", b"GIF89a" + b"\x00" * 64, INVALID),
        Sample("truncated-jpeg", jpeg[: len(jpeg) // 3], INVALID),
    ]
    for kind, data in (("heic", photos.encoded(bgr, "HEIC")), ("avif", photos.encoded(bgr, "AVIF"))):
        meta_start, meta_end = _top_level_box(data, b"meta")
        coded_start, coded_end = _top_level_box(data, b"mdat")
        made += [
            Sample(f"{kind}-truncated", data[: len(data) // 2], INVALID),
            Sample(f"{kind}-ftyp-only", data[:meta_start], INVALID),
            Sample(f"{kind}-claiming-100000x100000", iso_media_claiming(data, 100_000, 100_000), INVALID),
            # The boxes after meta's version and flags: item locations, properties, references.
            Sample(f"{kind}-meta-scrambled", _scrambled(data, meta_start + 4, meta_end, rng), INVALID),
            # The coded picture after its first bytes: the codec decodes noise or gives up.
            Sample(
                f"{kind}-coded-data-scrambled", _scrambled(data, coded_start + 16, coded_end, rng), NOISE_OR_INVALID
            ),
        ]
    return made
