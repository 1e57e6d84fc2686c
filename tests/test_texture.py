"""The texture check: a long run of shot-like impulses (rain on a car roof) cannot open a detection."""

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from edge.detect.detector import StreamingDetector
from edge.detect.scan import scan_file
from edge.detect.texture import TextureParams, TextureTracker
from tests.impulses import RATE, add_impulse, feed, noise, to_int16
from tests.test_detector import QueueScorer


def scores(tracker: TextureTracker, impulses: list[tuple[float, float, float]]) -> list[float]:
    return [tracker.score(round(t * RATE), s, db) for t, s, db in impulses]


def test_impulses_more_than_max_s_into_a_run_are_capped_at_shot_like() -> None:
    run = [(0.4 * k, 0.8, -30.0) for k in range(10)]  # 0.0 … 3.6 s
    assert scores(TextureTracker(0.5), run) == [0.8] * 6 + [0.5] * 4  # 2.4 s and later are > 2 s into the run


def test_a_pause_longer_than_gap_s_starts_a_new_run() -> None:
    run = [(0.0, 0.8, -30.0), (1.4, 0.8, -30.0), (3.0, 0.8, -30.0), (4.4, 0.8, -30.0), (6.0, 0.8, -30.0)]
    assert scores(TextureTracker(0.5), run) == [0.8] * 5


def test_impulses_below_shot_like_neither_extend_a_run_nor_are_changed() -> None:
    run = [(0.0, 0.8, -30.0), *[(0.5 * k, 0.3, -30.0) for k in range(1, 8)], (4.0, 0.99, -30.0)]
    assert scores(TextureTracker(0.5), run) == [0.8, *[0.3] * 7, 0.99]


def test_a_much_louder_impulse_keeps_its_score() -> None:
    tracker = TextureTracker(0.5)
    scores(tracker, [(0.4 * k, 0.8, -30.0) for k in range(8)])
    assert scores(tracker, [(3.2, 0.99, -21.0), (3.6, 0.99, -10.0), (4.0, 0.99, -12.0)]) == [0.5, 0.99, 0.5]
    assert tracker.capped == 4  # 2.4 s, 2.8 s, 3.2 s and 4.0 s


def test_max_s_zero_turns_the_check_off() -> None:
    run = [(0.4 * k, 0.8, -30.0) for k in range(20)]
    assert scores(TextureTracker(0.5, TextureParams(max_s=0.0)), run) == [0.8] * 20


DROPS = [round(1.0 + 0.4 * k, 2) for k in range(15)]  # rain on a roof: 1.0 … 6.6 s
LOUD_AT = 4.2


Chunks = list[npt.NDArray[np.int16]]


def rain(shot_peak: float | None) -> Chunks:
    x = noise(10.0, 40.0)
    for t in DROPS:
        add_impulse(x, round(t * RATE), shot_peak if t == LOUD_AT and shot_peak else 4000.0)
    return feed(1000, to_int16(x))


def detect(chunks: Chunks, texture: TextureParams | None = None) -> tuple[list[float], list[tuple[float, float]]]:
    # 0.0 for the noise that starts the stream, then every drop shot-like but under the threshold, except one
    queue = [0.0] + [0.95 if t == LOUD_AT else 0.7 for t in DROPS]
    det = StreamingDetector(QueueScorer(queue), threshold=0.9, keep_scores=True, texture=texture)
    finals = [d for d in det.run(chunks) if d.phase == "final"]
    scored = [(round(o / RATE, 2), round(s, 3)) for o, s in det.take_scored()]
    assert [t for t, _ in scored][1:] == DROPS
    return [round(d.onset / RATE, 2) for d in finals], scored


@pytest.mark.parametrize("chunk", [160, 16_000])
def test_a_high_score_deep_in_the_rain_opens_no_detection(chunk: int) -> None:
    chunks = rain(None)
    onsets, scored = detect([c for piece in chunks for c in feed(chunk, piece)])
    assert onsets == []
    assert dict(scored)[LOUD_AT] == 0.5
    assert detect(chunks, TextureParams(max_s=0.0))[0] == [LOUD_AT]


def test_a_shot_in_the_rain_still_opens_one() -> None:
    onsets, scored = detect(rain(20_000.0))  # 14 dB louder than the drops
    assert onsets == [LOUD_AT]
    assert dict(scored)[LOUD_AT] == 0.95


def test_a_file_scan_counts_the_capped_impulses(tmp_path: Path) -> None:
    path = tmp_path / "rain.wav"
    sf.write(path, np.concatenate(rain(None)), RATE, subtype="PCM_16")
    queue = [0.0] + [0.95 if t == LOUD_AT else 0.7 for t in DROPS]
    scan = scan_file(path, QueueScorer(queue), threshold=0.9)
    assert scan.detections == ()
    assert scan.texture_capped == sum(t - DROPS[0] > 2.0 for t in DROPS) == 9  # every drop after 3.0 s, 4.2 s too
    assert scan.max_score == pytest.approx(0.7)
