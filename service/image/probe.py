"""Reading format, size and orientation from an image's header, without decoding a pixel.

The limits are checked here, so a 30000x30000 PNG is refused after reading 24 bytes, not after allocating
gigabytes. Only headers are parsed; anything malformed is InvalidImage.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image import heif

ACCEPTED = "JPEG, PNG, WebP, BMP, TIFF, HEIF (HEIC) or AVIF"


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "JPEG", "PNG", "WebP", "BMP", "TIFF", "HEIF", "AVIF"
    width: int  # as stored, before orientation
    height: int
    orientation: int = 1  # EXIF orientation, 1..8
    # HEIF and AVIF: the container as parsed by the probe, handed to the decoder so it is neither copied nor
    # parsed again.
    container: heif.Container | None = field(default=None, compare=False, repr=False)

    @property
    def transposed(self) -> bool:
        """Orientations 5-8 swap width and height."""
        return self.orientation >= 5

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) once the orientation is applied."""
        return (self.height, self.width) if self.transposed else (self.width, self.height)


class _Truncated(Exception):
    pass


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    if offset < 0 or offset + struct.calcsize(fmt) > len(data):
        raise _Truncated
    return struct.unpack_from(fmt, data, offset)


def _tiff_tags(data: bytes, start: int, wanted: set[int]) -> dict[int, int]:
    """Integer values of the wanted tags in the first IFD of a TIFF structure starting at `start`."""
    order = data[start : start + 2]
    if order not in (b"II", b"MM"):
        raise _Truncated
    endian = "<" if order == b"II" else ">"
    (ifd,) = _unpack(endian + "I", data, start + 4)
    (count,) = _unpack(endian + "H", data, start + ifd)
    found: dict[int, int] = {}
    for i in range(min(count, 512)):
        entry = start + ifd + 2 + 12 * i
        tag, kind = _unpack(endian + "HH", data, entry)
        if tag in wanted:
            if kind == 3:  # SHORT
                found[tag] = _unpack(endian + "H", data, entry + 8)[0]
            elif kind == 4:  # LONG
                found[tag] = _unpack(endian + "I", data, entry + 8)[0]
    return found


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> ImageInfo:
    offset = 2
    orientation = 1
    while True:
        if data[offset : offset + 1] != b"\xff":
            raise _Truncated
        while data[offset : offset + 1] == b"\xff":  # fill bytes
            offset += 1
        (marker,) = _unpack("B", data, offset)
        offset += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            raise _Truncated
        (length,) = _unpack(">H", data, offset)
        if length < 2:
            raise _Truncated
        if marker == 0xE1 and data[offset + 2 : offset + 8] == b"Exif\x00\x00":
            try:
                orientation = _tiff_tags(data[: offset + length], offset + 8, {0x0112}).get(0x0112, 1)
            except _Truncated:
                orientation = 1  # broken EXIF is common and harmless: decoders ignore it too
        if marker in _SOF_MARKERS:
            height, width = _unpack(">HH", data, offset + 3)
            return ImageInfo("JPEG", width, height, orientation if 1 <= orientation <= 8 else 1)
        offset += length


def _png(data: bytes) -> ImageInfo:
    if data[12:16] != b"IHDR":
        raise _Truncated
    width, height = _unpack(">II", data, 16)
    return ImageInfo("PNG", width, height)


_PNG_CHUNK_HEAD = struct.Struct(">I4s")
# Far more than any encoder writes (libpng: 8 KiB IDATs, about 2,500 in a 20 MiB file), far fewer than the
# 12-byte chunks a max_image_bytes file could hold, which would take seconds to walk.
MAX_PNG_CHUNKS = 100_000


def _png_chunks_fit(data: bytes) -> None:
    """Refuses a PNG whose chunks claim more bytes than were sent.

    OpenCV's PNG reader allocates what a chunk's length field declares before reading it, so 92 bytes claiming a
    4 GiB IDAT cost 4 GiB of memory (found by fuzzing). A chunk that overruns the data is truncation or corruption
    either way, so it is refused before decoding; every allocation is then bounded by the bytes received.
    """
    offset, end = 8, len(data)
    for _ in range(MAX_PNG_CHUNKS):
        if offset + 12 > end:
            break  # a few stray bytes after the last complete chunk; the decoder judges those
        length, kind = _PNG_CHUNK_HEAD.unpack_from(data, offset)
        if length > end - offset - 12:
            name = kind.decode("latin-1") if kind.isalpha() else kind.hex()
            raise InvalidImage(
                f"the PNG is truncated or corrupt: chunk {name!r} at byte {offset} declares {length} bytes, "
                f"only {end - offset - 12} follow"
            )
        if kind == b"IEND":
            return
        offset += 12 + length
    else:
        raise InvalidImage(f"the PNG has more than {MAX_PNG_CHUNKS} chunks; no encoder writes that many")


