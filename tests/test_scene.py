"""The synthetic demo scene: determinism, levels, ground truth, the onset gate on it and (with the model) detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from edge.detect.bursts import BurstParams, Detection
from edge.detect.detector import PEAK_SPAN
from edge.dsp.onset import OnsetGate
from edge.scene import Scene, SceneEvent, demo_scene, write_scene
from edge.scene.acoustics import SR, Microphone, friedlander
from edge.scene.compose import EDGE_S, GUNSHOT, MIN_GAP_S, to_int16
from edge.scene.guns import PISTOL, RIFLE, bullet_crack, gunshot_burst, weak_shock
from edge.scene.sounds import firecrackers
from edge.scene.street import Street, impulse_response

SEEDS = (0, 1, 2, 3, 4)
NOT_IMPULSIVE = {"whoosh"}
"""Events that have no sharp attack: the gate may or may not fire on them, the classifier must reject them."""
GUN_TOLERANCE = 80
"""Samples (5 ms): how close a candidate or detection must be to a shot's true onset (TDOA needs this)."""
OTHER_TOLERANCE = 320
"""Samples (20 ms): the gate may place a soft, quiet impulse up to two blocks early in street ambience."""

_scenes: dict[int, Scene] = {}


def scene(seed: int) -> Scene:
    if seed not in _scenes:
        _scenes[seed] = demo_scene(seed)
    return _scenes[seed]


def dbfs(x: npt.NDArray[np.int16]) -> float:
    return float(20.0 * np.log10(max(float(np.abs(x.astype(np.int32)).max()), 1.0) / 32768.0))


def rms_dbfs(x: npt.NDArray[np.int16]) -> float:
    return float(10.0 * np.log10(np.mean(x.astype(np.float64) ** 2) / 32768.0**2))


def peak_after(s: Scene, onset: int) -> float:
    return dbfs(s.samples[onset : onset + PEAK_SPAN])


# ----------------------------------------------------------------------------------------- determinism and format


def test_same_seed_same_samples_and_events() -> None:
    a, b = demo_scene(3), demo_scene(3)
    assert np.array_equal(a.samples, b.samples)
    assert a.events == b.events


def test_other_seed_other_scene() -> None:
    assert not np.array_equal(scene(0).samples, scene(1).samples)


