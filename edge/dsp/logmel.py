"""The log-mel front end: the same numpy code computes training features and run-time features.

The classifier sees a fixed window around each candidate onset (``pre_s`` before, ``post_s`` after), turned into
``frames x n_mels`` log-mel energies normalised to the window's own maximum, so the model is blind to absolute
level (a shot at 50 m and one at 300 m look alike) but sees the shape of the attack and the decay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FrontEndParams:
    """Parameters the model's metadata must repeat exactly; the runtime refuses a mismatch."""

    sample_rate: int = 16_000
    """Hz."""
    n_fft: int = 512
    """Samples per FFT frame (32 ms)."""
    hop: int = 160
    """Samples between frames (10 ms)."""
    n_mels: int = 64
    fmin_hz: float = 60.0
    fmax_hz: float = 7_800.0
    pre_s: float = 0.10
    """Seconds of audio before the onset in the classifier window."""
    post_s: float = 0.40
    """Seconds after the onset: bounds how long the first message about a shot waits."""
    floor_db: float = -80.0
    """Energies more than this below the window maximum are clipped."""

    @property
    def pre_samples(self) -> int:
        return round(self.pre_s * self.sample_rate)

    @property
    def post_samples(self) -> int:
        return round(self.post_s * self.sample_rate)

    @property
    def window_samples(self) -> int:
        return self.pre_samples + self.post_samples

    @property
    def n_frames(self) -> int:
        return 1 + (self.window_samples - self.n_fft) // self.hop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontEndParams:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class LogMel:
    """Turns int16 windows into normalised log-mel patches of shape ``(n_frames, n_mels)`` in ``[-1, 0]``."""

    def __init__(self, params: FrontEndParams | None = None) -> None:
        self.params = params or FrontEndParams()

    @cached_property
    def _window(self) -> FloatArray:
        return np.hanning(self.params.n_fft + 1)[:-1].astype(np.float32)

    @cached_property
    def mel_matrix(self) -> FloatArray:
        """Triangular filters, shape ``(n_fft // 2 + 1, n_mels)``, area-normalised (Slaney style)."""
        p = self.params
        fft_hz = np.linspace(0.0, p.sample_rate / 2, p.n_fft // 2 + 1)
        edges_hz = _mel_to_hz(
            np.linspace(_hz_to_mel(np.array(p.fmin_hz)), _hz_to_mel(np.array(p.fmax_hz)), p.n_mels + 2)
        )
        lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
        rising = (fft_hz[:, None] - lower) / (centre - lower)
        falling = (upper - fft_hz[:, None]) / (upper - centre)
        weights = np.maximum(0.0, np.minimum(rising, falling))
        weights *= 2.0 / (upper - lower)
        return weights.astype(np.float32)

    def frames(self, samples: npt.NDArray[np.int16]) -> FloatArray:
        """Framed, windowed float32 samples in [-1, 1), shape ``(n_frames, n_fft)``."""
        p = self.params
        x = samples.astype(np.float32) * np.float32(1.0 / 32768.0)
        return sliding_window_view(x, p.n_fft)[:: p.hop] * self._window

    def power_db(self, samples: npt.NDArray[np.int16]) -> FloatArray:
        """Un-normalised log-mel energies in dB, shape ``(n_frames, n_mels)``."""
        # in float64: numpy 1 (e.g. beside tflite-runtime) always transforms in float64 while numpy 2 would take a
        # float32 path for float32 input; one precision keeps features identical across numpy versions
        spectrum = np.fft.rfft(self.frames(samples).astype(np.float64), axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        mel = power @ self.mel_matrix
        return (10.0 * np.log10(mel + np.float32(1e-12))).astype(np.float32)

    def patch(self, window: npt.NDArray[np.int16]) -> FloatArray:
        """One classifier input from exactly ``window_samples`` samples."""
        p = self.params
        if len(window) != p.window_samples:
            raise ValueError(f"classifier window must hold {p.window_samples} samples, got {len(window)}")
        db = self.power_db(window)
        rel = np.maximum(db - db.max(), np.float32(p.floor_db))
        return (rel / np.float32(-p.floor_db)).astype(np.float32)

    def patches(self, windows: npt.NDArray[np.int16]) -> FloatArray:
        """Batch version of :meth:`patch`, shape ``(n, n_frames, n_mels)``."""
        if windows.ndim != 2:
            raise ValueError("windows must be a 2-D array (n, window_samples)")
        return (
            np.stack([self.patch(w) for w in windows])
            if len(windows)
            else np.zeros((0, self.params.n_frames, self.params.n_mels), dtype=np.float32)
        )
