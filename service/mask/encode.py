"""Encoding the mask: palette PNG, raw bytes or run lengths, all from the model-size mask and repeat counts."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from isal import isal_zlib

from service.mask.colormap import PASCAL
from service.mask.grid import MaskGrid, expand

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_BLOCK_BYTES = 1 << 20
# The palette never changes, so its chunk is built once.
_PALETTE = PASCAL.tobytes()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


_PLTE_CHUNK = _chunk(b"PLTE", _PALETTE)
_IEND_CHUNK = _chunk(b"IEND", b"")


def encode_png(grid: MaskGrid) -> bytes:
    """An 8-bit palette PNG whose pixel values are the class ids and whose palette is the PASCAL colormap.

    OpenCV's PNG encoder costs ~19 ms on a 1080p mask at any level; scanlines built from the repeat counts and
    ISA-L's deflate (level 1: these masks are long runs, higher levels gain little) cost a fraction of that. The
    scanlines of one model-size row at a time go to the compressor, so a full-size mask (8 MB at 4K) never exists.
    """
    width, height = grid.width, grid.height
    small_rows = np.empty((grid.small.shape[0], width + 1), dtype=np.uint8)
    small_rows[:, 0] = 0  # filter type None for every scanline
    small_rows[:, 1:] = np.repeat(grid.small, grid.col_repeats, axis=1) if not grid.is_identity else grid.small
    if grid.is_identity:
        idat = isal_zlib.compress(small_rows, 1)
    else:
        compressor = isal_zlib.compressobj(1)
        parts = []
        # Blocks of about 1 MiB of scanlines: the full mask never exists, and deflate still sees long stretches.
        rows_per_block = max(1, _PNG_BLOCK_BYTES // ((width + 1) * int(grid.row_repeats.max())))
        for first in range(0, small_rows.shape[0], rows_per_block):
            block = slice(first, first + rows_per_block)
            parts.append(compressor.compress(np.repeat(small_rows[block], grid.row_repeats[block], axis=0)))
        idat = b"".join((*parts, compressor.flush()))
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _PLTE_CHUNK,
            _chunk(b"IDAT", idat),
            _IEND_CHUNK,
        )
    )


def encode_raw(grid: MaskGrid) -> bytes:
    """Row-major uint8 class ids, width x height bytes."""
    return expand(grid).tobytes()


def run_lengths(grid: MaskGrid) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts) of the row-major runs of the full-size mask, computed from the model-size mask's runs."""
    runs = grid.runs
    lengths = grid.col_edges[runs.end] - grid.col_edges[runs.start]
    # Small row y's runs appear row_repeats[y] times in a row in the full-size mask.
    h = grid.small.shape[0]
    per_row = np.bincount(runs.row, minlength=h)
    first = np.cumsum(per_row) - per_row
    block = per_row * grid.row_repeats
    entry_row = np.repeat(np.arange(h), block)
    offset = np.arange(int(block.sum())) - np.repeat(np.cumsum(block) - block, block)
    index = first[entry_row] + offset % per_row[entry_row]
    values, lengths = runs.value[index], lengths[index]
    keep = lengths > 0
    values, lengths = values[keep], lengths[keep]
    if values.size == 0:
        return values.astype(np.uint32), lengths.astype(np.uint32)
    # Merge runs that continue from the end of one row into the next.
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return values[starts].astype(np.uint32), np.add.reduceat(lengths, starts).astype(np.uint32)
