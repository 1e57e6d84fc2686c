"""The second look: a classifier (a longer window, or more networks) run only on candidates the first one found
gun-like."""

from dataclasses import replace

import numpy as np
import pytest

from edge.detect.detector import MeanLogit, SecondLook, StreamingDetector
from edge.dsp.logmel import FloatArray, FrontEndParams, LogMel
from tests.impulses import RATE, add_impulse, feed, noise, to_int16

LONG = replace(FrontEndParams(), pre_s=0.5)


class LoudnessScorer:
    """Scores a patch by its mean level, so the score depends on everything the window holds."""

    def __init__(self, gain: float = 20.0) -> None:
        self.gain = gain
        self.shapes: list[tuple[int, ...]] = []

    def predict(self, patches: FloatArray) -> FloatArray:
        self.shapes += [p.shape for p in patches]
        return (1.0 / (1.0 + np.exp(-(patches.mean(axis=(1, 2)) * self.gain + 8.0)))).astype(np.float32)


def scene() -> np.ndarray:
    x = noise(12.0, 40.0)
    for k, t in enumerate((1.0, 1.2, 3.0, 5.5, 5.6, 5.7, 9.0)):
        add_impulse(x, round(t * RATE), 3000.0 + 2000.0 * k)
    return to_int16(x)


def run(x: np.ndarray, chunk: int, from_score: float = 0.45, weight: float = 0.5) -> tuple[list[object], list[object]]:
    second = SecondLook(LoudnessScorer(gain=15.0), LONG, from_score=from_score, weight=weight)
    det = StreamingDetector(LoudnessScorer(), threshold=0.4, second_look=second, keep_scores=True)
    return list(det.run(feed(chunk, x))), list(det.take_scored())


@pytest.mark.parametrize("chunk", [160, 1000, 16_000])
def test_results_identical_whatever_the_chunk_size(chunk: int) -> None:
    x = scene()
    assert run(x, chunk) == run(x, 1600)


def test_runs_only_on_candidates_the_first_look_scored_high_enough() -> None:
    x = scene()
    first, second = LoudnessScorer(), LoudnessScorer(gain=15.0)
    plain = StreamingDetector(LoudnessScorer(), threshold=0.4, keep_scores=True)
    list(plain.run(feed(1600, x)))
    first_scores = [s for _, s in plain.take_scored()]
    det = StreamingDetector(first, 0.4, second_look=SecondLook(second, LONG, from_score=0.45), keep_scores=True)
    list(det.run(feed(1600, x)))
    looked = sum(s >= 0.45 for s in first_scores)
    assert 0 < looked < len(first_scores), "the scene must have candidates on both sides of from_score"
    assert det.stats.second_looks == len(second.shapes) == looked
    assert set(second.shapes) == {(LONG.n_frames, LONG.n_mels)}
    assert set(first.shapes) == {(FrontEndParams().n_frames, FrontEndParams().n_mels)}
    for (_, mixed), alone in zip(det.take_scored(), first_scores, strict=True):
        assert (mixed == alone) == (alone < 0.45)


def test_the_second_look_sees_its_own_longer_window() -> None:
    x = scene()
    seen: list[FloatArray] = []

    class Spy:
        def predict(self, patches: FloatArray) -> FloatArray:
            seen.extend(patches)
            return np.zeros(len(patches), dtype=np.float32)

    onset = round(3.0 * RATE)
    det = StreamingDetector(LoudnessScorer(), 0.4, second_look=SecondLook(Spy(), LONG, from_score=0.0))
    det.process(x[: onset + RATE])
    window = x[onset - LONG.pre_samples : onset + LONG.post_samples]
    assert any(np.array_equal(p, LogMel(LONG).patch(window)) for p in seen)


