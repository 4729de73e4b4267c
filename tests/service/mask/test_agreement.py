"""service/mask/agreement.py: how much two masks agree."""

from __future__ import annotations

import numpy as np
import pytest

from service.mask.agreement import agreement


def test_agreement_is_exact_on_known_masks() -> None:
    mask = np.array([[0, 0, 15, 15], [0, 8, 8, 15]], dtype=np.uint8)
    assert agreement(mask, mask) == agreement(mask, mask.copy())
    assert (agreement(mask, mask).pixels, agreement(mask, mask).mean_iou) == (1.0, 1.0)
    disjoint = agreement(np.zeros((2, 4), np.uint8), np.ones((2, 4), np.uint8))
    assert (disjoint.pixels, disjoint.mean_iou) == (0.0, 0.0)
    other = np.array([[0, 15, 15, 15], [0, 0, 8, 15]], dtype=np.uint8)
    # Equal pixels: 6 of 8. IoU: class 0 2/4, class 8 1/2, class 15 3/4 -> mean (0.5 + 0.5 + 0.75) / 3.
    result = agreement(mask, other)
    assert result.pixels == 6 / 8 and result.mean_iou == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    # A shadow at another size is compared at the primary's, by nearest neighbour.
    assert agreement(mask, np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)).pixels == 1.0
