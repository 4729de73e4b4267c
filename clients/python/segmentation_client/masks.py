"""Mask helpers: any returned mask format to numpy, PASCAL colours, and an overlay blend."""

from __future__ import annotations

import numpy as np

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation_client.colormap import PASCAL


def decode_mask(mask: pb.Mask) -> np.ndarray:
    """The class ids of a returned mask as a (height, width) uint8 array, whatever its format."""
    shape = (mask.height, mask.width)
    if mask.format == pb.MASK_FORMAT_RAW:
        return np.frombuffer(mask.data, dtype=np.uint8).reshape(shape)
    if mask.format == pb.MASK_FORMAT_RLE:
        values = np.asarray(mask.rle.values, dtype=np.uint8)
        return np.repeat(values, np.asarray(mask.rle.counts, dtype=np.int64)).reshape(shape)
    if mask.format == pb.MASK_FORMAT_PNG:
        # The palette indices are the class ids; converting to RGB would turn them into colours.
        return _png_palette_indices(mask.data, shape)
    raise ValueError(f"unknown mask format {mask.format}")


def _png_palette_indices(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    import io  # noqa: PLC0415

    # Imported on use: Pillow comes with the `client` extra, and RAW and RLE masks work without it.
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


def blend(image_rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The (h, w, 3) uint8 image, scaled to the mask's size, with every non-background pixel tinted by its class
    colour at `alpha`; background pixels keep the image's colour. The service draws its overlays the same way."""
    height, width = mask.shape
    if image_rgb.shape[:2] != (height, width):
        # Pillow, not OpenCV: the client's only imaging library (bilinear, like the service's overlay).
        from PIL import Image  # noqa: PLC0415

        image_rgb = np.asarray(Image.fromarray(image_rgb).resize((width, height), Image.Resampling.BILINEAR))
    # Rounded, not truncated, like OpenCV's addWeighted in the service (pixels agree within 1).
    tinted = image_rgb * (1.0 - alpha) + PASCAL[mask] * alpha
    tinted = np.clip(np.rint(tinted), 0, 255).astype(np.uint8)
    return np.where((mask > 0)[:, :, None], tinted, image_rgb)
