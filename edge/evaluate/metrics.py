"""File-level quality metrics on ``gun_max`` scores (max model score over a file's gate candidates)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]


def auc(pos: Sequence[float] | Scores, neg: Sequence[float] | Scores) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); NaN when a side is empty."""
    p = np.asarray(pos, dtype=np.float64)
    n = np.asarray(neg, dtype=np.float64)
    if len(p) == 0 or len(n) == 0:
        return math.nan
    n_sorted = np.sort(n)
    below = np.searchsorted(n_sorted, p, side="left")
    not_above = np.searchsorted(n_sorted, p, side="right")
    return float(np.sum(below + not_above) / (2.0 * len(p) * len(n)))


def threshold_at_fpr(neg: Sequence[float] | Scores, fpr: float) -> float:
    """Smallest threshold ``t`` such that the fraction of negatives with score ``>= t`` is at most ``fpr``."""
    n = np.sort(np.asarray(neg, dtype=np.float64))[::-1]
    if len(n) == 0:
        return 0.5
    allowed = math.floor(fpr * len(n))
    if allowed >= len(n):
        return float(n[-1])
    return float(np.nextafter(n[allowed], math.inf))


def rate_at(scores: Sequence[float] | Scores, threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s >= threshold)) if len(s) else math.nan


def recall_at_fpr(pos: Sequence[float] | Scores, neg: Sequence[float] | Scores, fpr: float) -> float:
    return rate_at(pos, threshold_at_fpr(neg, fpr))


def count_events(times: Sequence[float] | Scores, gap: float) -> int:
    """Alarm events among above-threshold times (seconds): a time at most ``gap`` after the previous one continues
    its event, as gunshot impulses join a burst (:class:`edge.detect.bursts.BurstTracker`, gap 2 s); with a gap a
    little over a peer's window hop (1.5 hops), an event is a maximal run of consecutive above-threshold windows."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    return int(len(t) > 0) + int(np.sum(np.diff(t) > gap))


def roc_curve(pos: Sequence[float] | Scores, neg: Sequence[float] | Scores) -> tuple[Scores, Scores]:
    """(false-positive rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    thresholds = _thresholds(pos, neg)
    fpr = np.array([rate_at(neg, t) for t in thresholds])
    tpr = np.array([rate_at(pos, t) for t in thresholds])
    return np.concatenate(([0.0], fpr, [1.0])), np.concatenate(([0.0], tpr, [1.0]))


def pr_curve(pos: Sequence[float] | Scores, neg: Sequence[float] | Scores) -> tuple[Scores, Scores]:
    """(recall, precision) at every distinct threshold (precision counts files, not time)."""
    p, n = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    recall, precision = [], []
    for t in _thresholds(p, n):
        tp, fp = float(np.sum(p >= t)), float(np.sum(n >= t))
        recall.append(tp / len(p) if len(p) else math.nan)
        precision.append(tp / (tp + fp) if tp + fp else 1.0)
    return np.array(recall), np.array(precision)


def _thresholds(pos: Sequence[float] | Scores, neg: Sequence[float] | Scores) -> Scores:
    both = np.concatenate((np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)))
    return np.unique(both)[::-1]
