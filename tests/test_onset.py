import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.dsp.onset import BLOCK, HISTORY, GateParams, OnsetGate
from tests.impulses import RATE, add_impulse, feed, noise, to_int16


def onsets(x: np.ndarray, chunk: int, params: GateParams | None = None) -> list[int]:
    gate = OnsetGate(params)
    return [c.onset for piece in feed(chunk, x) for c in gate.process(piece)]


def scene() -> tuple[np.ndarray, list[int]]:
    x = noise(6.0, 30.0)
    truth = [RATE + 37, 2 * RATE + 1001] + [3 * RATE + 800 * k + 13 * k for k in range(12)]
    for t in truth:
        add_impulse(x, t, 9000.0)
    return to_int16(x), truth


def busy_scene() -> npt.NDArray[np.int16]:
    """A loud impulse at 1 s and faint ones (7.5-10 dB above the noise) 0.25 s after it and alone at 2.5 s."""
    x = noise(4.0, 30.0)
    add_impulse(x, RATE, 9000.0)
    add_impulse(x, RATE + RATE // 4, 420.0)
    add_impulse(x, 5 * RATE // 2, 420.0)
    return to_int16(x)


def test_a_faint_rise_counts_alone_but_not_in_the_wake_of_another() -> None:
    found = onsets(busy_scene(), 1600)[1:]  # [0]: the start of the stream
    assert len(found) == 2 and abs(found[0] - RATE) <= 2 and abs(found[1] - 5 * RATE // 2) < 200
    assert len(onsets(busy_scene(), 1600, GateParams(busy_s=0.0))[1:]) == 3
    assert len(onsets(busy_scene(), 1600, GateParams(rise_db=10.0))[1:]) == 1


@pytest.mark.parametrize("chunk", [160, 1000, 16_000, 1, 7, 10**6])
def test_candidates_identical_whatever_the_chunk_size(chunk: int) -> None:
    x, _ = scene()
    assert onsets(x, chunk) == onsets(x, 1600)


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40))
@settings(max_examples=30, deadline=None)
def test_arbitrary_chunkings_agree(sizes: list[int]) -> None:
    x, _ = scene()
    gate, got, pos, i = OnsetGate(), [], 0, 0
    while pos < len(x):
        n = sizes[i % len(sizes)]
        got += [c.onset for c in gate.process(x[pos : pos + n])]
        pos, i = pos + n, i + 1
    assert got == onsets(x, 16_000)


def test_onsets_are_sample_precise_and_full_auto_is_resolved() -> None:
    x, truth = scene()
    found = onsets(x, 1600)
    # the stream starts with noise above the floor: one candidate at the start, then one per impulse
    assert found[0] < 160
    assert len(found[1:]) == len(truth)
    assert max(abs(f - t) for f, t in zip(found[1:], truth, strict=True)) <= 2


def test_shot_at_the_very_first_sample_is_found() -> None:
    x = noise(2.0, 20.0)
    add_impulse(x, 0, 12000.0)
    assert onsets(to_int16(x), 1000)[0] <= 2


def test_shot_over_near_silent_studio_background() -> None:
    x = noise(3.0, 0.5)  # about -96 dBFS: digital near-silence
    add_impulse(x, RATE + 5, 3000.0)
    assert onsets(to_int16(x), 1000) == pytest.approx([RATE + 5], abs=2)


def test_decaying_tail_and_steady_noise_do_not_retrigger() -> None:
    x = noise(10.0, 300.0)
    add_impulse(x, 5 * RATE, 20000.0, decay_ms=300.0)
    found = onsets(to_int16(x), 1600)
    assert [f for f in found if f > 160] == pytest.approx([5 * RATE], abs=2)


def test_quieter_than_min_dbfs_is_ignored() -> None:
    x = noise(3.0, 0.5)
    add_impulse(x, RATE, 20.0)  # about -64 dBFS peak
    assert onsets(to_int16(x), 1000, GateParams(min_dbfs=-50.0)) == []


def reference_candidates(x: np.ndarray, params: GateParams) -> list[tuple[int, float, float]]:
    """The gate as plain formulas over the whole signal at once: (onset, block_dbfs, rise_db) per candidate."""
    full_scale = 32768.0**2 * BLOCK
    diff = np.diff(x.astype(np.float64), prepend=0.0)
    blocks = diff[: len(diff) // BLOCK * BLOCK].reshape(-1, BLOCK)
    energy = (blocks**2).sum(axis=1)
    quiet = full_scale * 10.0 ** ((params.min_dbfs - 20.0) / 10.0)
    padded = np.concatenate((np.full(HISTORY, quiet), energy))
    found, last = [], -(10**12)
    for i, e in enumerate(energy):
        background = padded[i : i + HISTORY].min()
        if e <= max(10.0 ** (params.rise_db / 10.0) * background, full_scale * 10.0 ** (params.min_dbfs / 10.0)):
            continue
        pair = np.abs(np.concatenate((blocks[i - 1] if i else np.zeros(BLOCK), blocks[i]))).astype(np.float32)
        threshold = max(params.attack_fraction * float(pair[BLOCK:].max()), 1.0)
        onset = (i - 1) * BLOCK + int(np.argmax(pair >= threshold))
        if onset - last < round(params.refractory_s * RATE):
            continue
        if onset - last < round(params.busy_s * RATE) and e <= 10.0 ** (params.busy_rise_db / 10.0) * background:
            continue
        last = onset
        rise = float(10.0 * np.log10(e / max(background, 1.0)))
        found.append((max(onset, 0), float(10.0 * np.log10(e / full_scale)), rise))
    return found


@pytest.mark.parametrize(
    "params",
    [
        GateParams(),
        GateParams(rise_db=6.0, min_dbfs=-70.0, attack_fraction=0.3),
        GateParams(rise_db=10.0, busy_rise_db=10.0),
        GateParams(rise_db=5.0, busy_rise_db=12.0, busy_s=1.0),
    ],
)
@given(st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=20))
@settings(max_examples=10, deadline=None)
def test_candidates_equal_the_plain_formulas(params: GateParams, sizes: list[int]) -> None:
    x = np.concatenate((scene()[0], busy_scene()))
    gate, got, pos, i = OnsetGate(params), [], 0, 0
    while pos < len(x):
        got += [(c.onset, c.block_dbfs, c.rise_db) for c in gate.process(x[pos : pos + sizes[i % len(sizes)]])]
        pos, i = pos + sizes[i % len(sizes)], i + 1
    assert got == reference_candidates(x, params)
