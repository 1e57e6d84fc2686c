"""The resampler and the sample-format helpers: chunk invariance, frequency response, gain, timing."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.audio.resample import (
    Resampler,
    float_to_int16,
    mix_to_mono,
    resample,
    to_float32,
    to_mono_int16,
)

RATES = [48_000, 44_100, 22_050, 32_000, 8_000]


def tone(freq_hz: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def gain_db(freq_hz: float, rate: int) -> float:
    """Steady-state gain of a tone through rate → 16 kHz, in dB (edges, where the filter sees zeros, cut off)."""
    out = resample(tone(freq_hz, rate), rate)[2000:-2000]
    return 20 * math.log10(math.sqrt(2) * float(out.std()) / 0.5)


def peak_hz(samples: npt.NDArray[np.float32], rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


def test_int16_float_round_trip_is_exact() -> None:
    x = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    assert np.array_equal(float_to_int16(to_float32(x)), x)


def test_float_to_int16_rounds_and_clips() -> None:
    x = np.array([1.5, -2.0, 0.5 / 32768, 1.4 / 32768, -1.0, 0.99999], dtype=np.float32)
    assert float_to_int16(x).tolist() == [32767, -32768, 0, 1, -32768, 32767]


def test_other_integer_formats_scale_to_full_range() -> None:
    assert to_float32(np.array([0, 128, 255], dtype=np.uint8)).tolist() == [-1.0, 0.0, 127 / 128]
    assert to_float32(np.array([-(2**31), 2**30], dtype=np.int32)).tolist() == [-1.0, 0.5]
    assert to_float32(np.array([0.25], dtype=np.float64)).dtype == np.float32


def test_mix_down_takes_the_channel_mean() -> None:
    stereo = np.array([[1000, 3000], [-2000, 0], [32767, 32767]], dtype=np.int16)
    assert to_mono_int16(stereo).tolist() == [2000, -1000, 32767]
    assert mix_to_mono(np.zeros((4, 1), dtype=np.float32)).shape == (4,)
    with pytest.raises(ValueError, match="frames, channels"):
        mix_to_mono(np.zeros((2, 2, 2), dtype=np.float32))


def test_mono_int16_passes_through_as_a_copy() -> None:
    x = np.arange(10, dtype=np.int16)
    y = to_mono_int16(x)
    assert np.array_equal(x, y) and y is not x


def test_ratio_is_reduced_and_48k_takes_the_integer_path() -> None:
    assert (Resampler(44_100).up, Resampler(44_100).down) == (160, 441)
    assert (Resampler(48_000).up, Resampler(48_000).down) == (1, 3)
    assert (Resampler(8_000).up, Resampler(8_000).down) == (2, 1)
    assert Resampler(16_000).passthrough


def test_16k_is_passed_through_unchanged() -> None:
    x = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    assert np.array_equal(resample(x, 16_000), x)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("n_in", [0, 1, 2, 7, 441, 4_800, 12_345])
def test_output_length_is_ceil_of_the_ratio(rate: int, n_in: int) -> None:
    out = resample(np.ones(n_in, dtype=np.float32), rate)
    assert len(out) == math.ceil(n_in * 16_000 / rate)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from(RATES),
    chunk_sizes=st.lists(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=25),
)
def test_output_does_not_depend_on_chunking(rate: int, chunk_sizes: list[int]) -> None:
    signal = np.random.default_rng(rate).uniform(-1, 1, sum(chunk_sizes) + 17).astype(np.float32)
    whole = resample(signal, rate)
    resampler = Resampler(rate)
    parts, start = [], 0
    for size in [*chunk_sizes, 17]:
        parts.append(resampler.process(signal[start : start + size]))
        start += size
    parts.append(resampler.flush())
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("rate", [48_000, 44_100, 22_050, 32_000])
def test_1khz_keeps_its_amplitude_within_half_a_db(rate: int) -> None:
    assert abs(gain_db(1_000, rate)) < 0.5


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_7_9khz_passes_at_its_own_frequency(rate: int) -> None:
    """Just under the 8 kHz Nyquist: inside the transition band (about -5 dB), and not aliased."""
    assert -6.0 < gain_db(7_900, rate) < 0.0
    out = resample(tone(7_900, rate), rate)[2000:-2000]
    assert abs(peak_hz(out) - 7_900) < 5


@pytest.mark.parametrize("rate", [48_000, 44_100, 22_050, 32_000])
def test_10khz_is_attenuated_by_at_least_40db(rate: int) -> None:
    assert gain_db(10_000, rate) <= -40.0


def test_upsampling_8k_keeps_1khz_and_adds_no_images() -> None:
    out = resample(tone(1_000, 8_000), 8_000)[1000:-1000]
    assert abs(20 * math.log10(math.sqrt(2) * float(out.std()) / 0.5)) < 0.5
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    image = spectrum[round(7_000 * len(out) / 16_000)]  # the 8k - 1k image
    assert 20 * math.log10(image / spectrum.max()) < -50


@pytest.mark.parametrize("rate", RATES)
def test_dc_gain_is_one(rate: int) -> None:
    out = resample(np.full(rate, 0.25, dtype=np.float32), rate)[200:-200]
    assert np.allclose(out, 0.25, atol=2e-4)


@pytest.mark.parametrize("rate", RATES)
def test_no_delay_an_impulse_stays_at_its_time(rate: int) -> None:
    """Onset times must survive resampling: input at t = 0.1 s comes out at output sample 1600."""
    x = np.zeros(rate // 2, dtype=np.float32)
    x[rate // 10] = 1.0
    assert int(np.argmax(resample(x, rate))) == 1_600


def test_bad_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0)


def test_reset_starts_a_new_stream() -> None:
    x = np.random.default_rng(3).standard_normal(5_000).astype(np.float32)
    resampler = Resampler(44_100)
    first = resampler.process(x)
    resampler.reset()
    assert np.array_equal(resampler.process(x), first)
