"""Mask helpers: any returned mask format to numpy, PASCAL colours, and an overlay blend."""

from __future__ import annotations

import numpy as np

from segmentation.v1 import segmentation_service_pb2 as pb
from service.colormap import PASCAL
from service.overlay import blend as _service_blend


def decode_mask(mask: pb.Mask) -> np.ndarray:
    """The class ids of a returned mask as a (height, width) uint8 array, whatever its format."""
    shape = (mask.height, mask.width)
    if mask.format == pb.MASK_FORMAT_RAW:
        return np.frombuffer(mask.data, dtype=np.uint8).reshape(shape)
    if mask.format == pb.MASK_FORMAT_RLE:
        values = np.asarray(mask.rle.values, dtype=np.uint8)
        return np.repeat(values, np.asarray(mask.rle.counts, dtype=np.int64)).reshape(shape)
    if mask.format == pb.MASK_FORMAT_PNG:
        # IMREAD_UNCHANGED would expand the palette to colours; the indices are the class ids.
        return _png_palette_indices(mask.data, shape)
    raise ValueError(f"unknown mask format {mask.format}")


def _png_palette_indices(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    image = Image.open(io.BytesIO(data))
    if image.mode not in ("P", "L"):
        raise ValueError(f"expected a palette PNG mask, got mode {image.mode}")
    out = np.asarray(image, dtype=np.uint8)
    if out.shape != shape:
        raise ValueError(f"the PNG mask is {out.shape}, its header says {shape}")
    return out


def colorize(mask: np.ndarray) -> np.ndarray:
    """An (h, w, 3) RGB picture of a mask in the PASCAL VOC colours (background black)."""
    return PASCAL[mask]


# The same blend the service uses for its overlays.
blend = _service_blend
