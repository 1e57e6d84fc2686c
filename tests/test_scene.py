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
from edge.scene.compose import EDGE_S, GUNSHOT, MIN_GAP_S, to_int16
from edge.scene.sounds import SR, single_shot

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
        assert -22.0 <= max(peaks) <= -0.4, e.note
    assert -15.0 < dbfs(s.samples) <= -0.4


def test_conversion_clips_instead_of_wrapping() -> None:
    out = to_int16(np.array([1.5, 1.0, -1.0, -1.5, 0.5]))
    assert out.tolist() == [32767, 32767, -32768, -32768, 16384]


def test_close_shot_is_slightly_clipped() -> None:
    shot = single_shot(np.random.default_rng(0), distance_m=30.0, peak_dbfs=-4.0)
    magnitude = np.abs(shot.samples)
    limit = float(magnitude.max())
    assert limit == pytest.approx(10.0 ** (-4.0 / 20.0), rel=1e-5)
    # a plateau of a few samples (a fraction of a millisecond), not a square wave
    assert 3 <= int(np.count_nonzero(magnitude >= limit * 0.9999)) <= 40


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


@pytest.mark.parametrize("seed", SEEDS)
def test_gate_finds_every_placed_impulse(seed: int) -> None:
    s = scene(seed)
    cands = np.array([c.onset for c in OnsetGate().process(s.samples)], dtype=np.int64)
    for e in s.events:
        if e.kind in NOT_IMPULSIVE:
            continue
        tolerance = GUN_TOLERANCE if e.kind == GUNSHOT else OTHER_TOLERANCE
        errors = [_nearest(cands, i) for i in e.impulses]
        assert all(abs(err) <= tolerance for err in errors), f"{e.note}: {errors}"


@pytest.mark.parametrize("seed", SEEDS)
def test_gate_gives_one_candidate_per_round(seed: int) -> None:
    """Every round has a candidate of its own; full-auto fire gives nothing else (façade echoes of the slower
    bursts may add candidates, which the classifier or the burst tracker's echo rule must drop: see the model
    test)."""
    s = scene(seed)
    cands = np.array([c.onset for c in OnsetGate().process(s.samples)], dtype=np.int64)
    for e in s.gunshots:
        inside = cands[(cands >= e.onset_sample - GUN_TOLERANCE) & (cands <= e.impulses[-1] + GUN_TOLERANCE)]
        rounds = np.asarray(e.impulses)
        nearest = np.abs(inside[:, None] - rounds[None, :])
        matched = nearest.min(axis=1) <= GUN_TOLERANCE
        assert len(set(nearest.argmin(axis=1)[matched].tolist())) == int(matched.sum()) == e.rounds, (
            f"{e.note}: candidates {(inside - e.onset_sample).tolist()}"
        )
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
def test_model_raises_no_false_alarm_and_counts_only_real_rounds(seed: int) -> None:
    """No detection outside a burst; a detected burst has one detection whose rounds are real rounds (within 5 ms)
    and never more than were fired (a round under the threshold is missed, never invented)."""
    s = scene(seed)
    finals, scored = _finals(s)
    report = [(round(o / SR, 3), round(sc, 3), getattr(_event_at(s, o), "kind", "ambience")) for o, sc in scored]
    spans = _spans(s)
    for d in finals:
        assert any(lo <= d.onset <= hi for lo, hi in spans), ("detection outside any burst", d.onset, report)
    for e, (lo, hi) in zip(s.gunshots, spans, strict=True):
        inside = [d for d in finals if lo <= d.onset <= hi]
        assert len(inside) <= 1, (e.note, len(inside), report)
        counted = [i.onset for d in inside for i in d.impulses]
        assert len(counted) <= e.rounds, (e.note, counted, report)
        assert all(min(abs(o - r) for r in e.impulses) <= GUN_TOLERANCE for o in counted), (e.note, report)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.xfail(
    strict=True,
    reason="known shortfall: some synthetic rounds (semi-auto first rounds, full-auto) score 0.5-0.95, under the "
    "model's threshold (0.969), so a burst can go undetected",
)
def test_model_detects_every_burst(seed: int) -> None:
    s = scene(seed)
    finals, _ = _finals(s)
    assert all(any(lo <= d.onset <= hi for d in finals) for lo, hi in _spans(s))


def _spans(s: Scene) -> list[tuple[int, int]]:
    return [(e.impulses[0] - GUN_TOLERANCE, e.impulses[-1] + GUN_TOLERANCE) for e in s.gunshots]
