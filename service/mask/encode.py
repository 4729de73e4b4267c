"""Encoding the mask: palette PNG, raw bytes or run lengths, all from its grid description (service/mask/grid.py)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import numpy as np
from isal import isal_zlib

from service.mask.colormap import PASCAL
from service.mask.grid import MaskGrid, expand, row_blocks

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_BLOCK_BYTES = 1 << 20
# The palette never changes, so its chunk is built once.
_PALETTE = PASCAL.tobytes()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return b"".join(_chunk_parts(kind, [payload]))


def _chunk_parts(kind: bytes, parts: list[bytes]) -> list[bytes]:
    """A chunk whose payload is `parts` in order, as pieces to join: the payload is never copied to be measured or
    checksummed (an IDAT of a 4K cut-out is 8 MB)."""
    crc = zlib.crc32(kind)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [struct.pack(">I", sum(len(part) for part in parts)), kind, *parts, struct.pack(">I", crc)]


_PLTE_CHUNK = _chunk(b"PLTE", _PALETTE)
_IEND_CHUNK = _chunk(b"IEND", b"")


def encode_png(grid: MaskGrid) -> bytes:
    """An 8-bit palette PNG whose pixel values are the class ids and whose palette is the PASCAL colormap.

    OpenCV's PNG encoder costs ~19 ms on a 1080p mask at any level; scanlines built from the grid and ISA-L's
    deflate (level 1: these masks are long runs, higher levels gain little) cost a fraction of that. About 1 MiB
    of scanlines at a time go to the compressor, so a full-size mask (8 MB at 4K) never exists; deflate still sees
    long stretches.
    """
    if grid.is_identity:
        scanlines = np.zeros((grid.height, grid.width + 1), dtype=np.uint8)  # filter type None for every scanline
        scanlines[:, 1:] = grid.small
        idat = [isal_zlib.compress(scanlines, 1)]
    else:
        compressor = isal_zlib.compressobj(1)
        idat = [compressor.compress(block) for block in row_blocks(grid, _PNG_BLOCK_BYTES, lead=1)]
        idat.append(compressor.flush())
    header = struct.pack(">IIBBBBB", grid.width, grid.height, 8, 3, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), _PLTE_CHUNK, *_chunk_parts(b"IDAT", idat), _IEND_CHUNK))


def encode_rgb_png(bgr: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of a BGR image (the overlay): each scanline with PNG's Sub filter (each byte less the one a
    pixel to its left, modulo 256) and ISA-L's deflate at level 1, about five times faster than OpenCV's encoder on
    a photo (13 against 65 ms at 1280x720), for the same size."""
    height, width = bgr.shape[:2]
    return encode_png_bands(width, height, RGB, lambda rows: bgr[rows, :, ::-1])


def encode_gray_png(gray: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a (h, w) uint8 image, as encode_rgb_png writes."""
    height, width = gray.shape
    return encode_png_bands(width, height, GRAY, lambda rows: gray[rows, :, np.newaxis])


GRAY, RGB, RGBA = 0, 2, 6  # PNG colour types
_CHANNELS = {GRAY: 1, RGB: 3, RGBA: 4}


def encode_png_bands(width: int, height: int, colour_type: int, band: Callable[[slice], np.ndarray]) -> bytes:
    """An 8-bit PNG of `colour_type` whose pixels `band(rows)` gives a band of rows at a time, as (rows, width,
    channels) uint8 in PNG's channel order: Sub-filtered scanlines of about 1 MiB at a time go to the compressor, so
    a cut-out at 4K never exists whole in PNG's order."""
    channels = _CHANNELS[colour_type]
    stride = width * channels
    rows_per_band = max(1, _PNG_BLOCK_BYTES // (stride + 1))
    compressor = isal_zlib.compressobj(1)
    parts = []
    for start in range(0, height, rows_per_band):
        rows = slice(start, min(start + rows_per_band, height))
        pixels = np.ascontiguousarray(band(rows)).reshape(rows.stop - rows.start, stride)
        scanlines = np.empty((pixels.shape[0], stride + 1), dtype=np.uint8)
        scanlines[:, 0] = 1  # filter type Sub
        scanlines[:, 1 : channels + 1] = pixels[:, :channels]
        np.subtract(pixels[:, channels:], pixels[:, :-channels], out=scanlines[:, channels + 1 :])
        parts.append(compressor.compress(scanlines))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), *_chunk_parts(b"IDAT", parts), _IEND_CHUNK))


def encode_raw(grid: MaskGrid) -> bytes:
    """Row-major uint8 class ids, width x height bytes."""
    return expand(grid).tobytes()


def run_lengths(grid: MaskGrid) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts) of the row-major runs of the full-size mask, as uint32."""
    values, lengths = _runs_of_blocks(grid) if grid.patches is not None else _runs_of_grid(grid)
    return values.astype(np.uint32), lengths.astype(np.uint32)


def _runs_of_grid(grid: MaskGrid) -> tuple[np.ndarray, np.ndarray]:
    """The runs from the grid's own runs: each grid row's runs repeated as many times as the row is."""
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
        return values, lengths
    # Merge runs that continue from the end of one row into the next.
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return values[starts], np.add.reduceat(lengths, starts)


def _runs_of_blocks(grid: MaskGrid) -> tuple[np.ndarray, np.ndarray]:
    """The runs of a patched mask, found in its rows a block at a time."""
    values, starts = [], []
    offset, previous = 0, -1
    for block in row_blocks(grid, _PNG_BLOCK_BYTES):
        flat = block.ravel()
        begins = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        if flat[0] != previous:
            begins = np.concatenate(([0], begins))
        values.append(flat[begins])
        starts.append(begins + offset)
        offset, previous = offset + flat.size, int(flat[-1])
    run_starts = np.concatenate(starts)
    return np.concatenate(values), np.diff(run_starts, append=offset)
