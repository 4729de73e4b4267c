"""What every consumer of a MaskGrid must give: the statistics, runs and encodings of the very mask it describes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.mask.encode import encode_png, encode_raw, run_lengths
from service.mask.grid import MaskGrid, grid_for
from service.mask.statistics import class_statistics
from tests import images


def assert_describes(grid: MaskGrid, full: np.ndarray) -> None:
    """The grid's statistics, run lengths, PNG and RAW are those of `full`, computed pixel by pixel."""
    height, width = full.shape
    stats = class_statistics(grid)
    assert sum(s.pixel_count for s in stats) == height * width
    assert [s.pixel_count for s in stats] == sorted((s.pixel_count for s in stats), reverse=True)
    for s in stats:
        rows, cols = np.nonzero(full == s.class_id)
        assert s.pixel_count == rows.size
        assert s.fraction == pytest.approx(rows.size / full.size)
        box = (cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
        assert (s.x, s.y, s.width, s.height) == box
    assert {s.class_id for s in stats} == set(np.unique(full).tolist())
    values, counts = run_lengths(grid)
    assert np.array_equal(np.repeat(values, counts).reshape(height, width), full)
    assert (counts > 0).all() and (values[1:] != values[:-1]).all()
    assert np.array_equal(images.decode_png_indices(encode_png(grid)), full)
    assert encode_raw(grid) == full.tobytes()


# Random masks (a few class ids, 0 most often) and target sizes, for hypothesis.
small_masks = st.integers(1, 24).flatmap(
    lambda h: st.integers(1, 24).flatmap(
        lambda w: arrays(np.uint8, (h, w), elements=st.sampled_from([0, 0, 0, 8, 15, 255]))
    )
)


sizes = st.integers(1, 80)


def random_grids() -> st.SearchStrategy[MaskGrid]:
    return st.builds(grid_for, small_masks, sizes, sizes)
