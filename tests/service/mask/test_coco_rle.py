"""COCO RLE of a region, held to pycocotools: the same counts string, and pycocotools decodes it to the region."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as coco
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.mask import coco_rle


def _theirs(full: np.ndarray) -> str:
    return coco.encode(np.asfortranarray(full.astype(np.uint8)))["counts"].decode()


@st.composite
def _placed(draw: st.DrawFn) -> tuple[np.ndarray, int, int, int, int]:
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    box_h, box_w = draw(st.integers(1, height)), draw(st.integers(1, width))
    y, x = draw(st.integers(0, height - box_h)), draw(st.integers(0, width - box_w))
    box = draw(arrays(np.bool_, (box_h, box_w)))
    return box, x, y, height, width


@settings(max_examples=300, deadline=None)
@given(_placed())
def test_a_region_s_counts_are_pycocotools_own_and_decode_to_it(placed: tuple[np.ndarray, int, int, int, int]) -> None:
    box, x, y, height, width = placed
    full = np.zeros((height, width), dtype=bool)
    full[y : y + box.shape[0], x : x + box.shape[1]] = box
    ours = coco_rle.encode(box, x, y, height, width)
    assert ours == _theirs(full)
    decoded = coco.decode({"size": [height, width], "counts": ours.encode()})
    assert np.array_equal(decoded.astype(bool), full)


def test_runs_that_cross_a_column_end_are_one_run_and_large_counts_take_several_characters() -> None:
    # A box the mask's full height: the foot of one column and the head of the next are one run of ones.
    height, width = 3000, 7
    box = np.zeros((height, 3), dtype=bool)
    box[-5:, 0] = True
    box[:, 1] = True
    box[:4, 2] = True
    full = np.zeros((height, width), dtype=bool)
    full[:, 2:5] = box
    counts = coco_rle.run_counts(box, 2, 0, height, width)
    assert counts.tolist() == [2 * height + height - 5, 5 + height + 4, height - 4 + 2 * height]
    assert coco_rle.encode(box, 2, 0, height, width) == _theirs(full)


def test_an_empty_region_is_one_run_of_zeros() -> None:
    box = np.zeros((2, 2), dtype=bool)
    assert coco_rle.run_counts(box, 1, 1, 4, 5).tolist() == [20]
    assert coco_rle.encode(box, 1, 1, 4, 5) == _theirs(np.zeros((4, 5), dtype=bool))
