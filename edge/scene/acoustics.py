"""Outdoor acoustics at the scene's 16 kHz: filters, air absorption, band-limited pulses and the microphone.

Every sound of the scene is a sound *pressure at the microphone* in pascals, band-limited to what the unit's
ADC passes; :class:`Microphone` turns the mixed pressure into full-scale samples the way a cheap MEMS or electret
capsule does (low cut, overload near its acoustic overload point, self-noise). All filtering is vectorised (FFT
convolution or spectral shaping); nothing loops over samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SR = 16_000
"""Sample rate of every sound (Hz)."""
SPEED_OF_SOUND = 343.0
"""m/s at 20 °C."""
P_REF = 20e-6
"""Reference sound pressure for dB SPL (Pa)."""
ATMOSPHERE_PA = 101_325.0
TEMPERATURE_C = 20.0
HUMIDITY_PCT = 60.0
ADC_CUTOFF_HZ = 7_000.0
"""-3 dB point of the ADC's anti-alias filter (Hz)."""
ADC_ORDER = 24
"""Its order (a Butterworth response: -1 dB at 6.8 kHz, -28 dB at 8 kHz, -52 dB at 9 kHz)."""

Float64Array = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]


@dataclass(frozen=True)
class Sound:
    samples: Float64Array
    """Sound pressure at the microphone (Pa), 16 kHz, band-limited to the ADC's pass band."""
    onsets: tuple[int, ...]
    """Sample offsets of the impulses in ``samples`` (the first is the sound's onset)."""

    @property
    def onset(self) -> int:
        return self.onsets[0]

    @property
    def peak_spl(self) -> float:
        """Peak sound pressure level at the microphone (dB SPL)."""
        return spl(float(np.abs(self.samples).max()))


def rfft_freqs(n: int) -> Float64Array:
    """Frequencies (Hz) of the bins of an ``n``-point ``rfft`` at 16 kHz."""
    return np.fft.rfftfreq(n, 1.0 / SR).astype(np.float64)


def pascal(db_spl: float) -> float:
    return P_REF * 10.0 ** (db_spl / 20.0)


def spl(pa: float) -> float:
    return float(20.0 * np.log10(max(pa, 1e-12) / P_REF))


# ---------------------------------------------------------------------------------------------- filtering helpers


def convolve(x: Float64Array, h: Float64Array) -> Float64Array:
    """Causal linear convolution via the FFT; the output has ``len(x) + len(h) - 1`` samples."""
    n = len(x) + len(h) - 1
    size = 1 << max(n - 1, 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


def lowpass_kernel(cutoff_hz: float, order: int = 2) -> Float64Array:
    """Impulse response of ``order`` cascaded one-pole low-passes (causal, unit DC gain, no overshoot)."""
    a = float(np.exp(-2.0 * np.pi * cutoff_hz / SR))
    length = max(int(np.ceil(np.log(1e-5) / np.log(a))) if a > 0 else 1, 1)
    one: Float64Array = (1.0 - a) * a ** np.arange(length, dtype=np.float64)
    kernel = one
    for _ in range(order - 1):
        kernel = convolve(kernel, one)
    return kernel / float(kernel.sum())


def lowpass(x: Float64Array, cutoff_hz: float, order: int = 2) -> Float64Array:
    """Causal low-pass, same length as ``x``."""
    return convolve(x, lowpass_kernel(cutoff_hz, order))[: len(x)]


def highpass(x: Float64Array, cutoff_hz: float) -> Float64Array:
    """Causal first-order high-pass (``x`` minus its one-pole low-pass): a capsule's vent or a DC blocker."""
    return x - lowpass(x, cutoff_hz, order=1)


def shaped_noise(
    rng: np.random.Generator, n: int, lo_hz: float, hi_hz: float, tilt_db_oct: float = 0.0
) -> Float64Array:
    """Unit-RMS Gaussian noise, band-limited to ``[lo_hz, hi_hz]`` with a spectral tilt (dB per octave).

    Shaped in the frequency domain with smooth (2nd-order-like) band edges; for stationary noise the phase of the
    filter does not matter.
    """
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1] if n > 1 else 1.0
    gain = (f / 1000.0) ** (tilt_db_oct / 6.0206)
    gain /= np.sqrt(1.0 + (lo_hz / f) ** 4) * np.sqrt(1.0 + (f / hi_hz) ** 4)
    y = np.fft.irfft(spec * gain, n)
    return y / max(float(np.sqrt(np.mean(y**2))), 1e-12)


