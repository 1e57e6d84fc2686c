"""Sample-format conversion and a streaming any-rate → 16 kHz resampler (pure numpy).

The resampler is a polyphase FIR with a Kaiser-windowed sinc prototype. Its filter is centred (linear phase with
the delay compensated): output sample ``n`` sits exactly at input time ``n * in_rate / out_rate``, so resampling
does not shift onset times. Output depends only on the input samples, never on how they were chunked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from edge.audio.source import SAMPLE_RATE, Int16Array

Float32Array = npt.NDArray[np.float32]

STOPBAND_DB = 60.0
"""Attenuation of the anti-alias / anti-image filter in its stopband, in dB."""
TRANSITION = 0.4
"""Full width of the transition band as a fraction of the lower Nyquist frequency, centred on it (-6 dB there).

For 16 kHz output: flat (-0.6 dB) to 7 kHz, -5 dB at 7.9 kHz, ≥ 60 dB down from ~9.6 kHz. A wide band keeps the
filter short (55 taps at 48 kHz), which matters more on a Pi than the little aliasing folded into 6.4-8 kHz.
"""

_INT16_SCALE = 32768.0


def to_float32(block: npt.NDArray[Any]) -> Float32Array:
    """Any PCM dtype → float32 with full scale ±1.0 (int16 / 32768, the convention soundfile uses)."""
    if block.dtype == np.float32:
        return block
    if np.issubdtype(block.dtype, np.floating):
        return block.astype(np.float32)
    if block.dtype == np.uint8:
        return ((block.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if np.issubdtype(block.dtype, np.signedinteger):
        full_scale = float(2 ** (8 * block.dtype.itemsize - 1))
        return (block.astype(np.float64) / full_scale).astype(np.float32)
    raise TypeError(f"unsupported sample dtype {block.dtype}")


def mix_to_mono(block: npt.NDArray[Any]) -> Float32Array:
    """``(frames,)`` or ``(frames, channels)`` samples → ``(frames,)`` float32 at full scale ±1.0 (channel mean)."""
    samples = to_float32(block)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"expected (frames,) or (frames, channels) samples, got shape {samples.shape}")
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0])
    mono: Float32Array = samples.mean(axis=1, dtype=np.float32)
    return mono


def float_to_int16(samples: npt.NDArray[np.floating[Any]]) -> Int16Array:
    """Full-scale ±1.0 floats → int16, rounded to nearest and clipped to [-32768, 32767]."""
    scaled = np.rint(samples * _INT16_SCALE)
    result: Int16Array = np.clip(scaled, -32768, 32767).astype(np.int16)
    return result


def to_mono_int16(block: npt.NDArray[Any]) -> Int16Array:
    """Any PCM block, mono or ``(frames, channels)`` → mono int16 (channel mean, clipped)."""
    if block.dtype == np.int16 and (block.ndim == 1 or (block.ndim == 2 and block.shape[1] == 1)):
        return np.array(block.reshape(-1), dtype=np.int16)
    return float_to_int16(mix_to_mono(block))


def design_lowpass(cutoff: float, transition: float, stopband_db: float = STOPBAND_DB) -> npt.NDArray[np.float64]:
    """Odd-length, symmetric Kaiser-windowed sinc with unit DC gain.

    ``cutoff`` (the -6 dB point) and ``transition`` (full width) are in cycles per sample of the rate the filter
    runs at (0.5 = Nyquist).
    """
    if not 0.0 < cutoff < 0.5 or transition <= 0.0:
        raise ValueError(f"bad filter spec: cutoff={cutoff}, transition={transition}")
    beta = 0.1102 * (stopband_db - 8.7) if stopband_db > 50.0 else 0.5842 * (stopband_db - 21.0) ** 0.4
    n_taps = math.ceil((stopband_db - 7.95) / (2.285 * 2.0 * math.pi * transition)) | 1
    centre = (n_taps - 1) / 2.0
    t = np.arange(n_taps, dtype=np.float64) - centre
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * t) * np.kaiser(n_taps, beta)
    result: npt.NDArray[np.float64] = taps / taps.sum()
    return result


class Resampler:
    """Streaming mono resampler ``in_rate`` → ``out_rate`` (Hz) by the reduced ratio ``up / down``.

    Feed float32 blocks of any length to :meth:`process`; call :meth:`flush` once at the end of a stream to get the
    tail. Over a whole stream the output holds ``ceil(n_in * out_rate / in_rate)`` samples, whatever the chunking.
    Integer downsampling (``up == 1``, e.g. 48 kHz → 16 kHz) takes a fast path: one strided matrix-vector product.
    """

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate} Hz")
        self.in_rate = in_rate
        self.out_rate = out_rate
        g = math.gcd(in_rate, out_rate)
        self.up = out_rate // g
        self.down = in_rate // g
        self.passthrough = self.up == self.down
        # The prototype runs at in_rate * up; its cutoff sits at the lower of the two Nyquist frequencies.
        lower_nyquist = 0.5 / max(self.up, self.down)
        if self.passthrough:
            prototype = np.ones(1)
        else:
            prototype = design_lowpass(lower_nyquist, TRANSITION * lower_nyquist) * self.up
        self.taps_per_phase = math.ceil(len(prototype) / self.up)
        self._centre = (len(prototype) - 1) // 2
        padded = np.zeros(self.taps_per_phase * self.up, dtype=np.float64)
        padded[: len(prototype)] = prototype
        # Row p holds the taps for phase p, reversed so that a window of ascending input samples dots with it.
        self._phases = np.ascontiguousarray(padded.reshape(self.taps_per_phase, self.up).T[:, ::-1]).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next sample fed is input sample 0 of a new stream."""
        k = self.taps_per_phase
        self._buf = np.zeros(k - 1, dtype=np.float32)
        self._buf_start = -(k - 1)
        """Absolute input index of ``_buf[0]``; the zeros before input 0 are the filter's history."""
        self._n_in = 0
        self._n_out = 0

    def _newest_input(self, n: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For output indices ``n``: the newest input index each needs, and the filter phase it uses."""
        upsampled = n * self.down + self._centre
        return upsampled // self.up, upsampled % self.up

    def _outputs_ready(self, n_in: int) -> int:
        """How many outputs in total can be computed once ``n_in`` input samples are known."""
        # Largest n with (n * down + centre) // up <= n_in - 1.
        return max(0, (n_in * self.up - self._centre - 1) // self.down + 1)

    def process(self, samples: npt.NDArray[np.floating[Any]]) -> Float32Array:
        """Feed mono samples (any length, full scale ±1.0); returns the output samples now computable."""
        block = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.passthrough:
            self._n_in += len(block)
            self._n_out += len(block)
            return block
        self._buf = np.concatenate((self._buf, block))
        self._n_in += len(block)
        return self._emit(self._outputs_ready(self._n_in))

    def flush(self) -> Float32Array:
        """Return the tail of the stream (the input is taken as zero past its end), then reset."""
        if self.passthrough:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self.up // self.down)
        if total > self._n_out:
            last_needed, _ = self._newest_input(np.array([total - 1], dtype=np.int64))
            pad = int(last_needed[0]) + 1 - (self._buf_start + len(self._buf))
            self._buf = np.concatenate((self._buf, np.zeros(max(pad, 0), dtype=np.float32)))
        tail = self._emit(total)
        self.reset()
        return tail

    def _emit(self, n_stop: int) -> Float32Array:
        k = self.taps_per_phase
        count = n_stop - self._n_out
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        buf, step = self._buf, self._buf.itemsize
        # einsum on a strided view computes each output the same way whatever the chunking (BLAS matmul does
        # not: its blocking changes the summation order), and skips the copy a matmul would need.
        if self.up == 1:
            # Integer decimation: one set of taps on a window that advances by `down` input samples per output.
            first = (self._n_out * self.down + self._centre) - (k - 1) - self._buf_start
            windows = as_strided(buf[first:], (count, k), (self.down * step, step), writeable=False)
            out = np.einsum("ij,j->i", windows, self._phases[0])
        else:
            newest, phase = self._newest_input(np.arange(self._n_out, n_stop, dtype=np.int64))
            windows = as_strided(buf, (len(buf) - k + 1, k), (step, step), writeable=False)
            out = np.einsum("ij,ij->i", windows[newest - (k - 1) - self._buf_start], self._phases[phase])
        self._n_out = n_stop
        next_first = (n_stop * self.down + self._centre) // self.up - (k - 1)
        drop = min(max(next_first - self._buf_start, 0), len(self._buf))
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return np.asarray(out, dtype=np.float32)


def resample(samples: npt.NDArray[Any], in_rate: int, out_rate: int = SAMPLE_RATE) -> Float32Array:
    """Resample a whole mono signal at once (same result as streaming it through :class:`Resampler`)."""
    resampler = Resampler(in_rate, out_rate)
    head = resampler.process(to_float32(np.asarray(samples)))
    return np.concatenate((head, resampler.flush()))
