"""The benchmark's input images: mosaics of real photos at their native scale, as a camera's pictures are.

A photo scaled up to 1080p is smooth, and a smooth picture compresses and decodes faster than a camera's: it would
flatter every peer that decodes, the gateway first. So each size is filled with tiles cut from real photos (the
shared ones and scikit-image's sample photos), never resized, row by row in a fixed order, and encoded as JPEG
quality 90. Made at run time; nothing is stored.
"""

from __future__ import annotations

import io
import itertools
import pathlib

import cv2
import numpy as np
import pillow_heif
import skimage.data
from PIL import Image

# Colour photos from a camera (no textures, scans or renderings), in the order they are laid.
SKIMAGE_PHOTOS = ("motorcycle_left.png", "rocket.jpg", "hubble_deep_field.jpg")
SHARED_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")


def photos(shared_images: pathlib.Path) -> list[np.ndarray]:
    """The source photos as BGR arrays, at their own size."""
    # The files that ship inside scikit-image's wheel (its loader functions may fetch others from the network).
    bundled = pathlib.Path(skimage.data.__file__).parent
    paths = [shared_images / name for name in SHARED_PHOTOS] + [bundled / name for name in SKIMAGE_PHOTOS]
    found = []
    for path in paths:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if photo is None:
            raise FileNotFoundError(f"bench photo {path} is missing or unreadable")
        found.append(photo)
    return [found[i] for i in (0, 3, 1, 4, 2, 5)]  # shared and scikit-image photos alternate


def mosaic(sources: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """A width x height BGR image tiled with `sources` at native scale: rows as tall as the shortest photo, each
    tile a crop of a photo (a different band of it row by row), the last of a row or column cut at the edge."""
    band = min(photo.shape[0] for photo in sources)
    canvas = np.empty((height, width, 3), np.uint8)
    cycle = itertools.cycle(sources)
    for row, y in enumerate(range(0, height, band)):
        x = 0
        while x < width:
            photo = next(cycle)
            top = (row * 137) % (photo.shape[0] - band + 1)
            tile = photo[top : top + min(band, height - y), : width - x]
            canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
            x += tile.shape[1]
    return canvas


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the mosaic")
    return data.tobytes()


# What phones send beside JPEG, at the same quality setting: HEIC by libheif (x265) as one image and as a grid of
# 512-pixel tiles (the layout iPhones write, which libheif decodes tile by tile on several threads), AVIF by
# libavif. Kind -> (Pillow's format name, extra save options).
ENCODERS: dict[str, tuple[str, dict[str, object]]] = {
    "JPEG": ("JPEG", {}),
    "HEIC": ("HEIF", {}),
    "HEIC-grid": ("HEIF", {"tile_size": 512}),
    "AVIF": ("AVIF", {}),
}


def encoded(image: np.ndarray, kind: str, quality: int = 90) -> bytes:
    """The BGR image as a `kind` file (a key of ENCODERS)."""
    if kind == "JPEG":
        return jpeg(image, quality)
    pillow_heif.register_heif_opener()  # Pillow's HEIF writer
    image_format, options = ENCODERS[kind]
    out = io.BytesIO()
    Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).save(out, image_format, quality=quality, **options)
    return out.getvalue()
