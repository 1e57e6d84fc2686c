"""Sustained impulsive sound (rain or hail on sheet metal, rattling, a long crackle) must not open a detection.

Such a *texture* is a run of shot-like impulses (classifier score ``shot_like`` or more), each within ``gap_s`` of
the one before. A shot or a burst starts out of a background without them, so an impulse that comes more than
``max_s`` into a run has its score capped at ``shot_like``: it can still be a round of a burst that is already open,
but it cannot open one. The exception is a shot fired in the rain: an impulse at least ``louder_db`` louder than the
loudest impulse of the run so far keeps its score.

Decisions depend only on onsets, scores and levels in onset order, so not on how the audio was chunked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextureParams:
    max_s: float = 2.0
    """How long a run of shot-like impulses may last before its impulses stop opening detections; 0 = never."""
    gap_s: float = 1.5
    """Longest pause inside one run (rain on a roof leaves more than 1 s between shot-like drops now and then)."""
    louder_db: float = 10.0
    """How much louder than the run so far an impulse must be to keep its score."""
    sample_rate: int = 16_000


class TextureTracker:
    """Feed every classified candidate, in onset order, to :meth:`score`."""

    def __init__(self, shot_like: float, params: TextureParams | None = None) -> None:
        self.params = params or TextureParams()
        self.shot_like = shot_like
        self._max = round(self.params.max_s * self.params.sample_rate)
        self._gap = round(self.params.gap_s * self.params.sample_rate)
        self._start: int | None = None
        self._last = 0
        self._loudest = 0.0
        self.capped = 0
        """Candidates whose score was capped."""

    def score(self, onset: int, score: float, level_db: float) -> float:
        """The score the candidate keeps; ``level_db`` is its loudness on any fixed dB scale."""
        start = self._start if self._start is not None and onset - self._last <= self._gap else None
        kept = score
        if (
            start is not None
            and self._max > 0
            and onset - start > self._max
            and score > self.shot_like
            and level_db < self._loudest + self.params.louder_db
        ):
            kept = self.shot_like
            self.capped += 1
        if score >= self.shot_like:
            if start is None:
                self._start, self._loudest = onset, level_db
            else:
                self._loudest = max(self._loudest, level_db)
            self._last = onset
        return kept
