"""Reading format, size and orientation from an image's header, without decoding a pixel.

The limits are checked here, so a 30000x30000 PNG is refused after reading 24 bytes, not after allocating
gigabytes. Only headers are parsed; anything malformed is InvalidImage.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image import heif, tiff

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
            orientation = tiff.exif_orientation(data[: offset + length], offset + 8)
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


# A progressive JPEG has about ten scans; libjpeg decodes each over the whole image, so thousands of tiny scans
# cost seconds of CPU per file (a 666 KB file with 20,000 scans: 20 s).
MAX_JPEG_SCANS = 100


def _jpeg_scans_fit(data: bytes | memoryview) -> None:
    """Counts the start-of-scan markers (0xFF 0xDA). Entropy-coded data escapes every 0xFF byte, so this counts a
    JPEG's scans (and any in its metadata, such as an EXIF thumbnail's): an upper bound on them. NumPy finds the
    0xDA bytes and checks the byte before each: half the time of a regular expression over a 1080p photo."""
    values = np.frombuffer(data, dtype=np.uint8)
    marked = np.flatnonzero(values[1:] == 0xDA)
    if np.count_nonzero(values[marked] == 0xFF) > MAX_JPEG_SCANS:
        raise InvalidImage(f"the JPEG has more than {MAX_JPEG_SCANS} scans; no encoder writes that many")


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


def _iso_media(image_format: str) -> Callable[[bytes, Limits], ImageInfo]:
    def parse(data: bytes, _: Limits) -> ImageInfo:
        container = heif.read_container(data, image_format)
        # The size with the container's transforms applied: the image as shown, so orientation 1.
        return ImageInfo(image_format, *container.oriented_size, container=container)

    return parse


def _tiff(data: bytes, limits: Limits) -> ImageInfo:
    header = tiff.read_header(data, limits.max_image_pixels)
    return ImageInfo("TIFF", header.width, header.height, header.orientation)


_PARSERS: dict[str, Callable[[bytes, Limits], ImageInfo]] = {
    "JPEG": lambda data, _: _jpeg(data),
    "PNG": lambda data, _: _png(data),
    "WebP": lambda data, _: _webp(data),
    "BMP": lambda data, _: _bmp(data),
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
        info = _PARSERS[image_format](data, limits)
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
    if image_format == "JPEG":
        _jpeg_scans_fit(data)
    if info.container is not None:
        for width, height in heif.coded_sizes(info.container.data):
            if width * height > limits.max_image_pixels:
                raise LimitExceeded(
                    f"the {image_format} file codes an image of {width}x{height} = {width * height} pixels, over the "
                    f"limit of max_image_pixels={limits.max_image_pixels}"
                )
        if image_format == "AVIF":
            heif.av1_frames_fit(info.container.data, limits.max_image_pixels)
    return info
