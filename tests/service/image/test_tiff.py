"""service/image/tiff.py: the TIFF layouts accepted."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from service.config import Limits
from service.image.decode import decode
from service.image.probe import probe
from tests import images


def _tiff(array: np.ndarray, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "TIFF", **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {}),
        ("RGB", {"compression": "tiff_lzw"}),
        ("RGB", {"compression": "tiff_adobe_deflate"}),
        ("RGB", {"compression": "packbits"}),
        ("RGB", {"compression": "jpeg", "quality": 90}),
        ("RGBA", {"compression": "tiff_lzw"}),
        ("L", {}),
        ("I;16", {}),
        ("1", {"compression": "group4"}),
        ("RGB", {"compression": "tiff_lzw", "tile": (64, 64)}),
    ],
    ids=["raw", "lzw", "deflate", "packbits", "jpeg", "rgba-lzw", "gray", "gray16", "bilevel-g4", "tiled-lzw"],
)
def test_the_tiff_layouts_scanners_and_editors_write_are_accepted(mode: str, options: dict[str, object]) -> None:
    rgb = cv2.cvtColor(cv2.resize(images.bgr("coffee.png"), (150, 100)), cv2.COLOR_BGR2RGB)
    array = {
        "RGB": rgb,
        "RGBA": np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]),
        "L": rgb[:, :, 1],
        "I;16": rgb[:, :, 1].astype(np.uint16) * 257,
        "1": rgb[:, :, 1] > 128,
    }[mode]
    tile = options.pop("tile", None)
    if tile:
        # Pillow writes tiles through libtiff's own writer, told by the tag.
        options = {**options, "tiffinfo": {322: tile[0], 323: tile[1]}}
    data = _tiff(array, **options)
    info = probe(data, Limits())
    assert (info.format, info.width, info.height) == ("TIFF", 150, 100)
    decoded = decode(data, info)
    assert decoded.bgr.shape == (100, 150, 3)
