import pytest

from edge.detect.bursts import BurstParams, BurstTracker, Detection, Impulse

RATE = 16_000


def run(onsets_s: list[float], peaks: list[float] | None = None, gap_s: float = 2.0) -> list[Detection]:
    tracker = BurstTracker(BurstParams(gap_s=gap_s))
    out: list[Detection] = []
    for i, t in enumerate(onsets_s):
        peak = peaks[i] if peaks else -10.0
        out += tracker.add(Impulse(round(t * RATE), 0.9, peak))
    return out + tracker.flush()


def finals(dets: list[Detection]) -> list[int]:
    return [d.rounds for d in dets if d.phase == "final"]


def test_new_then_final_with_the_same_number() -> None:
    dets = run([1.0, 1.3, 1.6])
    assert [(d.number, d.phase, d.rounds) for d in dets] == [(1, "new", 1), (1, "final", 3)]


@pytest.mark.parametrize("rate", [10.0, 15.0, 20.0])
@pytest.mark.parametrize("rounds", [1, 5, 15])
def test_full_auto_rounds_are_counted_not_merged(rate: float, rounds: int) -> None:
    assert finals(run([2.0 + k / rate for k in range(rounds)])) == [rounds]


def test_semi_auto_and_separate_bursts() -> None:
    semi = [1.0, 1.4, 1.55, 2.3]
    later = [6.0, 6.2]
    assert finals(run(semi + later)) == [4, 2]


def test_gap_is_configurable() -> None:
    assert finals(run([1.0, 2.5], gap_s=1.0)) == [1, 1]
    assert finals(run([1.0, 2.5], gap_s=2.0)) == [2]


def test_much_quieter_impulse_right_after_a_round_is_an_echo() -> None:
    assert finals(run([1.0, 1.08, 1.5], peaks=[-6.0, -25.0, -7.0])) == [2]


def test_advance_closes_only_after_the_gap() -> None:
    tracker = BurstTracker(BurstParams(gap_s=2.0))
    tracker.add(Impulse(RATE, 0.9, -10.0))
    assert tracker.advance(RATE + 2 * RATE) == []
    closed = tracker.advance(RATE + 2 * RATE + 1)
    assert [d.phase for d in closed] == ["final"]
    assert tracker.flush() == []


def test_impulse_faster_than_any_firearm_fires_is_an_echo() -> None:
    """30 ms after a round (33 rounds/s) is an echo even at the round's level; 70 ms after is a round."""
    assert finals(run([1.0, 1.03, 1.1], peaks=[-10.0, -9.0, -10.0])) == [2]


def test_late_echo_off_a_far_building_is_not_a_round() -> None:
    """A building across a T-junction 110 m away sends the shot back 0.65 s later, 16 dB down."""
    assert finals(run([1.0, 1.65], peaks=[-4.0, -20.8])) == [1]
    assert finals(run([1.0, 1.65], peaks=[-4.0, -8.0])) == [2]


def test_continues_only_within_the_gap_of_an_open_burst() -> None:
    tracker = BurstTracker(BurstParams(gap_s=2.0))
    assert not tracker.continues(RATE)
    tracker.add(Impulse(RATE, 0.9, -10.0))
    assert tracker.continues(3 * RATE) and not tracker.continues(3 * RATE + 1)
    tracker.flush()
    assert not tracker.continues(RATE + 100)
