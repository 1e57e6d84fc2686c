"""The log-mel front end: the same numpy code computes training features and run-time features.

The classifier sees a fixed window around each candidate onset (``pre_s`` before, ``post_s`` after), turned into
``frames x n_mels`` log-mel energies normalised to the window's own maximum, so the model is blind to absolute
level (a shot at 50 m and one at 300 m look alike) but sees the shape of the attack and the decay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

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
    n_mels: int = 40
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


SECOND_LOOK_WINDOW_S = (0.50, 0.40)
"""The second look's window (before, after the onset): more look-back, no more delay than the first window."""


def second_look_front_end() -> FrontEndParams:
    """The front end a second-look model must have been trained for (``tools.train --window``)."""
    pre, post = SECOND_LOOK_WINDOW_S
    return replace(FrontEndParams(), pre_s=pre, post_s=post)


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


_RFFT_TAKES_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
"""numpy 2 can write a transform into a given array; numpy 1 always allocates a new one."""


class LogMel:
    """Turns int16 windows into normalised log-mel patches of shape ``(n_frames, n_mels)`` in ``[-1, 0]``.

    Each step works in place where it can, so a patch costs one FFT, one matrix product and a few passes over small
    arrays; every step rounds as the plain formula in its comment does (``tests/test_logmel.py`` checks the result
    bit for bit against those formulas). An instance reuses its work arrays from call to call: one per thread.
    """

    def __init__(self, params: FrontEndParams | None = None) -> None:
        self.params = params or FrontEndParams()
        self._work: tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128]] | None = None

    @cached_property
    def _window(self) -> FloatArray:
        return np.hanning(self.params.n_fft + 1)[:-1].astype(np.float32)

    @cached_property
    def _sample_window(self) -> FloatArray:
        """The window times 2**-15 (int16 to full scale ±1): scaling by a power of two is exact, so
        ``int16 * _sample_window`` rounds to the same float32 as ``(int16 / 32768) * _window``."""
        return self._window * np.float32(1.0 / 32768.0)

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
        return np.multiply(self._framed(samples), self._sample_window, dtype=np.float32)

    def _framed(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """The frames as a view of ``samples`` (overlapping rows: never write to it), shape ``(n_frames, n_fft)``."""
        p = self.params
        if len(samples) < p.n_fft:
            raise ValueError(f"need at least n_fft={p.n_fft} samples, got {len(samples)}")
        n_frames = 1 + (len(samples) - p.n_fft) // p.hop
        flat = np.ascontiguousarray(samples)
        step = flat.itemsize
        # what as_strided makes, checked against the buffer's size, at a tenth of the cost
        return np.ndarray((n_frames, p.n_fft), flat.dtype, flat, 0, (p.hop * step, step))

    def _work_arrays(self, n_frames: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128]]:
        """Frames and spectrum arrays kept from call to call: ~400 kB allocated afresh for every window costs a
        page fault per 4 kB in a long-running process, as the allocator hands such blocks back in between."""
        if self._work is None or len(self._work[0]) != n_frames:
            n_fft = self.params.n_fft
            self._work = (np.empty((n_frames, n_fft)), np.empty((n_frames, n_fft // 2 + 1), dtype=np.complex128))
        return self._work

    def power_db(self, samples: npt.NDArray[np.int16]) -> FloatArray:
        """Un-normalised log-mel energies in dB, shape ``(n_frames, n_mels)``."""
        framed = self._framed(samples)
        frames, spectrum = self._work_arrays(len(framed))
        # self.frames(samples).astype(np.float64): the FFT runs in float64, as numpy 1 (e.g. beside tflite-runtime)
        # always transforms in float64 while numpy 2 would take a float32 path for float32 input; one precision
        # keeps features identical across numpy versions
        np.multiply(framed, self._sample_window, out=frames, dtype=np.float32)
        spectrum = _rfft_rows(frames, spectrum)
        mel = _power(spectrum) @ self.mel_matrix
        # 10 * log10(mel + 1e-12), all in float32
        np.add(mel, np.float32(1e-12), out=mel)
        np.log10(mel, out=mel)
        np.multiply(mel, np.float32(10.0), out=mel)
        return mel

    def patch(self, window: npt.NDArray[np.int16]) -> FloatArray:
        """One classifier input from exactly ``window_samples`` samples."""
        p = self.params
        if len(window) != p.window_samples:
            raise ValueError(f"classifier window must hold {p.window_samples} samples, got {len(window)}")
        db = self.power_db(window)
        # max(db - max(db), floor_db) / -floor_db, all in float32
        np.subtract(db, db.max(), out=db)
        np.maximum(db, np.float32(p.floor_db), out=db)
        np.divide(db, np.float32(-p.floor_db), out=db)
        return db

    def patches(self, windows: npt.NDArray[np.int16]) -> FloatArray:
        """Batch version of :meth:`patch`, shape ``(n, n_frames, n_mels)``."""
        if windows.ndim != 2:
            raise ValueError("windows must be a 2-D array (n, window_samples)")
        out = np.empty((len(windows), self.params.n_frames, self.params.n_mels), dtype=np.float32)
        for row, window in zip(out, windows, strict=True):
            row[...] = self.patch(window)
        return out


def _rfft_rows(frames: npt.NDArray[np.float64], out: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    """``np.fft.rfft(frames, axis=1)``, written into ``out`` where numpy can."""
    if _RFFT_TAKES_OUT:
        return np.fft.rfft(frames, axis=1, out=out)
    return np.fft.rfft(frames, axis=1)


def _power(spectrum: npt.NDArray[np.complex128]) -> FloatArray:
    """``(spectrum.real**2 + spectrum.imag**2).astype(float32)``, squaring in place (``spectrum`` is overwritten)."""
    parts = spectrum.view(np.float64)  # real, imag, real, imag, ...
    np.square(parts, out=parts)
    power = np.empty(spectrum.shape, dtype=np.float32)
    np.add(parts[..., 0::2], parts[..., 1::2], out=power)  # summed in float64, rounded once to float32
    return power
