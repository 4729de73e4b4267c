"""service/mask/encode.py: PNG, RAW and RLE decoded by the client exactly (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation_client.masks import decode_mask
from service.mask.encode import encode_png, encode_raw, run_lengths
from service.mask.grid import MaskGrid, expand
from tests import grids


@settings(max_examples=150, deadline=None)
@given(grids.random_grids())
def test_png_raw_and_rle_round_trip_through_the_client_exactly(grid: MaskGrid) -> None:
    full = expand(grid)
    values, counts = run_lengths(grid)
    encoded = [
        pb.Mask(width=grid.width, height=grid.height, format=pb.MASK_FORMAT_PNG, data=encode_png(grid)),
        pb.Mask(width=grid.width, height=grid.height, format=pb.MASK_FORMAT_RAW, data=encode_raw(grid)),
        pb.Mask(
            width=grid.width,
            height=grid.height,
            format=pb.MASK_FORMAT_RLE,
            rle=pb.RunLengths(values=values.tolist(), counts=counts.tolist()),
        ),
    ]
    for mask in encoded:
        assert np.array_equal(decode_mask(mask), full), pb.MaskFormat.Name(mask.format)
    assert (counts > 0).all() and (values[1:] != values[:-1]).all()
