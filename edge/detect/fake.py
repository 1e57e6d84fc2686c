"""A stand-in classifier for tests and tools that must run without a model: records what it was asked."""

from __future__ import annotations

import numpy as np

from edge.dsp.logmel import FloatArray


class RecordingScorer:
    """Scores every patch with ``score`` and keeps a count of the patches it saw."""

    def __init__(self, score: float = 1.0) -> None:
        self.score = score
        self.calls = 0
        self.patches = 0

    def predict(self, patches: FloatArray) -> FloatArray:
        self.calls += 1
        self.patches += len(patches)
        return np.full(len(patches), self.score, dtype=np.float32)