def smooth_random(rng: np.random.Generator, n: int, rate_hz: float) -> Float64Array:
    """A slowly varying random curve with values around 0 (unit RMS), bandwidth ``rate_hz``."""
    knots = max(int(n / SR * rate_hz) + 4, 4)
    values = rng.standard_normal(knots)
    return np.interp(np.linspace(1.0, knots - 2.0, n), np.arange(knots), values)


def minimum_phase(magnitude: Float64Array) -> ComplexArray:
    """The minimum-phase (causal, least-delay) response with this magnitude on an ``rfft`` grid (any leading axes).

    Physical losses (air, porous or scattering surfaces, a capsule's roll-off) are causal; the real-cepstrum fold
    gives the one causal phase that goes with a magnitude, so a filtered wavefront never starts early.
    """
    n = 2 * (magnitude.shape[-1] - 1)
    cepstrum = np.fft.irfft(np.log(np.maximum(magnitude, 1e-12)), n)
    fold = np.zeros(n)
    fold[0] = 1.0
    fold[1 : n // 2] = 2.0
    fold[n // 2] = 1.0
    return np.exp(np.fft.rfft(cepstrum * fold, n))


def adc_response(freqs_hz: Float64Array) -> ComplexArray:
    """Frequency response of the ADC's anti-alias filter, a causal (analogue-prototype) Butterworth low-pass.

    Given in closed form it is the same filter at any sample rate, and nothing it passes arrives early.
    """
    s = 1j * freqs_hz / ADC_CUTOFF_HZ
    poles = np.exp(1j * np.pi * (2.0 * np.arange(1, ADC_ORDER + 1) + ADC_ORDER - 1.0) / (2.0 * ADC_ORDER))
    response = np.ones(len(freqs_hz), dtype=np.complex128)
    for pole in poles:
        response /= s - pole
    return response * np.prod(-poles).real


# ------------------------------------------------------------------------------------------------ air absorption


def air_absorption_db_per_m(
    freqs_hz: Float64Array, temperature_c: float = TEMPERATURE_C, humidity_pct: float = HUMIDITY_PCT
) -> Float64Array:
    """Atmospheric absorption (dB/m) after ISO 9613-1 (oxygen and nitrogen relaxation plus classical loss).

    At 20 °C and 60 % relative humidity: about 0.005 dB/m at 1 kHz, 0.026 at 4 kHz, 0.09 at 8 kHz, so a shot
    150 m away loses 4 dB at 4 kHz and 13 dB at 8 kHz.
    """
    t = temperature_c + 273.15
    t0, t01 = 293.15, 273.16
    rel_p = 1.0  # sea-level pressure
    c_sat = -6.8346 * (t01 / t) ** 1.261 + 4.6151
    h = humidity_pct * 10.0**c_sat / rel_p
    fr_o = rel_p * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    fr_n = rel_p * (t / t0) ** -0.5 * (9.0 + 280.0 * h * np.exp(-4.170 * ((t / t0) ** (-1.0 / 3.0) - 1.0)))
    f2 = freqs_hz**2
    return (
        8.686
        * f2
        * (
            1.84e-11 / rel_p * (t / t0) ** 0.5
            + (t / t0) ** -2.5
            * (0.01275 * np.exp(-2239.1 / t) / (fr_o + f2 / fr_o) + 0.1068 * np.exp(-3352.0 / t) / (fr_n + f2 / fr_n))
        )
    )


# ------------------------------------------------------------------------------------------- band-limited pulses


def band_limited(wave: Callable[[Float64Array], Float64Array], duration_s: float, oversample: int = 32) -> Float64Array:
    """Samples at 16 kHz of a continuous pressure waveform ``wave(t)`` (t in s, from 0) as the ADC would see it.

    A shock front (a blast wave's or a bullet's) is a jump in pressure: sampling it directly would fold its
    high-frequency energy back into the band. It is sampled ``oversample`` times faster, filtered there by the
    ADC's anti-alias filter (:func:`adc_response`: causal, nothing arrives before the front) and decimated. The
    scene's sounds carry that filter already, so the microphone applies it only to what its overload adds.
    """
    n = max(round(duration_s * SR), 1024) * oversample
    spec = np.fft.rfft(wave(np.arange(n) / (SR * oversample)))
    spec *= adc_response(np.fft.rfftfreq(n, 1.0 / (SR * oversample)).astype(np.float64))
    return np.fft.irfft(spec, n)[::oversample].copy()


def friedlander(positive_s: float) -> Float64Array:
    """A blast wave (a muzzle blast, a firecracker), peak 1, band-limited: ``(1 - t/T) exp(-t/T)`` for t >= 0.

    An instant rise, a positive phase ``T`` and a shallow negative phase that cancels its impulse: the far field
    of a source that releases gas and then stops carries no net impulse. 64 ms long (``exp(-t/T)`` is gone).
    """
    return band_limited(lambda t: (1.0 - t / positive_s) * np.exp(-t / positive_s), 0.064)


# ------------------------------------------------------------------------------------------------- the microphone


@dataclass(frozen=True)
class Microphone:
    """A cheap MEMS capsule (or an electret with its preamp) and the ADC of a pole unit.

    The defaults are data-sheet values of common I2S MEMS microphones: -26 dBFS for 94 dB SPL (so full scale is
    120 dB SPL), an acoustic overload point near 120 dB SPL and 65 dB SNR, and a band of about 100 Hz-7 kHz. A
    busy street's ambience then reads around -42 dBFS, while a pistol 40 m away (120-130 dB SPL peak at the pole)
    drives the capsule into overload.
    """

    sensitivity_dbfs: float = -26.0
    """Output for a 1 Pa (94 dB SPL) sine, dB re full scale."""
    saturation_dbfs: float = -3.0
    """Level an overloaded capsule and modulator saturate towards (``L·tanh(x/L)``: 10 % distortion at about
    118 dB SPL); a sigma-delta modulator overloads a few dB under its nominal full scale. The ADC filter rings on
    the flattened top and can overshoot it by a dB or two."""
    low_cut_hz: float = 100.0
    """The capsule vent's first-order low cut (Hz)."""
    dc_block_hz: float = 20.0
    """The digital DC blocker after the ADC (Hz)."""
    noise_dbfs: float = -91.0
    """Self-noise (RMS, dBFS): 94 dB SPL - 65 dB SNR - 26 dB."""

    def record(self, pressure_pa: Float64Array, rng: np.random.Generator) -> Float64Array:
        """Full-scale samples (1.0 = 0 dBFS) for a sound pressure at the capsule (Pa)."""
        x = highpass(pressure_pa * 10.0 ** (self.sensitivity_dbfs / 20.0), self.low_cut_hz)
        # the sounds are rendered through the ADC's anti-alias filter already (see band_limited); what saturation
        # adds is made here, so it is band-limited here
        x = x + self._overload(x)
        x = highpass(x, self.dc_block_hz)
        return x + rng.standard_normal(len(x)) * 10.0 ** (self.noise_dbfs / 20.0)

    def _overload(self, x: Float64Array, oversample: int = 4, margin: int = 256) -> Float64Array:
        """What saturation adds to ``x``, ``L·tanh(x/L) - x``, through the ADC's anti-alias filter; zero where the
        signal stays 12 dB or more below the saturation level ``L``.

        The capsule saturates before the ADC filters, so the harmonics it makes above 8 kHz must not fold back:
        the saturation is computed at ``oversample`` times the rate and band-limited there by the filter's
        magnitude (zero phase: ``x`` carries the filter's delay already, and so stays aligned with what saturation
        adds; the little that rings ahead lies inside a loud stretch, never before the first sample that saturates
        by more than a few samples).
        """
        limit = 10.0 ** (self.saturation_dbfs / 20.0)
        out = np.zeros_like(x)
        hot = np.flatnonzero(np.abs(x) > limit / 4.0)
        if len(hot) == 0:
            return out
        breaks = np.flatnonzero(np.diff(hot) > 2 * margin)
        for first, last in zip(
            np.concatenate(([hot[0]], hot[breaks + 1])), np.concatenate((hot[breaks], [hot[-1]])), strict=True
        ):
            lo, hi = max(int(first) - margin, 0), min(int(last) + margin + 1, len(x))
            n = 2 << (hi - lo - 1).bit_length()  # room for the filter's ringing after the segment
            up = np.fft.irfft(np.fft.rfft(x[lo:hi], n), n * oversample) * oversample
            added = np.fft.rfft(limit * np.tanh(up / limit) - up)
            added *= np.abs(adc_response(np.fft.rfftfreq(n * oversample, 1.0 / (SR * oversample)).astype(np.float64)))
            out[lo:hi] += np.fft.irfft(added, n * oversample)[::oversample][: hi - lo]
        return out
