"""A preallocated RAM ring buffer of int16 samples addressed by absolute sample index.

Raw audio lives only here (privacy: DESIGN.md section 5); the buffer forgets everything older than its capacity.
"""

from __future__ import annotations

import numpy as np

from edge.audio.source import Int16Array


class RingBuffer:
    """Keeps the newest ``capacity`` samples; index 0 is the first sample ever written."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=np.int16)
        self.end = 0
        """Absolute index one past the newest sample."""

    @property
    def start(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.end - self.capacity)

    def write(self, samples: Int16Array) -> None:
        n = len(samples)
        if n >= self.capacity:
            samples = samples[n - self.capacity :]
            self.end += n - self.capacity
            n = self.capacity
        pos = self.end % self.capacity
        first = min(n, self.capacity - pos)
        self._buf[pos : pos + first] = samples[:first]
        if first < n:
            self._buf[: n - first] = samples[first:]
        self.end += n

    def read(self, start: int, stop: int) -> Int16Array:
        """Samples ``[start, stop)``; indices before 0 or after ``end`` read as silence.

        Raises ``IndexError`` when part of the range was already overwritten.
        """
        if stop < start:
            raise ValueError(f"empty range {start}..{stop}")
        lo, hi = max(start, 0), min(stop, self.end)
        if hi <= lo:
            return np.zeros(stop - start, dtype=np.int16)
        if lo < self.start:
            raise IndexError(f"samples {lo}..{self.start} were already overwritten (ring holds {self.capacity})")
        if (lo, hi) == (start, stop):  # the usual case: nothing to pad
            return self._copy(lo, hi)
        out = np.zeros(stop - start, dtype=np.int16)
        out[lo - start : hi - start] = self._copy(lo, hi)
        return out

    def _copy(self, lo: int, hi: int) -> Int16Array:
        """A copy of the held samples ``[lo, hi)``, in one piece or two (across the end of the buffer)."""
        a, b = lo % self.capacity, hi - lo
        if a + b <= self.capacity:
            return self._buf[a : a + b].copy()
        return np.concatenate((self._buf[a:], self._buf[: a + b - self.capacity]))
