"""tools.augment: the street channel, synthetic bursts, truncation and thumps keep onsets where training expects
them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the train extra is not installed")

from tools.augment import (
    SR,
    AugmentParams,
    burst,
    channel,
    equalise,
    far_field,
    mix_event,
    shelf,
    street_bank,
    through_street,
    thump,
)


def click(n: int = 4000, at: int = 1000) -> np.ndarray:
    x = np.zeros(n, np.float32)
    x[at] = 0.5
    return x


def test_street_bank_is_seeded_and_its_direct_sound_has_unit_gain() -> None:
    a, b = street_bank(3, seed=7), street_bank(3, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(street_bank(1, seed=8)[0], a[0])
    for ir in a:
        # the direct sound (gain 1, a little spread by air absorption and the ADC band) leads; the ground
        # reflection can add up to as much again within a few samples when the source is far
        assert int(np.argmax(np.abs(ir))) < 16 and 0.5 < float(np.abs(ir).max()) < 2.0
        # then echoes and a diffuse tail: far more energy than the direct sound alone
        assert float(np.sum(ir[64:] ** 2)) > 0.1 * float(np.sum(ir[:64] ** 2))


def test_through_street_keeps_the_onset_and_adds_a_bounded_tail() -> None:
    ir = street_bank(1, seed=1)[0]
    out = through_street(click(), ir, tail_s=0.5)
    assert len(out) == 4000 + min(len(ir) - 1, SR // 2)
    assert np.all(np.abs(out[:1000]) < 1e-6)  # nothing before the event's onset
    assert int(np.argmax(np.abs(out) > 0.05 * np.abs(out).max())) in range(1000, 1008)


def test_burst_places_copies_at_the_offsets_it_returns() -> None:
    rng = np.random.default_rng(0)
    out, offsets = burst(click(), rng, rounds=(5, 5), spacing_s=(0.06, 0.06))
    assert len(offsets) == 5 and offsets[0] == 0
    assert np.all(np.abs(np.diff(offsets) - 0.06 * SR) <= 0.05 * 0.06 * SR + 1)
    peaks = np.flatnonzero(out > 0.1)
    assert peaks.tolist() == (1000 + offsets).tolist()
    assert np.all((out[peaks] <= 0.5 + 1e-6) & (out[peaks] >= 0.5 * 10 ** (-4 / 20) - 1e-6))


def test_mix_event_without_a_bank_draws_as_before() -> None:
    """An empty street bank consumes no random numbers, so recipes without it reproduce old clips exactly."""
    params = AugmentParams()
    pool = [np.random.default_rng(3).standard_normal(SR).astype(np.float32) * 0.01]
    a = mix_event(click(), 1000, pool, np.random.default_rng(5), params)
    b = mix_event(click(), 1000, pool, np.random.default_rng(5), params, ())
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_a_truncated_clip_ends_within_its_range_after_the_event_onset() -> None:
    params = AugmentParams(p_end_after_event=1.0, end_after_s=(0.1, 0.2))
    pool = [np.random.default_rng(3).standard_normal(SR).astype(np.float32) * 0.01]
    for seed in range(20):
        clip, offset = mix_event(click(8000), 1000, pool, np.random.default_rng(seed), params)
        after = len(clip) - (offset + 1000)
        assert round(0.1 * SR) <= after <= round(0.2 * SR)


def test_a_thump_adds_low_frequency_energy_from_the_onset_on() -> None:
    params = AugmentParams(thump_ms=(60.0, 60.0), thump_db=(6.0, 6.0))
    x = click(8000, at=2000)
    out = thump(x, 2000, np.random.default_rng(0), params)
    assert np.array_equal(out[:2000], x[:2000])  # nothing before the onset
    pulse = out - x
    assert abs(np.abs(pulse).max() / 0.5 - 10 ** (6 / 20)) < 0.01  # the peak 6 dB above the event's
    assert np.count_nonzero(pulse) == round(0.06 * SR) - 1  # 60 ms (the half-sine's first sample is 0)
    spectrum = np.abs(np.fft.rfft(pulse)) ** 2
    freqs = np.fft.rfftfreq(len(pulse), 1 / SR)
    assert spectrum[freqs < 40].sum() > 10 * spectrum[(freqs > 60) & (freqs < 7800)].sum()


def test_a_poor_channel_hard_clips_or_band_limits_the_whole_clip() -> None:
    params = AugmentParams(channel_gain_db=(20.0, 20.0), channel_band_hz=(3000.0, 3000.0))
    x = np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.1
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    kinds = set()
    for seed in range(12):
        out = channel(x, np.random.default_rng(seed), params)
        assert out.shape == x.shape and out.dtype == np.float32
        if np.count_nonzero(np.abs(out) == 1.0) > len(x) // 4:  # 20 dB over its peak: flattened at full scale
            kinds.add("clip")
            assert np.abs(out).max() == 1.0
        else:
            kinds.add("band")
            spectrum = np.abs(np.fft.rfft(out)) ** 2
            assert spectrum[freqs > 6000].sum() < 1e-3 * spectrum[freqs < 2000].sum()
    assert kinds == {"clip", "band"}


def test_mix_event_uses_the_channel_only_when_asked() -> None:
    pool = [np.random.default_rng(3).standard_normal(SR).astype(np.float32) * 0.01]
    event = click(8000) * 2  # peak 1.0 once normalised
    plain = [mix_event(event, 1000, pool, np.random.default_rng(s), AugmentParams(p_clip=0.0))[0] for s in range(6)]
    poor = AugmentParams(p_clip=0.0, p_channel=1.0, channel_band_hz=(2500.0, 2500.0), channel_gain_db=(24.0, 24.0))
    changed = [mix_event(event, 1000, pool, np.random.default_rng(s), poor)[0] for s in range(6)]
    # the channel comes after the clip is cut: same lengths, other samples
    assert all(a.shape == b.shape for a, b in zip(plain, changed, strict=True))
    assert all(not np.array_equal(a, b) for a, b in zip(plain, changed, strict=True))


@pytest.mark.parametrize(
    ("kind", "corner", "gain"), [("low", 150.0, 12.0), ("low", 100.0, -6.0), ("high", 3000.0, -12.0)]
)
def test_a_shelf_sets_its_gain_on_its_side_of_the_corner_and_leaves_the_other(
    kind: str, corner: float, gain: float
) -> None:
    from scipy import signal

    low, high = [30.0, 50.0], [6000.0, 7900.0]
    inside, outside = (low, high) if kind == "low" else (high, low)
    _, h = signal.sosfreqz(shelf(kind, corner, gain)[None], worN=[*inside, corner, *outside], fs=SR)
    db = 20 * np.log10(np.abs(h))
    assert np.allclose(db[:2], gain, atol=0.6 if kind == "low" else 0.3)
    assert abs(db[2] - gain / 2) < 0.3  # half the gain at the corner
    assert np.allclose(db[3:], 0.0, atol=0.2)


def test_equalise_colours_events_only_when_asked_and_is_seeded() -> None:
    params = AugmentParams(low_shelf_db=(18.0, 18.0), low_shelf_hz=(200.0, 200.0), high_shelf_db=(0.0, 0.0))
    x = np.random.default_rng(4).standard_normal(SR).astype(np.float32) * 0.05
    out = equalise(x, np.random.default_rng(0), params)
    assert out.dtype == np.float32 and np.array_equal(out, equalise(x, np.random.default_rng(0), params))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    gain = (np.abs(np.fft.rfft(out)) ** 2) / (np.abs(np.fft.rfft(x)) ** 2)
    assert 10 * np.log10(gain[(freqs > 20) & (freqs < 80)].mean()) > 15
    assert abs(10 * np.log10(gain[freqs > 2000].mean())) < 0.5
    pool = [np.random.default_rng(3).standard_normal(SR).astype(np.float32) * 0.01]
    off = AugmentParams(p_clip=0.0)
    on = AugmentParams(p_clip=0.0, p_eq=1.0)
    plain = mix_event(click(8000), 1000, pool, np.random.default_rng(5), off)[0]
    # p_eq 0 draws nothing: the default recipe's clips stay as they were
    assert np.array_equal(
        plain, mix_event(click(8000), 1000, pool, np.random.default_rng(5), AugmentParams(p_clip=0.0, p_eq=0.0))[0]
    )
    assert not np.array_equal(plain, mix_event(click(8000), 1000, pool, np.random.default_rng(5), on)[0])


def test_far_field_takes_the_highs_and_adds_a_long_tail() -> None:
    params = AugmentParams(far_lowpass_hz=(800.0, 800.0), far_rt60_s=(1.5, 1.5), far_wet=(0.6, 0.6))
    x = np.zeros(2 * SR, np.float32)
    x[1000:1080] = np.random.default_rng(1).standard_normal(80).astype(np.float32) * 0.5
    out = far_field(x, np.random.default_rng(0), params)
    assert out.dtype == np.float32 and len(out) == len(x)
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    assert spectrum[freqs > 3000].sum() < 1e-3 * spectrum[freqs < 800].sum()
    # half a second later a tail (~20 dB of decay at 1.5 s RT60, spread thin) where the dry event had nothing
    head, tail = np.mean(out[1000:1160] ** 2), np.mean(out[9000:10600] ** 2)
    assert 10 * np.log10(tail / head) > -40


def test_far_events_are_drawn_only_when_asked_and_sit_lower_in_the_ambience() -> None:
    pool = [np.random.default_rng(3).standard_normal(4 * SR).astype(np.float32) * 0.01]
    base = AugmentParams(p_clip=0.0, p_studio=0.0, p_start_with_event=0.0, p_lowpass=0.0, p_reverb=0.0)
    plain = mix_event(click(8000), 1000, pool, np.random.default_rng(5), base)[0]
    # p_far 0 draws nothing: the default recipe's clips stay as they were
    same = mix_event(click(8000), 1000, pool, np.random.default_rng(5), replace(base, p_far=0.0))[0]
    assert np.array_equal(plain, same)
    ratios = []
    for far in (0.0, 1.0):
        params = replace(base, p_far=far, snr_db=(25.0, 25.0), far_snr_db=(5.0, 5.0))
        x = mix_event(click(8000), 1000, pool, np.random.default_rng(5), params)[0].astype(np.float64)
        ratios.append(np.max(np.abs(x)) / np.median(np.abs(x)))
    assert ratios[1] < ratios[0] / 3
