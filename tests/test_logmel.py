"""The log-mel front end against the plain formulas it implements in place: equal bit for bit."""

import numpy as np
import numpy.typing as npt
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from edge.dsp.logmel import FloatArray, FrontEndParams, LogMel

FE = FrontEndParams()


def reference_power_db(samples: npt.NDArray[np.int16], logmel: LogMel) -> FloatArray:
    p = logmel.params
    x = samples.astype(np.float32) * np.float32(1.0 / 32768.0)
    window = np.hanning(p.n_fft + 1)[:-1].astype(np.float32)
    frames = sliding_window_view(x, p.n_fft)[:: p.hop] * window
    spectrum = np.fft.rfft(frames.astype(np.float64), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return (10.0 * np.log10(power @ logmel.mel_matrix + np.float32(1e-12))).astype(np.float32)


def reference_patch(window: npt.NDArray[np.int16], logmel: LogMel) -> FloatArray:
    db = reference_power_db(window, logmel)
    rel = np.maximum(db - db.max(), np.float32(logmel.params.floor_db))
    return (rel / np.float32(-logmel.params.floor_db)).astype(np.float32)


def windows(n: int, seed: int) -> npt.NDArray[np.int16]:
    """Noise from near-silence to clipping, with an attack after the pre-onset part, plus digital silence."""
    rng = np.random.default_rng(seed)
    level = 10.0 ** rng.uniform(-1, 4.7, (n, 1))
    x = rng.standard_normal((n, FE.window_samples)) * level
    x[:, FE.pre_samples :] *= rng.uniform(1, 30, (n, 1))
    x[0] = 0.0
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("seed", range(3))
def test_patches_equal_the_plain_formulas_bit_for_bit(seed: int) -> None:
    logmel = LogMel()
    batch = windows(12, seed)
    got = logmel.patches(batch)
    expected = np.stack([reference_patch(w, logmel) for w in batch])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # the work arrays carry nothing from one call to the next
    np.testing.assert_array_equal(logmel.patch(batch[3]), expected[3])


def test_any_length_and_strided_input() -> None:
    logmel = LogMel()
    long = windows(1, 7)[0]
    x = np.concatenate((long, long[::-1]))
    for samples in (x, x[: FE.n_fft], x[::2], x[1::3]):
        np.testing.assert_array_equal(logmel.power_db(samples), reference_power_db(samples, logmel))
    np.testing.assert_array_equal(logmel.patch(x[::2]), reference_patch(x[::2].copy(), logmel))
    with pytest.raises(ValueError, match="n_fft"):
        logmel.power_db(x[: FE.n_fft - 1])


def test_empty_batch() -> None:
    assert LogMel().patches(np.zeros((0, FE.window_samples), np.int16)).shape == (0, FE.n_frames, FE.n_mels)
