"""TIFF's header read, and its layout checked so that decoding allocates no more than the image's own size.

libtiff (inside OpenCV) allocates what the first image directory (IFD) declares: a tile of TileWidth x TileLength
whatever the image's size (a 16 x 16 image with 16384 x 15360 tiles costs 960 MB), and where a tag appears twice it
uses the first one. So the gateway accepts the layouts scanners and image editors write, and nothing else:

- one of each tag, in the first IFD (later pages are never decoded);
- 1 to 4 samples of 1, 2, 4, 8 or 16 bits, unsigned or signed integers;
- no compression, CCITT, LZW, JPEG, Deflate or PackBits;
- strips, or tiles no larger than the image (rounded up to TIFF's multiple of 16) or 1024 pixels a side;
- as many strip or tile offsets and byte counts as the layout needs, each inside the file.

EXIF blocks (inside JPEGs) are TIFF structures too; `exif_orientation` reads their orientation leniently, since a
broken EXIF changes nothing decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from service.errors import InvalidImage

WIDTH, HEIGHT, BITS, COMPRESSION, STRIP_OFFSETS, ORIENTATION, SAMPLES = 256, 257, 258, 259, 273, 274, 277
ROWS_PER_STRIP, STRIP_COUNTS, PLANAR, SAMPLE_FORMAT = 278, 279, 284, 339
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_COUNTS = 322, 323, 324, 325
# The field types libtiff reads as integers: BYTE, SHORT, LONG, SBYTE, SSHORT, SLONG, LONG8, SLONG8.
_INTEGER_TYPES = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q", 17: "q"}
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
# The tags that shape what is decoded: each must be an integer of a type libtiff reads.
_LAYOUT_TAGS = frozenset(
    (WIDTH, HEIGHT, BITS, COMPRESSION, STRIP_OFFSETS, SAMPLES, ROWS_PER_STRIP, STRIP_COUNTS, PLANAR, SAMPLE_FORMAT)
) | {TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_COUNTS}
# None, CCITT RLE/G3/G4, LZW, JPEG, Deflate (Adobe), PackBits, Deflate (old).
COMPRESSIONS = frozenset((1, 2, 3, 4, 5, 7, 8, 32773, 32946))
MAX_ENTRIES = 512
# Far more strips or tiles than any image at the pixel limit needs at one row a strip; fewer than would take long
# to read.
MAX_VALUES = 1 << 20
MAX_TILE_SIDE = 1024


class _Malformed(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Truncated(_Malformed):
    def __init__(self) -> None:
        super().__init__("truncated")


def _ifd(data: bytes | memoryview, start: int) -> dict[int, tuple[int, ...]]:
    """The integer tags of the first IFD of the TIFF structure at `start`; _Malformed names what is wrong."""
    order = bytes(data[start : start + 2])
    if order not in (b"II", b"MM"):
        raise _Malformed("no byte order mark")
    endian = "<" if order == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(endian + "I", data, start + 4)
        (count,) = struct.unpack_from(endian + "H", data, start + ifd)
        if count > MAX_ENTRIES:
            raise _Malformed(f"its first directory has {count} entries")
        tags: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            entry = start + ifd + 2 + 12 * i
            tag, kind, values = struct.unpack_from(endian + "HHI", data, entry)
            if tag in tags:
                raise _Malformed(f"tag {tag} appears twice")
            if kind not in _INTEGER_TYPES:
                if tag in _LAYOUT_TAGS:
                    raise _Malformed(f"tag {tag} has field type {kind}, not an integer")
                tags[tag] = ()
                continue
            if values > MAX_VALUES:
                raise _Malformed(f"tag {tag} has {values} values")
            size = _TYPE_SIZES[kind] * values
            where = entry + 8 if size <= 4 else start + struct.unpack_from(endian + "I", data, entry + 8)[0]
            if where + size > len(data):
                raise _Truncated
            tags[tag] = struct.unpack_from(f"{endian}{values}{_INTEGER_TYPES[kind]}", data, where)
    except struct.error as exc:
        raise _Truncated from exc
    return tags


def exif_orientation(data: bytes | memoryview, start: int) -> int:
    """The orientation (1..8) in the EXIF block at `start`; 1 when it is missing or broken, as decoders read it."""
    try:
        values = _ifd(data, start).get(ORIENTATION, ())
    except _Malformed:
        return 1
    return values[0] if len(values) == 1 and 1 <= values[0] <= 8 else 1


@dataclass(frozen=True)
class TiffHeader:
    width: int
    height: int
    orientation: int


def _one(tags: dict[int, tuple[int, ...]], tag: int, default: int | None = None) -> int | None:
    values = tags.get(tag)
    if values is None:
        return default
    if len(values) != 1:
        raise _Malformed(f"tag {tag} has {len(values)} values where one is expected")
    return values[0]


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def _layout(data: bytes | memoryview, tags: dict[int, tuple[int, ...]], width: int, height: int) -> None:
    samples = _one(tags, SAMPLES, 1) or 0
    bits = tags.get(BITS, (1,))
    if not 1 <= samples <= 4 or len(bits) not in (1, samples) or any(b not in (1, 2, 4, 8, 16) for b in bits):
        raise _Malformed(f"it has {samples} samples of {', '.join(map(str, bits))} bits; accepted: 1 to 4 of 1-16")
    if any(kind not in (1, 2) for kind in tags.get(SAMPLE_FORMAT, (1,))):
        raise _Malformed("its samples are not integers")
    compression = _one(tags, COMPRESSION, 1)
    if compression not in COMPRESSIONS:
        raise _Malformed(f"compression {compression} is not one of none, CCITT, LZW, JPEG, Deflate or PackBits")
    if {TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS} & tags.keys():
        tile_w, tile_h = _one(tags, TILE_WIDTH, 0) or 0, _one(tags, TILE_LENGTH, 0) or 0
        if not tile_w or not tile_h or tile_w % 16 or tile_h % 16:
            raise _Malformed(f"its tiles are {tile_w} x {tile_h}, not multiples of 16")
        if tile_w > max(_ceil(width, 16), MAX_TILE_SIDE) or tile_h > max(_ceil(height, 16), MAX_TILE_SIDE):
            raise _Malformed(f"its tiles ({tile_w} x {tile_h}) are larger than the image ({width} x {height})")
        pieces = -(-width // tile_w) * -(-height // tile_h)
        offsets, counts, name = tags.get(TILE_OFFSETS, ()), tags.get(TILE_COUNTS, ()), "tiles"
    else:
        rows = min(_one(tags, ROWS_PER_STRIP, height) or 0, height)
        if rows <= 0:
            raise _Malformed("it has 0 rows per strip")
        pieces = -(-height // rows)
        offsets, counts, name = tags.get(STRIP_OFFSETS, ()), tags.get(STRIP_COUNTS, ()), "strips"
    if _one(tags, PLANAR, 1) == 2:
        pieces *= samples
    if len(offsets) != pieces or len(counts) != pieces:
        raise _Malformed(f"its layout needs {pieces} {name}; it locates {len(offsets)} and sizes {len(counts)}")
    if any(offset + count > len(data) for offset, count in zip(offsets, counts, strict=True)):
        raise _Malformed(f"some of its {name} lie past the end of the data")


def read_header(data: bytes | memoryview, max_pixels: int) -> TiffHeader:
    """Size and orientation of a TIFF whose layout decodes within its size; InvalidImage names what is not.

    The pixel limit is the caller's to check against the size; the layout is checked only for sizes within it
    (`max_pixels`), so a huge claim is refused by that check, not by a walk of its tags.
    """
    try:
        tags = _ifd(data, 0)
        width, height = _one(tags, WIDTH), _one(tags, HEIGHT)
        if not width or not height or width < 0 or height < 0:
            raise _Malformed("it gives no image size")
        if width * height <= max_pixels:
            _layout(data, tags, width, height)
        orientation = _one(tags, ORIENTATION, 1) or 1
    except _Truncated as exc:
        raise InvalidImage("the TIFF header is truncated or corrupt") from exc
    except _Malformed as exc:
        raise InvalidImage(f"the TIFF is not one the gateway decodes: {exc.problem}") from exc
    return TiffHeader(width, height, orientation if 1 <= orientation <= 8 else 1)
