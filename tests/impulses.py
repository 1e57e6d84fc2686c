"""Synthetic test signals for gate and burst tests (not for quality claims: those use real recordings)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 16_000


def noise(seconds: float, rms: float, seed: int = 0) -> npt.NDArray[np.float64]:
    return np.random.default_rng(seed).standard_normal(round(seconds * RATE)) * rms


def add_impulse(x: npt.NDArray[np.float64], onset: int, peak: float, decay_ms: float = 10.0, seed: int = 1) -> None:
    """A sharp broadband attack with an exponential decay, starting exactly at ``onset``."""
    n = min(len(x) - onset, round(0.08 * RATE))
    rng = np.random.default_rng(seed + onset)
    body = rng.standard_normal(n) * np.exp(-np.arange(n) / (decay_ms * RATE / 1000.0))
    body[0] = abs(body[0]) + 3.0
    x[onset : onset + n] += peak * body / np.abs(body).max()


def to_int16(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def feed(chunks_of: int, x: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return [x[i : i + chunks_of] for i in range(0, len(x), chunks_of)]
