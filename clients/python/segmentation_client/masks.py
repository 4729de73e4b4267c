"""Mask helpers: any returned mask format to numpy, PASCAL colours, and an overlay blend."""

from __future__ import annotations

import numpy as np

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation_client.colormap import PASCAL

# A mask the client will expand: far above any real one (a 50-megapixel photo), far below exhausting memory.
MAX_MASK_PIXELS = 200_000_000


def decode_mask(mask: pb.Mask) -> np.ndarray:
    """The class ids of a returned mask as a (height, width) uint8 array, whatever its format.

    A mask that does not hold what its header says raises ValueError, before anything large is allocated.
    """
    shape = (mask.height, mask.width)
    if mask.height < 0 or mask.width < 0 or mask.height * mask.width > MAX_MASK_PIXELS:
        raise ValueError(f"the mask claims {mask.width}x{mask.height} pixels")
    if mask.format == pb.MASK_FORMAT_RAW:
        if len(mask.data) != mask.height * mask.width:
            raise ValueError(f"the RAW mask holds {len(mask.data)} bytes; {mask.width}x{mask.height} needs that many")
        return np.frombuffer(mask.data, dtype=np.uint8).reshape(shape)
    if mask.format == pb.MASK_FORMAT_RLE:
        counts = np.asarray(mask.rle.counts, dtype=np.int64)
        if len(mask.rle.values) != counts.size or int(counts.sum()) != mask.height * mask.width:
            raise ValueError(f"the RLE runs do not cover {mask.width}x{mask.height} pixels")
        if any(value > 255 for value in mask.rle.values):
            raise ValueError("the RLE mask holds class ids above 255")
        return np.repeat(np.asarray(mask.rle.values, dtype=np.uint8), counts).reshape(shape)
    if mask.format == pb.MASK_FORMAT_PNG:
        # The palette indices are the class ids; converting to RGB would turn them into colours.
        return _png_palette_indices(mask.data, shape)
    if mask.format == pb.MASK_FORMAT_NONE:
        raise ValueError("the answer holds no mask: it was asked for with MASK_FORMAT_NONE")
    raise ValueError(f"unknown mask format {mask.format}")


def _png_palette_indices(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    import io  # noqa: PLC0415

    # Imported on use: Pillow comes with the `client` extra, and RAW and RLE masks work without it.
    from PIL import Image  # noqa: PLC0415

    try:
        image = Image.open(io.BytesIO(data))
        if image.format != "PNG" or image.mode not in ("P", "L"):
            raise ValueError(f"expected a palette PNG mask, got {image.format} {image.mode}")
        if image.size != (shape[1], shape[0]):
            raise ValueError(f"the PNG mask is {image.size[0]}x{image.size[1]}, its header says {shape[1]}x{shape[0]}")
        out = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, Image.DecompressionBombError, EOFError) as exc:  # Pillow's ways of saying "bad"
        raise ValueError(f"the PNG mask cannot be read: {exc}") from exc
    return out


def decode_probability(found: pb.ProbabilityMap) -> np.ndarray:
    """A class's probability map as (height, width) float32 in [0, 1], from its 8-bit PNG (levels of 1/255)."""
    return _png_palette_indices(found.png, (found.height, found.width)).astype(np.float32) / np.float32(255)


def encode_png(mask: np.ndarray) -> bytes:
    """A palette PNG of a mask (pixel values = class ids, PASCAL colours), as the service writes them."""
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    image = Image.fromarray(mask, mode="P")
    image.putpalette(PASCAL.tobytes())
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


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
