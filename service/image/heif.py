"""HEIF (HEIC) and AVIF, the ISO media image formats phones send: their header read, and their primary image decoded
to 8-bit BGR as a viewer shows it.

libheif (pillow-heif) reads the container of both: the primary image's size with the container's rotation and
mirroring (irot, imir) and cropping applied, without decoding a pixel. It decodes HEIF itself, grids assembled,
those transforms applied once (an EXIF orientation inside is not applied again: the container's transforms are
the image's orientation), 10 and 12 bits reduced to 8. The pillow-heif wheel has no AV1 decoder, so AVIF pixels
come from Pillow's own AVIF plugin (libavif), which leaves the container's transforms to the EXIF orientation it
reports; they are applied from there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from service.errors import InvalidImage, LimitExceeded
from service.image import av1, iso_boxes

# ISO base media `ftyp` brands, the major one or a compatible one (a codec-neutral major brand such as mif1 names
# the codec among its compatible brands).
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
AVIF_BRANDS = {b"avif", b"avis"}
# The exceptions pillow-heif and Pillow raise for data they cannot read (libheif's errors become ValueError,
# EOFError, SyntaxError or RuntimeError).
_UNREADABLE = (ValueError, EOFError, SyntaxError, RuntimeError, OSError)


def iso_media_format(head: bytes) -> str | None:
    """ "HEIF" or "AVIF" for an ISO media file's first bytes (its `ftyp` box), else None."""
    if head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    # Compatible brands follow the minor version, four bytes each, to the end of the box.
    compatible = [head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
    for brand in (major, *compatible):
        if brand in AVIF_BRANDS:
            return "AVIF"
        if brand in HEIF_BRANDS:
            return "HEIF"
    return None


def coded_sizes(data: bytes) -> list[tuple[int, int]]:
    """(width, height) of every image the container codes (its `ispe` properties), before any cropping: what
    decoding allocates, which the cropped size libheif reports may hide."""
    return iso_boxes.coded_sizes(data)


def av1_frames_fit(data: bytes, max_pixels: int) -> None:
    """Refuses an AVIF whose AV1 frames may be larger than `max_pixels`, or than the size its container gives
    them: libavif decodes the whole frame whatever the container says, then scales it (service/image/av1.py)."""
    try:
        items = [item for item in iso_boxes.read_items(data) if item.type == b"av01"]
    except iso_boxes.BoxError as exc:
        raise InvalidImage(f"the AVIF file's item boxes cannot be read: {exc}") from exc
    for item in items:
        if not item.extents or any(start + length > len(data) for start, length in item.extents):
            raise InvalidImage(f"the AVIF file is truncated: image item {item.id}'s data is not all there")
        payload = b"".join(data[start : start + length] for start, length in item.extents)
        try:
            headers = av1.sequence_headers(payload, 0, len(payload))
        except av1.Av1Error as exc:
            raise InvalidImage(f"the AVIF file's image item {item.id} is not an AV1 bitstream: {exc}") from exc
        if not headers:
            raise InvalidImage(f"the AVIF file's image item {item.id} has no AV1 sequence header")
        for header in headers:
            if header.largest_frame > max_pixels:
                raise LimitExceeded(
                    f"the AVIF file codes frames of up to {header.largest_frame} pixels, over the limit of "
                    f"max_image_pixels={max_pixels}"
                )
            frame = (header.max_width, header.max_height)
            if item.sizes and frame not in item.sizes:
                (width, height), *_ = item.sizes
                raise InvalidImage(
                    f"the AVIF file's container says its image is {width}x{height}, its AV1 frames are "
                    f"{frame[0]}x{frame[1]}"
                )


@dataclass(frozen=True)
class Container:
    """An ISO media file read once: its bytes (the one copy made of a request's buffer) and libheif's parse of its
    boxes, which the decoder reuses."""

    format: str  # "HEIF" or "AVIF"
    data: bytes
    heif_file: pillow_heif.HeifFile

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) of the primary image as a viewer shows it: libheif applies irot, imir and clap."""
        width, height = self.heif_file.size
        return width, height


def read_container(data: bytes | memoryview, image_format: str) -> Container:
    """The container's boxes parsed, no pixel decoded."""
    whole = bytes(data)
    try:
        heif_file = pillow_heif.open_heif(whole, convert_hdr_to_8bit=True, bgr_mode=True)
    except _UNREADABLE as exc:
        raise InvalidImage(f"the {image_format} file is truncated or corrupt: {exc}") from exc
    return Container(image_format, whole, heif_file)


def decode(container: Container) -> np.ndarray:
    """The primary image as (h, w, 3) uint8 BGR, oriented; alpha dropped, gray made BGR, deep colour made 8-bit."""
    image_format = container.format
    try:
        if image_format == "AVIF":
            # BytesIO shares the bytes it is given, and hands them back whole to the plugin: no copy.
            with Image.open(io.BytesIO(container.data), formats=["AVIF"]) as image:
                rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        pixels = np.asarray(container.heif_file)
    except UnidentifiedImageError as exc:  # Pillow's words name its file object, not the problem
        raise InvalidImage(f"the {image_format} image could not be decoded (truncated or corrupt data)") from exc
    except _UNREADABLE as exc:
        raise InvalidImage(f"the {image_format} image could not be decoded: {exc}") from exc
    if pixels.ndim == 2:  # gray, which stays gray (and 16-bit when deeper than 8) whatever was asked
        gray = (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(pixels[:, :, :3])