@pytest.mark.parametrize("seed", SEEDS)
def test_shape_dtype_and_levels(seed: int) -> None:
    s = scene(seed)
    assert s.samples.dtype == np.int16 and s.samples.ndim == 1
    assert len(s.samples) == 60 * SR and s.sample_rate == SR
    # ambience between events at a realistic street level
    quiet = s.samples[SR : s.events[0].onset_sample - SR // 2]
    assert -47.0 <= rms_dbfs(quiet) <= -33.0
    for e in s.gunshots:
        peaks = [peak_after(s, i) for i in e.impulses]
        assert max(peaks) >= -22.0, e.note
    # the capsule saturates under full scale; only the ADC filter's ringing on a flattened top may reach it
    assert dbfs(s.samples) > -15.0
    assert int(np.count_nonzero(np.abs(s.samples.astype(np.int32)) >= 32767)) <= 3


def test_conversion_clips_instead_of_wrapping() -> None:
    out = to_int16(np.array([1.5, 1.0, -1.0, -1.5, 0.5]))
    assert out.tolist() == [32767, 32767, -32768, -32768, 16384]


def test_close_shot_overloads_the_microphone() -> None:
    """A pistol 20 m away peaks far above the capsule's overload point: the recording flattens near the
    saturation level (a rounded top of a few samples, not a square wave) and never reaches full scale."""
    rng = np.random.default_rng(0)
    shot = gunshot_burst(rng, PISTOL, 1, (0.0, 0.0), 20.0, Street.draw(rng), aim_deg=(0.0, 45.0))
    assert shot.peak_spl > 130.0
    magnitude = np.abs(Microphone().record(shot.samples, rng))
    top = float(magnitude.max())
    assert 10.0 ** (-4.0 / 20.0) <= top <= 10.0 ** (-0.4 / 20.0)
    assert 3 <= int(np.count_nonzero(magnitude >= top * 10.0 ** (-1.0 / 20.0))) <= 40


def test_blast_wave_has_no_net_impulse_and_a_short_positive_phase() -> None:
    pulse = friedlander(0.0006)
    assert abs(float(pulse.sum())) < 0.05 * float(pulse.max())
    peak = int(np.argmax(pulse))
    rise, fall = int(np.argmax(pulse > 0.1 * pulse[peak])), peak + int(np.argmax(pulse[peak:] < 0.0))
    assert peak - rise <= 3 and 0.0004 * SR <= fall - rise <= 0.0008 * SR
    # the shock stretches on its way and its peak falls faster than 1/r
    at_1m, stretched = weak_shock(2000.0, 0.0006, 100.0)  # 160 dB SPL 1 m out, heard 100 m out
    assert 0.0006 * 1.1 < stretched < 0.0006 * 1.4 and 2000.0 / 1.4 < at_1m < 2000.0 / 1.1


def test_direct_sound_spreads_and_loses_its_highs() -> None:
    rng = np.random.default_rng(1)
    open_place = Street(
        width_m=2000.0, pole_offset_m=3.0, facade_reflection=0.8, scattering=0.5, rt60_s=0.5, ground_reflection=0.0
    )
    near, far = (impulse_response(open_place, np.array([d, 3.0, 4.0]), rng, diffuse=False)[:256] for d in (20.0, 160.0))
    assert 20.0 * np.log10(near.sum() / far.sum()) == pytest.approx(18.1, abs=0.5)  # 1/r at low frequencies

    def tilt_db(ir: npt.NDArray[np.float64]) -> float:  # 4-7 kHz against 250 Hz-1 kHz
        spec = np.abs(np.fft.rfft(ir, 1024))
        return float(20.0 * np.log10(spec[256:448].mean() / spec[16:64].mean()))

    assert tilt_db(far) < tilt_db(near) - 3.0  # 140 m more of air absorbs 4-8 dB there


def test_firecrackers_crackle_for_a_second_or_more() -> None:
    rng = np.random.default_rng(3)
    sound = firecrackers(rng, Street.draw(rng), distance_m=40.0, peak_db=110.0)
    assert sound.onset == 0 and list(sound.onsets) == sorted(set(sound.onsets))
    assert sound.peak_spl == pytest.approx(110.0)
    loud = np.flatnonzero(np.abs(sound.samples) > 0.1 * np.abs(sound.samples).max())
    assert loud[-1] - loud[0] > SR


def test_rifle_bullet_cracks_ahead_of_the_blast() -> None:
    """Fired along the street past the pole: the supersonic bullet's N-wave (0.2-0.5 ms) arrives first, the
    muzzle blast as much later as the geometry says."""
    rng = np.random.default_rng(2)
    street = Street(width_m=20.0, pole_offset_m=3.0, facade_reflection=0.8, scattering=0.6, rt60_s=0.8)
    muzzle, barrel = np.array([-60.0, 8.0, 1.5]), np.array([1.0, 0.0, 0.0])
    crack = bullet_crack(RIFLE, muzzle, barrel, street.microphone)
    assert crack is not None and 0.0002 <= crack.duration_s <= 0.0005
    blast_s = float(np.linalg.norm(street.microphone - muzzle)) / 343.0
    assert 0.05 < blast_s - crack.delay_s < 0.1
    assert bullet_crack(RIFLE, muzzle, -barrel, street.microphone) is None  # fired away: no crack
    sound = gunshot_burst(rng, RIFLE, 1, (0.0, 0.0), 60.0, street, aim_deg=(0.0, 5.0))
    magnitude = np.abs(sound.samples[sound.onset :])
    # the shock, its reflection off the street a few ms later, silence, then the blast
    crack, gap = magnitude[: round(0.001 * SR)].max(), magnitude[round(0.015 * SR) : round(0.04 * SR)].max()
    assert crack > 10.0 * gap and magnitude[round(0.04 * SR) : round(0.12 * SR)].max() > 10.0 * gap


def test_write_scene_round_trip(tmp_path: Path) -> None:
    s = scene(0)
    path = write_scene(s, tmp_path / "scene.flac")
    back, rate = sf.read(str(path), dtype="int16")
    assert rate == SR and np.array_equal(back, s.samples)


def test_too_short_a_scene_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least"):
        demo_scene(0, duration_s=20.0)


# ------------------------------------------------------------------------------------------------ ground truth


@pytest.mark.parametrize("seed", SEEDS)
def test_ground_truth_is_consistent(seed: int) -> None:
    s = scene(seed)
    onsets = [e.onset_sample for e in s.events]
    assert onsets == sorted(onsets)
    for e in s.events:
        assert e.rounds == len(e.impulses) >= 1
        assert e.impulses[0] == e.onset_sample
        assert list(e.impulses) == sorted(e.impulses)
        assert e.onset_sample >= EDGE_S * SR and e.impulses[-1] <= len(s.samples) - EDGE_S * SR
    for before, after in zip(s.events, s.events[1:], strict=False):
        assert after.onset_sample - before.impulses[-1] >= MIN_GAP_S * SR
    # gaps between bursts exceed the burst gap, so no two bursts can merge
    assert BurstParams().gap_s < MIN_GAP_S


@pytest.mark.parametrize("seed", SEEDS)
def test_the_three_kinds_of_fire(seed: int) -> None:
    rounds = sorted(e.rounds for e in scene(seed).gunshots)
    assert len(rounds) == 3
    assert rounds[0] == 1 and 3 <= rounds[1] <= 5 and 8 <= rounds[2] <= 12
    for e in scene(seed).gunshots:
        spacing = np.diff(e.impulses) / SR
        if e.rounds >= 8:
            assert np.all((spacing >= 1 / 15.5) & (spacing <= 1 / 11.5)), spacing
        elif e.rounds > 1:
            assert np.all((spacing >= 0.15) & (spacing <= 0.5)), spacing
    kinds = {e.kind for e in scene(seed).events} - {GUNSHOT}
    assert kinds == {"door_slam", "car_door", "hand_claps", "knocking", "hammering", "dropped_object", "whoosh"}


# ----------------------------------------------------------------------------------------------- the onset gate


def _nearest(candidates: npt.NDArray[np.int64], at: int) -> int:
    return int(candidates[np.argmin(np.abs(candidates - at))] - at)


def _candidates(s: Scene) -> npt.NDArray[np.int64]:
    return np.array([c.onset for c in OnsetGate().process(s.samples)], dtype=np.int64)


@pytest.mark.parametrize("seed", SEEDS)
def test_gate_finds_every_placed_impulse(seed: int) -> None:
    """Every impulse of the other events, and the first round of every burst (it breaks a quiet street)."""
    s = scene(seed)
    cands = _candidates(s)
    for e in s.events:
        if e.kind in NOT_IMPULSIVE:
            continue
        tolerance = GUN_TOLERANCE if e.kind == GUNSHOT else OTHER_TOLERANCE
        errors = [_nearest(cands, i) for i in (e.impulses[:1] if e.kind == GUNSHOT else e.impulses)]
        assert all(abs(err) <= tolerance for err in errors), f"{e.note}: {errors}"


@pytest.mark.parametrize("seed", SEEDS)
def test_gate_never_splits_a_round(seed: int) -> None:
    """No round has two candidates (echoes may add candidates between rounds, which the classifier or the burst
    tracker's echo rule must drop: see the model test)."""
    s = scene(seed)
    cands = _candidates(s)
    for e in s.gunshots:
        inside = cands[(cands >= e.onset_sample - GUN_TOLERANCE) & (cands <= e.impulses[-1] + GUN_TOLERANCE)]
        nearest = np.abs(inside[:, None] - np.asarray(e.impulses)[None, :])
        matched = nearest.min(axis=1) <= GUN_TOLERANCE
        assert len(set(nearest.argmin(axis=1)[matched].tolist())) == int(matched.sum()), (
            f"{e.note}: candidates {(inside - e.onset_sample).tolist()}"
        )


@pytest.mark.xfail(
    strict=True,
    reason="known shortfall: in a street the echoes and reverberation of a round stay within a few dB of the next "
    "one 70-80 ms later (the gate's reference is the quietest block of the previous 40 ms), a façade echo just "
    "before a round can place its onset early, and a close rifle overloads the capsule: the gate misses or "
    "misplaces later rounds, most of all in full-auto fire",
)
def test_gate_finds_every_round_on_its_own() -> None:
    """Every round of every burst has a candidate within 5 ms, and full-auto fire gives nothing else."""
    for seed in SEEDS:
        s = scene(seed)
        cands = _candidates(s)
        for e in s.gunshots:
            errors = [_nearest(cands, i) for i in e.impulses]
            assert all(abs(err) <= GUN_TOLERANCE for err in errors), f"{e.note}: {errors}"
            inside = cands[(cands >= e.onset_sample - GUN_TOLERANCE) & (cands <= e.impulses[-1] + GUN_TOLERANCE)]
            if e.rounds >= 8:
                assert len(inside) == e.rounds, f"{e.note}: candidates {(inside - e.onset_sample).tolist()}"


# ------------------------------------------------------------------------------------------- the shipped model


def _model_or_skip() -> object:
    from edge.detect.runtime import DEFAULT_MODEL, TfliteModel

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"{DEFAULT_MODEL} not built yet")
    return TfliteModel()