@pytest.mark.parametrize(("weight", "expected"), [(1.0, 0.9), (0.0, 0.2), (0.5, 0.6)])
def test_scores_mix_as_logits(weight: float, expected: float) -> None:
    look = SecondLook(LoudnessScorer(), LONG, from_score=0.5, weight=weight)
    first, second = np.array([0.2], np.float32), np.array([0.9], np.float32)
    if weight == 0.5:  # the logit mean: sigmoid((logit 0.2 + logit 0.9) / 2)
        expected = 1.0 / (1.0 + np.exp(-(np.log(0.25) + np.log(9.0)) / 2))
    assert look.combine(first, second)[0] == pytest.approx(expected, abs=1e-6)


def test_first_message_still_waits_only_for_the_first_window() -> None:
    """A second look that reaches no further past the onset than the first adds no latency."""
    x = scene()
    det = StreamingDetector(
        LoudnessScorer(), 0.0, second_look=SecondLook(LoudnessScorer(gain=15.0), LONG, from_score=0.0)
    )
    onset, post = round(9.0 * RATE), FrontEndParams().post_samples
    seen_at = None
    for i, piece in enumerate(feed(1600, x)):
        if any(d.phase == "new" and d.onset == onset for d in det.process(piece)):
            seen_at = (i + 1) * 1600
            break
    assert seen_at is not None and onset + post <= seen_at < onset + post + 1600


def test_refuses_a_second_look_at_another_sample_rate() -> None:
    other = replace(LONG, sample_rate=8_000)
    with pytest.raises(ValueError, match="sample rate"):
        StreamingDetector(LoudnessScorer(), 0.5, second_look=SecondLook(LoudnessScorer(), other, from_score=0.5))


class Constant:
    def __init__(self, score: float) -> None:
        self.score = score
        self.calls = 0

    def predict(self, patches: FloatArray) -> FloatArray:
        self.calls += 1
        return np.full(len(patches), self.score, dtype=np.float32)


def test_mean_logit_averages_the_networks_logits() -> None:
    patches = np.zeros((3, 2, 2), np.float32)
    scores = MeanLogit([Constant(0.2), Constant(0.9), Constant(0.5)]).predict(patches)
    expected = 1.0 / (1.0 + np.exp(-(np.log(0.25) + np.log(9.0) + 0.0) / 3))
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        MeanLogit([])


def test_an_ensemble_second_look_gives_the_mean_of_all_logits_on_the_same_window() -> None:
    """First network + MeanLogit of two more at weight 2/3 = the plain mean of the three logits, computed on the
    first look's own patches (no second log-mel)."""
    x = scene()
    seen: list[FloatArray] = []

    class Spy(LoudnessScorer):
        def predict(self, patches: FloatArray) -> FloatArray:
            seen.extend(patches)
            return super().predict(patches)

    first, members = LoudnessScorer(), [Spy(gain=15.0), LoudnessScorer(gain=25.0)]
    look = SecondLook(MeanLogit(members), FrontEndParams(), from_score=0.0, weight=2 / 3)
    det = StreamingDetector(first, 0.4, second_look=look, keep_scores=True)
    assert det._looks[1] is det.logmel
    list(det.run(feed(1600, x)))
    mixed = np.array([s for _, s in det.take_scored()])
    assert len(seen) == det.stats.second_looks == len(mixed) > 3
    patches = np.stack(seen)
    assert patches.shape[1:] == (FrontEndParams().n_frames, FrontEndParams().n_mels)
    logits = [_logit(LoudnessScorer(gain).predict(patches)) for gain in (20.0, 15.0, 25.0)]
    np.testing.assert_allclose(_logit(mixed), np.mean(logits, axis=0), atol=1e-3)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


def test_a_scorer_that_carries_a_second_look_brings_it_along() -> None:
    """A TfliteModel whose metadata names a second look has it as ``second_look``: no caller can forget it."""
    first = LoudnessScorer()
    first.second_look = SecondLook(Constant(0.99), FrontEndParams(), from_score=0.0)  # type: ignore[attr-defined]
    det = StreamingDetector(first, 0.4, keep_scores=True)
    list(det.run(feed(1600, scene())))
    assert det.second_look is first.second_look  # type: ignore[attr-defined]
    assert det.stats.second_looks == det.stats.candidates > 0
