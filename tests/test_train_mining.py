"""tools.train.mine_hard_negatives: which negatives are mined and how the weights move."""

from __future__ import annotations

import numpy as np

from tools.train import mine_hard_negatives


def test_top_negatives_upweighted_and_negative_total_kept() -> None:
    y = np.array([1, 0, 0, 0, 0, 1], np.float32)
    w = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 1.0], np.float32)
    scores = np.array([9.0, 1.0, 4.0, 2.0, 3.0, -5.0], np.float32)
    out, mined = mine_hard_negatives(scores, y, w, 0.5, 3.0)
    assert mined.tolist() == [False, False, True, False, True, False]
    assert out[y > 0.5].tolist() == [1.0, 1.0]
    assert np.isclose(out[y <= 0.5].sum(), w[y <= 0.5].sum())
    assert np.isclose(out[2] / out[1], 6.0) and np.isclose(out[4] / out[3], 3.0)


def test_zero_fraction_changes_nothing() -> None:
    y = np.array([1, 0, 0], np.float32)
    w = np.ones(3, np.float32)
    out, mined = mine_hard_negatives(np.zeros(3, np.float32), y, w, 0.0, 3.0)
    assert not mined.any() and np.allclose(out, w)
