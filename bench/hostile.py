"""Image files made to hurt a decoder, for the soak's mix and the abuse bench's `hostile` shape: not images at all, cut
short, claiming a size far past the limits, their boxes or coded data overwritten; and requests that ask too much of
the outputs: a noise photo's regions with every outline point, absurd tolerances, too many probability maps, a 4K
cut-out and one past max_cutout_pixels. Each comes with the status codes a gateway may answer it with: a decoder
given scrambled coded data may well draw a picture of noise, which is an answer too; anything else (a crash,
INTERNAL, a hang until the deadline) is not.

Made from a photo's pixels at run time; the same seed makes the same files.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from bench import photos
from segmentation.v1 import segmentation_service_pb2 as pb

OK = frozenset({"OK"})
INVALID = frozenset({"INVALID_ARGUMENT"})
NOISE_OR_INVALID = frozenset({"OK", "INVALID_ARGUMENT"})


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    codes: frozenset[str]  # the status code names a gateway may answer with
    options: Mapping[str, object] = field(default_factory=dict)  # the request's fields besides the image

    def request(self) -> pb.SegmentImageRequest:
        return pb.SegmentImageRequest(image=self.data, **self.options)  # type: ignore[arg-type]


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
    return made + asking_too_much(bgr, seed)


def asking_too_much(bgr: np.ndarray, seed: int = 7) -> list[Sample]:
    """Requests whose outputs cost the most: each answered within its limits, or refused naming the limit."""
    noise = np.random.default_rng(seed).integers(0, 256, size=(1080, 1920, 3), dtype=np.uint8)
    noise_jpeg = photos.encoded(noise, "JPEG")
    jpeg = photos.encoded(bgr, "JPEG")
    every_point = pb.RegionOptions(include_polygons=True, polygon_tolerance=0, include_coco_rle=True)
    # JPEG and alpha: the 4K decode, alpha and encode of the PNG's, in a sixth of its bytes (tests/gateway/
    # test_cutouts.py streams 4K PNGs).
    soft_4k = pb.CutoutOptions(edge=pb.CUTOUT_EDGE_SOFT, format=pb.CUTOUT_FORMAT_JPEG_AND_ALPHA)
    return [
        # Its regions may pass max_regions or max_polygon_points: refused, naming the limit.
        Sample("noise-regions-every-point", noise_jpeg, NOISE_OR_INVALID, {"regions": every_point}),
        Sample("tolerance-1e308", jpeg, INVALID, {"regions": pb.RegionOptions(polygon_tolerance=1e308)}),
        Sample("tolerance-nan", jpeg, INVALID, {"regions": pb.RegionOptions(polygon_tolerance=float("nan"))}),
        Sample("five-probability-maps", jpeg, INVALID, {"probability_classes": ["0", "1", "2", "3", "4"]}),
        Sample("cutout-4k-soft", photos.encoded(cv2.resize(bgr, (3840, 2160)), "JPEG"), OK, {"cutout": soft_4k}),
        Sample(
            "cutout-20-megapixels",
            photos.encoded(cv2.resize(bgr, (5000, 4000)), "JPEG"),
            INVALID,
            {"cutout": pb.CutoutOptions()},
        ),
    ]


# Files whose headers lie about the size they decode to (docs/reliability.md, "Security"): each is refused by a
# gateway that bounds its decoders by max_image_pixels; one that believes the header decodes (or allocates) far
# more than it checked.

_SHORT, _LONG = 3, 4


def tiff(entries: list[tuple[int, int, list[int]]], data: bytes) -> bytes:
    """A little-endian TIFF of one directory with `entries` (tag, type, values) in the order given, duplicates
    kept, after `data` at offset 8 (an entry's value -1 stands for that offset)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00") + data
    if len(out) % 2:
        out += b"\x00"
    extra: dict[int, int] = {}
    for i, (_, kind, values) in enumerate(entries):
        if len(values) * (2 if kind == _SHORT else 4) > 4:
            extra[i] = len(out)
            out += b"".join(struct.pack("<H" if kind == _SHORT else "<I", 8 if v == -1 else v) for v in values)
    struct.pack_into("<I", out, 4, len(out))
    out += struct.pack("<H", len(entries))
    for i, (tag, kind, values) in enumerate(entries):
        if i in extra:
            out += struct.pack("<HHII", tag, kind, len(values), extra[i])
        else:
            packed = b"".join(struct.pack("<H" if kind == _SHORT else "<I", 8 if v == -1 else v) for v in values)
            out += struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\x00")
    return bytes(out + b"\x00\x00\x00\x00")


def _zeros_deflated(size: int) -> bytes:
    """zlib's compression of `size` zero bytes, made a mebibyte at a time."""
    compressor, chunk = zlib.compressobj(9), bytes(1 << 20)
    parts = [compressor.compress(chunk[: min(len(chunk), size - done)]) for done in range(0, size, len(chunk))]
    return b"".join(parts) + compressor.flush()


def tiff_with_huge_tiles(tile_width: int = 8192, tile_height: int = 6144) -> bytes:
    """A 16 x 16 RGB TIFF in one Deflate tile of tile_width x tile_height: libtiff decodes the whole tile."""
    data = _zeros_deflated(tile_width * tile_height * 3)
    return tiff(
        [
            (256, _LONG, [16]),
            (257, _LONG, [16]),
            (258, _SHORT, [8, 8, 8]),
            (259, _SHORT, [8]),
            (262, _SHORT, [2]),
            (277, _SHORT, [3]),
            (284, _SHORT, [1]),
            (322, _LONG, [tile_width]),
            (323, _LONG, [tile_height]),
            (324, _LONG, [-1]),
            (325, _LONG, [len(data)]),
        ],
        data,
    )


def tiff_with_two_sizes(width: int = 6000, height: int = 6000) -> bytes:
    """A TIFF whose size tags appear twice: width x height first (what libtiff reads), 16 x 16 last (what a reader
    that keeps the last value sees)."""
    data = _zeros_deflated(width * height * 3)
    return tiff(
        [
            (256, _LONG, [width]),
            (256, _LONG, [16]),
            (257, _LONG, [height]),
            (257, _LONG, [16]),
            (258, _SHORT, [8, 8, 8]),
            (259, _SHORT, [8]),
            (262, _SHORT, [2]),
            (273, _LONG, [-1]),
            (277, _SHORT, [3]),
            (278, _LONG, [height]),
            (279, _LONG, [len(data)]),
        ],
        data,
    )


def avif_claiming_less(side: int = 4000, claimed: int = 100) -> bytes:
    """An AVIF of a side x side frame whose container claims claimed x claimed: libavif decodes the frame whole,
    then scales it to the claim."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (128, 96, 64)).save(out, "AVIF", quality=30, speed=10)
    return iso_media_claiming(out.getvalue(), claimed, claimed)


def heic_claiming_less(width: int = 1024, height: int = 768) -> bytes:
    """A HEIC of width x height whose container claims a quarter of each side."""
    flat = np.full((height, width, 3), 128, np.uint8)
    return iso_media_claiming(photos.encoded(flat, "HEIC", quality=30), width // 4, height // 4)


def jpeg_with_many_scans(bgr: np.ndarray, scans: int = 20_000) -> bytes:
    """A progressive JPEG followed by `scans` scans of a few bytes each: libjpeg runs each over the whole image."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=80, progressive=True)
    data = buffer.getvalue()
    # An AC refinement scan of the first component (Ss=1, Se=63, Ah=1, Al=0) with four bytes of data.
    scan = b"\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x10" + b"\x00" * 4
    return data[:-2] + scan * scans + data[-2:]


def webp_claiming_less(side: int = 4000) -> bytes:
    """A lossless WebP of side x side inside a VP8X header whose canvas claims 16 x 16."""
    striped = np.zeros((side, side, 3), np.uint8)
    striped[::50] = 255
    encoded = cv2.imencode(".webp", striped, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    length = struct.unpack_from("<I", encoded, 16)[0]
    bitstream = encoded[20 : 20 + length]

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return tag + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")

    canvas = chunk(b"VP8X", bytes(4) + (15).to_bytes(3, "little") + (15).to_bytes(3, "little"))
    body = b"WEBP" + canvas + chunk(b"VP8L", bitstream)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def png_with_two_headers() -> bytes:
    """A PNG whose first IHDR says 16 x 16 and a second one 4000 x 4000, with 4000 x 4000's pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    rows = _zeros_deflated((4000 * 3 + 1) * 4000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


def lying(bgr: np.ndarray) -> list[Sample]:
    """The files whose headers lie about their size, made from one photo where a photo is needed."""
    return [
        Sample("tiff-16x16-in-8192x6144-tiles", tiff_with_huge_tiles(), INVALID),
        Sample("tiff-6000x6000-then-16x16-tags", tiff_with_two_sizes(), INVALID),
        Sample("avif-claiming-100x100-over-4000x4000", avif_claiming_less(), INVALID),
        Sample("heic-claiming-256x192-over-1024x768", heic_claiming_less(), INVALID),
        Sample("jpeg-with-20000-scans", jpeg_with_many_scans(bgr), INVALID),
        Sample("webp-claiming-16x16-over-4000x4000", webp_claiming_less(), INVALID),
        Sample("png-16x16-then-4000x4000-header", png_with_two_headers(), INVALID),
    ]