def _webp(data: bytes) -> ImageInfo:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _Truncated
        width, height = _unpack("<HH", data, 26)
        return ImageInfo("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        if data[20:21] != b"\x2f":
            raise _Truncated
        (bits,) = _unpack("<I", data, 21)
        return ImageInfo("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        w = _unpack("<I", bytes(data[24:27]) + b"\x00", 0)[0] + 1
        h = _unpack("<I", bytes(data[27:30]) + b"\x00", 0)[0] + 1
        return ImageInfo("WebP", w, h)
    raise _Truncated


def _bmp(data: bytes) -> ImageInfo:
    (header_size,) = _unpack("<I", data, 14)
    if header_size == 12:
        width, height = _unpack("<hh", data, 18)
    else:
        width, height = _unpack("<ii", data, 18)
    return ImageInfo("BMP", abs(width), abs(height))


def _tiff(data: bytes) -> ImageInfo:
    tags = _tiff_tags(data, 0, {256, 257, 274})
    if 256 not in tags or 257 not in tags:
        raise _Truncated
    orientation = tags.get(274, 1)
    return ImageInfo("TIFF", tags[256], tags[257], orientation if 1 <= orientation <= 8 else 1)


_UNSUPPORTED = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
)


def detect_format(data: bytes | memoryview) -> str:
    """The format named by the magic bytes; InvalidImage for anything not accepted."""
    if not data:
        raise InvalidImage(f"the image is empty; send the bytes of a {ACCEPTED} file")
    head = bytes(data[:16])  # every magic is in the first 12 bytes
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            raise InvalidImage(f"unsupported image format {name}; accepted: {ACCEPTED}")
    if head[4:8] == b"ftyp":
        iso_format = heif.iso_media_format(bytes(data[:64]))
        if iso_format:
            return iso_format
        brand = head[8:12].decode("ascii", "replace").strip()
        raise InvalidImage(f"unsupported image format (ISO media, brand {brand!r}); accepted: {ACCEPTED}")
    raise InvalidImage(f"not an image: the data does not start like a {ACCEPTED} file (first bytes {head[:8].hex()})")


def _iso_media(image_format: str) -> Callable[[bytes], ImageInfo]:
    def parse(data: bytes) -> ImageInfo:
        container = heif.read_container(data, image_format)
        # The size with the container's transforms applied: the image as shown, so orientation 1.
        return ImageInfo(image_format, *container.oriented_size, container=container)

    return parse


_PARSERS = {
    "JPEG": _jpeg,
    "PNG": _png,
    "WebP": _webp,
    "BMP": _bmp,
    "TIFF": _tiff,
    "HEIF": _iso_media("HEIF"),
    "AVIF": _iso_media("AVIF"),
}


def probe(data: bytes | memoryview, limits: Limits) -> ImageInfo:
    """Format, size and orientation from the header; refuses what is over the limits before any decoding."""
    if len(data) > limits.max_image_bytes:
        raise LimitExceeded(
            f"the image is {len(data)} bytes, over the limit of max_image_bytes={limits.max_image_bytes}"
        )
    image_format = detect_format(data)
    try:
        info = _PARSERS[image_format](data)
    except (_Truncated, struct.error, IndexError) as exc:
        raise InvalidImage(f"the {image_format} header is truncated or corrupt") from exc
    if info.width <= 0 or info.height <= 0:
        raise InvalidImage(f"the {image_format} header gives an empty size {info.width}x{info.height}")
    pixels = info.width * info.height
    if pixels > limits.max_image_pixels:
        raise LimitExceeded(
            f"the image is {info.width}x{info.height} = {pixels} pixels, over the limit of "
            f"max_image_pixels={limits.max_image_pixels}"
        )
    if image_format == "PNG":
        _png_chunks_fit(data)
    if info.container is not None:
        for width, height in heif.coded_sizes(info.container.data):
            if width * height > limits.max_image_pixels:
                raise LimitExceeded(
                    f"the {image_format} file codes an image of {width}x{height} = {width * height} pixels, over the "
                    f"limit of max_image_pixels={limits.max_image_pixels}"
                )
    return info
