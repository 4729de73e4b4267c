"""Properties over random masks and sizes (hypothesis): what the gateway encodes, the client decodes, exactly;
the model-size mask maps to any size by nearest pixel centre; statistics match a brute-force count."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation.v1 import segmentation_service_pb2 as pb
from segmentation_client.masks import decode_mask
from service.mask.encode import encode_png, encode_raw, run_lengths
from service.mask.grid import MaskGrid, expand, grid_for, repeats
from service.mask.statistics import class_statistics

small_masks = st.integers(1, 24).flatmap(
    lambda h: st.integers(1, 24).flatmap(
        lambda w: arrays(np.uint8, (h, w), elements=st.sampled_from([0, 0, 0, 8, 15, 255]))
    )
)
sizes = st.integers(1, 80)


def grids() -> st.SearchStrategy[MaskGrid]:
    return st.builds(grid_for, small_masks, sizes, sizes)


@settings(max_examples=150, deadline=None)
@given(grids())
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


@settings(max_examples=200, deadline=None)
@given(small_masks, sizes, sizes)
def test_the_model_size_mask_maps_to_any_size_by_nearest_pixel_centre(
    small: np.ndarray, width: int, height: int
) -> None:
    grid = grid_for(small, width, height)
    h, w = small.shape
    assert repeats(h, height).sum() == height and repeats(w, width).sum() == width
    full = expand(grid)
    assert full.shape == (height, width)
    # Output pixel (y, x) takes the source pixel whose area holds its centre.
    rows = ((2 * np.arange(height) + 1) * h) // (2 * height)
    cols = ((2 * np.arange(width) + 1) * w) // (2 * width)
    assert np.array_equal(full, small[rows][:, cols])


@settings(max_examples=150, deadline=None)
@given(grids())
def test_statistics_equal_a_brute_force_count_of_the_full_mask(grid: MaskGrid) -> None:
    full = expand(grid)
    stats = {s.class_id: s for s in class_statistics(grid)}
    present = np.unique(full)
    assert sorted(stats) == present.tolist()
    for class_id in present:
        ys, xs = np.nonzero(full == class_id)
        s = stats[int(class_id)]
        assert s.pixel_count == ys.size and s.fraction == ys.size / full.size
        assert (s.x, s.y, s.width, s.height) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
