"""Images derived at test time from the shared photos: formats, layouts, orientations, sizes, bad inputs."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

import cv2
import numpy as np
from PIL import Image

from tests.paths import IMAGES


@cache
def bgr(name: str) -> np.ndarray:
    image = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


def rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def encode(image: np.ndarray, ext: str, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok, ext
    return data.tobytes()


def jpeg(name: str, quality: int = 90) -> bytes:
    return encode(bgr(name), ".jpg", cv2.IMWRITE_JPEG_QUALITY, quality)


def png(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def webp(name: str) -> bytes:
    return encode(bgr(name), ".webp", cv2.IMWRITE_WEBP_QUALITY, 90)


def exif_segment(orientation: int) -> bytes:
    """A JPEG APP1 segment with a big-endian EXIF block holding only the orientation tag."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_orientation(jpeg_bytes: bytes, orientation: int) -> bytes:
    return jpeg_bytes[:2] + exif_segment(orientation) + jpeg_bytes[2:]


def grayscale_png(name: str) -> bytes:
    return encode(cv2.cvtColor(bgr(name), cv2.COLOR_BGR2GRAY), ".png")


def rgba_png(name: str) -> bytes:
    image = cv2.cvtColor(bgr(name), cv2.COLOR_BGR2BGRA)
    image[:, :, 3] = 200
    return encode(image, ".png")


def png16(name: str) -> bytes:
    return encode(bgr(name).astype(np.uint16) * 257, ".png")


def cmyk_jpeg(name: str) -> bytes:
    rgb = cv2.cvtColor(bgr(name), cv2.COLOR_BGR2RGB)
    out = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(out, format="JPEG", quality=90)
    return out.getvalue()


def palette_png(name: str) -> bytes:
    rgb = cv2.cvtColor(bgr(name), cv2.COLOR_BGR2RGB)
    out = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(out, format="PNG")
    return out.getvalue()


def large_jpeg(name: str, width: int, height: int) -> bytes:
    return encode(cv2.resize(bgr(name), (width, height), interpolation=cv2.INTER_LINEAR), ".jpg")


def tiny_png() -> bytes:
    return encode(bgr("chelsea.png")[:1, :1], ".png")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG start that claims a huge size, with a tiny IDAT."""
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


def jpeg_header_claiming(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + b"\x00" * 32 + b"\xff\xd9"


def webp_header_claiming(width: int, height: int) -> bytes:
    body = b"WEBPVP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gif() -> bytes:
    out = io.BytesIO()
    Image.fromarray(cv2.cvtColor(bgr("chelsea.png"), cv2.COLOR_BGR2RGB)).save(out, format="GIF")
    return out.getvalue()


def decode_png_indices(data: bytes) -> np.ndarray:
    """Class ids of a palette PNG, read without palette expansion (Pillow, independent of the service)."""
    image = Image.open(io.BytesIO(data))
    assert image.mode == "P", image.mode
    return np.array(image)


def _exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def heic(name: str, orientation: int = 1, bits: int = 8, tile: int = 0) -> bytes:
    """HEIC of a shared photo (see heic_of)."""
    return heic_of(rgb(name), orientation, bits, tile)


def heic_of(pixels: np.ndarray, orientation: int = 1, bits: int = 8, tile: int = 0) -> bytes:
    """HEIC of RGB pixels, written by libheif (pillow-heif): with an EXIF orientation, libheif also writes the
    container's rotation and mirroring (irot, imir) for it; 10 or 12 bits; a grid of `tile`-pixel tiles."""
    import pillow_heif  # noqa: PLC0415

    size = (pixels.shape[1], pixels.shape[0])
    if bits > 8:
        image = pillow_heif.from_bytes("RGB;16", size, (pixels.astype(np.uint16) << 8).tobytes())
    else:
        image = pillow_heif.from_bytes("RGB", size, np.ascontiguousarray(pixels).tobytes())
    # x265's fastest search: the same format, written in a fifth of the time.
    options: dict[str, object] = {"quality": 90, "enc_params": {"preset": "ultrafast"}}
    if orientation != 1:
        options["exif"] = _exif_orientation(orientation)
    if bits == 12:
        options["bit_depth"] = 12
    if tile:
        options["tile_size"] = tile
    out = io.BytesIO()
    image.save(out, **options)
    return out.getvalue()


def avif(name: str, orientation: int = 1) -> bytes:
    """AVIF of a shared photo (see avif_of)."""
    return avif_of(rgb(name), orientation)


def avif_of(pixels: np.ndarray, orientation: int = 1) -> bytes:
    """AVIF of RGB pixels, written by Pillow (libavif), which writes irot/imir for an EXIF orientation."""
    out = io.BytesIO()
    exif = _exif_orientation(orientation) if orientation != 1 else b""
    # speed 10: libavif's fastest encoder settings, the same format.
    Image.fromarray(pixels).save(out, format="AVIF", quality=90, speed=10, exif=exif)
    return out.getvalue()


# An EXIF orientation's transform of the upright image (what a viewer shows).
ORIENTED = {
    1: lambda a: a,
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: cv2.transpose,
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}

# The formats phones write, each by its encoder: name as probe() reports it -> maker of a shared photo.
PHONE_FORMATS = {"HEIF": heic, "AVIF": avif}
