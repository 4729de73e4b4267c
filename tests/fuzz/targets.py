"""Fuzz targets: the header probe, the decoder, the probe's sizes against the decoders', the request reader, and the
client's mask decoders, on any bytes.

Each target accepts any bytes and may only refuse them the documented way (the gateway's InvalidImage or
LimitExceeded, the client's ValueError); anything else that escapes — another exception, a crash, a hang, an
allocation out of proportion — is a bug. Used by atheris (python -m tests.fuzz) and replayed on the kept cases
in tests/fuzz/regressions/ by the test suite.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np
from google.protobuf.message import DecodeError

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation_client.masks import decode_mask
from service.api.requests import read_segment_request, read_stream_item
from service.config import Limits
from service.errors import InvalidImage, LimitExceeded
from service.image import heif
from service.image.decode import ISO_MEDIA, decode
from service.image.probe import probe
from service.image.resize import longest_side_size

T = TypeVar("T")

# Small enough that a decode stays fast under fuzzing; the limits themselves are part of what is tested.
LIMITS = Limits(max_image_bytes=1 << 20, max_image_pixels=4_000_000)


def probe_target(data: bytes) -> None:
    try:
        info = probe(data, LIMITS)
    except (InvalidImage, LimitExceeded):
        return
    assert info.width > 0 and info.height > 0 and info.width * info.height <= LIMITS.max_image_pixels
    assert 1 <= info.orientation <= 8
    assert probe(memoryview(data), LIMITS) == info  # as the gateway probes a request's image


def decode_target(data: bytes) -> None:
    try:
        info = probe(data, LIMITS)
        # Every pixel, as the shipped profiles decode, or reduced, as the `decode = "reduced"` option does.
        target = longest_side_size(*info.oriented_size, 257) if data[-1:] in (b"\x00", b"\xff") else None
        decoded = decode(data, info, target)
    except (InvalidImage, LimitExceeded):
        return
    assert decoded.bgr.ndim == 3 and decoded.bgr.shape[2] == 3 and decoded.bgr.dtype.name == "uint8"


def sizes_target(data: bytes) -> None:
    """No decoder makes more of a file than the probe checked against the limits: the size its header gives, and
    for HEIF and AVIF every size the container codes. The decoders are called bare, without decode()'s own check of
    the two sizes after the fact (which also refuses a file that decodes to less or to another shape: harmless for
    memory, but not the image its header describes)."""
    try:
        info = probe(data, LIMITS)
    except (InvalidImage, LimitExceeded):
        return
    try:
        if info.format in ISO_MEDIA:
            assert info.container is not None
            pixels = heif.decode(info.container)
        else:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except (InvalidImage, cv2.error):
        return
    if pixels is None or pixels.size == 0:
        return
    decoded = (pixels.shape[1], pixels.shape[0])
    checked = [(info.width, info.height), *(heif.coded_sizes(info.container.data) if info.container else ())]
    fits = any(max(decoded) <= max(size) and min(decoded) <= min(size) for size in checked)
    assert fits, f"{info.format}: the probe checked {checked}, the decoder made {decoded}"


def mask_from_bytes(data: bytes) -> pb.Mask:
    """A Mask message built from bytes: format, width and height, then the payload (RLE: value, count pairs)."""
    if len(data) < 5:
        return pb.Mask()
    kind, width, height = data[0] % 4, *struct.unpack_from("<HH", data, 1)
    mask = pb.Mask(width=width % 1024, height=height % 1024, format=kind)
    payload = data[5:]
    if kind == pb.MASK_FORMAT_RLE:
        for i in range(0, len(payload) - 4, 5):
            value, count = struct.unpack_from("<BI", payload, i)
            mask.rle.values.append(value)
            mask.rle.counts.append(count)
    else:
        mask.data = payload
    return mask


def mask_target(data: bytes) -> None:
    mask = mask_from_bytes(data)
    try:
        array = decode_mask(mask)
    except ValueError:
        return
    assert array.shape == (mask.height, mask.width) and array.dtype.name == "uint8"


def _read(reader: Callable[[bytes], T], data: bytes) -> T | None:
    """What `reader` reads from `data`, or None where it refuses it as protobuf refuses a message."""
    try:
        return reader(data)
    except DecodeError:
        return None


def request_target(data: bytes) -> None:
    """The gateway's request readers (api/requests.py) read what protobuf reads, and refuse what it refuses."""
    whole, found = _read(pb.SegmentImageRequest.FromString, data), _read(read_segment_request, data)
    assert (whole is None) == (found is None), f"protobuf read {whole!r}, the reader {found!r}"
    if whole is not None and found is not None:
        image = whole.image
        whole.ClearField("image")
        assert bytes(found.image) == image and found.fields == whole
    item, found_item = _read(pb.SegmentImageStreamRequest.FromString, data), _read(read_stream_item, data)
    assert (item is None) == (found_item is None), f"protobuf read {item!r}, the reader {found_item!r}"
    if item is not None and found_item is not None:
        assert bytes(found_item.request.image) == item.request.image and found_item.id == item.id


TARGETS: dict[str, Callable[[bytes], None]] = {
    "probe": probe_target,
    "decode": decode_target,
    "mask": mask_target,
    "request": request_target,
    "sizes": sizes_target,
}