def _finals(s: Scene, chunk: int = 1600) -> tuple[list[Detection], list[tuple[int, float]]]:
    from edge.detect.detector import StreamingDetector
    from edge.detect.runtime import TfliteModel

    model = _model_or_skip()
    assert isinstance(model, TfliteModel)
    det = StreamingDetector(model, threshold=model.info.threshold, keep_scores=True)
    found = list(det.run(s.samples[i : i + chunk] for i in range(0, len(s.samples), chunk)))
    return [d for d in found if d.phase == "final"], det.take_scored()


def _event_at(s: Scene, sample: int) -> SceneEvent | None:
    for e in s.events:
        if e.onset_sample - OTHER_TOLERANCE <= sample <= e.impulses[-1] + SR:
            return e
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_model_raises_no_false_alarm(seed: int) -> None:
    """No detection outside a burst, and at most one detection per burst."""
    s = scene(seed)
    finals, scored = _finals(s)
    report = [(round(o / SR, 3), round(sc, 3), getattr(_event_at(s, o), "kind", "ambience")) for o, sc in scored]
    spans = _spans(s)
    for d in finals:
        assert any(lo <= d.onset <= hi for lo, hi in spans), ("detection outside any burst", d.onset, report)
    for e, (lo, hi) in zip(s.gunshots, spans, strict=True):
        inside = [d for d in finals if lo <= d.onset <= hi]
        assert len(inside) <= 1, (e.note, len(inside), report)


