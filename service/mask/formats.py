"""The mask formats a caller may ask for: each is one entry in FORMATS, the encoder that writes it from the mask's
grid description. The API names a format MASK_FORMAT_<NAME> (service/api/convert.py maps them by name)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.mask.encode import encode_png, encode_raw, run_lengths
from service.mask.grid import MaskGrid


class MaskFormat(enum.Enum):
    PNG = "png"
    RAW = "raw"
    RLE = "rle"
    NONE = "none"


@dataclass(frozen=True)
class EncodedGrid:
    """A mask as written: bytes (PNG, RAW), runs of class ids (RLE), or nothing (NONE)."""

    data: bytes = b""
    run_values: np.ndarray | None = None
    run_counts: np.ndarray | None = None


def _runs(grid: MaskGrid) -> EncodedGrid:
    values, counts = run_lengths(grid)
    return EncodedGrid(run_values=values, run_counts=counts)


FORMATS: dict[MaskFormat, Callable[[MaskGrid], EncodedGrid]] = {
    MaskFormat.PNG: lambda grid: EncodedGrid(data=encode_png(grid)),
    MaskFormat.RAW: lambda grid: EncodedGrid(data=encode_raw(grid)),
    MaskFormat.RLE: _runs,
    MaskFormat.NONE: lambda grid: EncodedGrid(),
}
DEFAULT_FORMAT = MaskFormat.PNG
