import numpy as np
import pytest

from edge.detect.bursts import BurstParams, Detection
from edge.detect.detector import StreamingDetector
from edge.detect.runtime import DEFAULT_MODEL, TfliteModel
from edge.dsp.logmel import FloatArray, FrontEndParams, LogMel
from tests.impulses import RATE, add_impulse, feed, noise, to_int16


class ContentScorer:
    """Score depends on the whole window, so any difference in what the detector classifies shows up."""

    def predict(self, patches: FloatArray) -> FloatArray:
        return (1.0 / (1.0 + np.exp(-(patches.mean(axis=(1, 2)) * 20.0 + 8.0)))).astype(np.float32)


def stream() -> np.ndarray:
    x = noise(20.0, 40.0)
    add_impulse(x, 0, 15000.0)  # the stream begins with an impulse
    for t in (3.0, 3.3, 3.9):  # semi-auto
        add_impulse(x, round(t * RATE), 12000.0)
    for k in range(10):  # full auto, 15 rounds/s
        add_impulse(x, round((8.0 + k / 15) * RATE), 10000.0)
    add_impulse(x, round(15.0 * RATE), 8000.0)
    add_impulse(x, len(x) - 800, 9000.0)  # and ends with one
    return to_int16(x)


def detect(x: np.ndarray, chunk: int, scorer: object | None = None) -> list[Detection]:
    det = StreamingDetector(scorer or ContentScorer(), threshold=0.0)  # type: ignore[arg-type]
    return list(det.run(feed(chunk, x)))


@pytest.mark.parametrize("chunk", [160, 1000, 16_000])
def test_results_identical_whatever_the_chunk_size(chunk: int) -> None:
    x = stream()
    assert detect(x, chunk) == detect(x, 1600)


def test_rounds_and_phases() -> None:
    dets = detect(stream(), 1600)
    finals = [d for d in dets if d.phase == "final"]
    assert [d.rounds for d in finals] == [1, 3, 10, 1, 1]
    assert finals[0].onset <= 2
    news = [d for d in dets if d.phase == "new"]
    assert [d.number for d in news] == [d.number for d in finals]
    assert all(n.impulses[0] == f.impulses[0] for n, f in zip(news, finals, strict=True))


def test_first_message_waits_only_for_post_window() -> None:
    """The ``new`` detection is returned by the chunk that completes onset + post_s (+ one chunk at most)."""
    x = stream()
    det = StreamingDetector(ContentScorer(), threshold=0.0)
    onset = round(3.0 * RATE)
    post = FrontEndParams().post_samples
    seen_at = None
    for i, piece in enumerate(feed(1600, x)):
        if any(d.phase == "new" and d.onset == onset for d in det.process(piece)):
            seen_at = (i + 1) * 1600
            break
    assert seen_at is not None
    assert onset + post <= seen_at < onset + post + 1600


def test_threshold_filters_and_max_score_is_kept() -> None:
    x = stream()
    det = StreamingDetector(ContentScorer(), threshold=1.1, keep_scores=True)
    assert list(det.run(feed(4000, x))) == []
    scores = [s for _, s in det.take_scored()]
    assert det.stats.candidates == len(scores) > 10
    assert det.stats.max_score == max(scores)


class QueueScorer:
    """Hands out the given scores in the order candidates are classified (onset order), then 0."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def predict(self, patches: FloatArray) -> FloatArray:
        out = [self.scores.pop(0) if self.scores else 0.0 for _ in patches]
        return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("chunk", [160, 16_000])
def test_later_rounds_count_at_the_round_score_only_inside_an_open_burst(chunk: int) -> None:
    x = noise(12.0, 40.0)
    onsets = (1.0, 1.3, 1.6, 1.9, 6.0, 9.0, 9.4)
    scores = [0.0, 0.6, 0.99, 0.6, 0.4, 0.6, 0.95, 0.55]  # the first for the noise starting the stream
    for t in onsets:
        add_impulse(x, round(t * RATE), 12000.0)
    det = StreamingDetector(QueueScorer(scores), threshold=0.9, keep_scores=True)
    finals = [d for d in det.run(feed(chunk, to_int16(x))) if d.phase == "final"]
    assert [round(o / RATE, 2) for o, _ in det.take_scored()][1:] == list(onsets)
    # 1.0 comes before any burst is open, 1.9 scores under round_score, 6.0 lies beyond the gap: none counts
    assert [[round(i.onset / RATE, 2) for i in d.impulses] for d in finals] == [[1.3, 1.6], [9.0, 9.4]]


def test_patch_is_the_logmel_of_the_window_around_the_onset() -> None:
    x = stream()
    seen: list[FloatArray] = []

    class Spy:
        def predict(self, patches: FloatArray) -> FloatArray:
            seen.extend(patches)
            return np.zeros(len(patches), dtype=np.float32)

    StreamingDetector(Spy(), threshold=0.5).process(x[: 5 * RATE])
    fe = FrontEndParams()
    window = np.concatenate((np.zeros(fe.pre_samples, np.int16), x[: fe.post_samples]))
    np.testing.assert_array_equal(seen[0], LogMel(fe).patch(window))


def test_refuses_wrong_sample_format() -> None:
    det = StreamingDetector(ContentScorer(), threshold=0.5)
    with pytest.raises(TypeError, match="int16"):
        det.process(np.zeros(100, dtype=np.float32))


def test_huge_chunk_longer_than_ring() -> None:
    x = stream()
    det = StreamingDetector(ContentScorer(), threshold=0.0, ring_seconds=5.0, bursts=BurstParams())
    assert list(det.run([x])) == detect(x, 1600)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/")
@pytest.mark.parametrize("chunk", [160, 1000, 16_000])
def test_real_model_results_identical_whatever_the_chunk_size(chunk: int) -> None:
    x = stream()
    model = TfliteModel()
    reference = StreamingDetector(model, threshold=0.0, keep_scores=True)
    expected = list(reference.run(feed(1600, x)))
    other = StreamingDetector(model, threshold=0.0, keep_scores=True)
    assert list(other.run(feed(chunk, x))) == expected
    assert other.take_scored() == reference.take_scored()