def test_model_counts_only_real_rounds() -> None:
    """A detected burst's rounds are real rounds (within 5 ms) and never more than were fired (a round under the
    threshold is missed, never invented)."""
    for seed in SEEDS:
        s = scene(seed)
        finals, scored = _finals(s)
        report = [(round(o / SR, 3), round(sc, 3)) for o, sc in scored]
        for e, (lo, hi) in zip(s.gunshots, _spans(s), strict=True):
            counted = [i.onset for d in finals if lo <= d.onset <= hi for i in d.impulses]
            assert len(counted) <= e.rounds, (seed, e.note, counted, report)
            assert all(min(abs(o - r) for r in e.impulses) <= GUN_TOLERANCE for o in counted), (seed, e.note, report)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.xfail(
    strict=True,
    reason="known shortfall (model 0.6.1): synthetic pistol rounds 60-120 m away score mostly 0.3-0.97 and rifle "
    "rounds 100-200 m away 0.03-0.66, under the model's strict threshold (0.978), so a burst can go undetected",
)
def test_model_detects_every_burst(seed: int) -> None:
    s = scene(seed)
    finals, _ = _finals(s)
    assert all(any(lo <= d.onset <= hi for d in finals) for lo, hi in _spans(s))


def _spans(s: Scene) -> list[tuple[int, int]]:
    return [(e.impulses[0] - GUN_TOLERANCE, e.impulses[-1] + GUN_TOLERANCE) for e in s.gunshots]
