"""``python -m tools.bench.quality`` on generated recordings, hand-made polewatch scores and a fake peer runner that
prints what the real runners print with ``--json --per-window``; every number checked against a hand count."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from edge.detect.runtime import DEFAULT_MODEL, read_metadata
from edge.evaluate import metrics
from edge.evaluate.manifest import ManifestRow
from edge.evaluate.scores import FileScores, read_scores
from tests.impulses import RATE, add_impulse, noise, to_int16
from tools.bench.peers import score_files
from tools.bench.quality import main, pick_rows

needs_model = pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/")

# path, label, source: broken.wav exists but is no audio, gone.wav does not exist
ROWS = [
    ("g1.wav", "gunshot", "city"),
    ("g2.wav", "gunshot", "city"),
    ("g3.wav", "gunshot", "city"),
    ("door1.wav", "door", "city"),
    ("broken.wav", "door", "city"),
    ("door2.wav", "door", "city"),
    ("street1.wav", "street", "city"),
    ("fg1.wav", "gunshot", "forest"),
    ("fb1.wav", "background", "forest"),
    ("gone.wav", "knock", "city"),
]

# polewatch: (gun_max, seconds, impulses); the ambience files count as half an hour each
POLEWATCH = {
    "g1.wav": (0.9, 1.0, [[0.2, 0.9]]),
    "g2.wav": (0.8, 1.0, [[0.2, 0.8]]),
    "g3.wav": (0.3, 1.0, [[0.2, 0.3]]),
    "door1.wav": (0.85, 1.0, [[0.1, 0.85]]),
    "door2.wav": (0.2, 1.0, [[0.1, 0.2]]),
    "street1.wav": (0.99, 1800.0, [[1.0, 0.95], [2.5, 0.9], [10.0, 0.9], [11.9, 0.1], [12.0, 0.95], [30.0, 0.99]]),
    "fg1.wav": (0.7, 1.0, [[0.5, 0.7]]),
    "fb1.wav": (0.6, 1800.0, [[3.0, 0.6]]),
}

# peers: (duration, window scores at a 0.5 s hop); broken.wav makes the runner crash
PEER = {
    "g1.wav": (1.0, [0.1, 0.9, 0.2]),
    "g2.wav": (1.0, [0.6]),
    "g3.wav": (1.0, [0.4]),
    "door1.wav": (1.0, [0.5]),
    "door2.wav": (1.0, [0.7]),
    "street1.wav": (1800.0, [0.8, 0.9, 0.1, 0.75, 0.0, 0.0, 0.95]),
    "fg1.wav": (1.0, [0.3]),
    "fb1.wav": (1800.0, [0.2, 0.1]),
}

FAKE_RUNNER = """
import json, os, sys
spec = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "spec.json")))
argv = sys.argv[1:]
assert argv[:4] == ["--threads", "1", "--json", "--per-window"], argv
print(json.dumps({"peer": "fake", "gun_score": "gun", "fireworks_score": "fw", "window_s": 1.0, "hop_s": 0.5}))
audio = 0.0
for path in argv[4:]:
    duration, scores = spec[os.path.basename(path)]  # KeyError for broken.wav, as a runner dies on a bad file
    audio += duration
    windows = [{"t": round(0.5 * i, 3), "gun": s, "fireworks": 0.0} for i, s in enumerate(scores)]
    print(json.dumps({"file": path, "duration_s": duration, "orig_sr": 16000, "windows": len(scores),
                      "gun_max": max(scores), "gun_max_t": 0.0, "fireworks_max": 0.0, "fireworks_max_t": 0.0,
                      "model_s_per_audio_s": 0.001, "total_s_per_audio_s": 0.002, "extra_max": {},
                      "per_window": windows}))
print(json.dumps({"summary": {"files": len(argv) - 4, "audio_s": audio, "model_s_per_audio_s": 0.001,
                              "total_s_per_audio_s": 0.002}}))
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Short generated recordings, a manifest, polewatch scores and the fake peers in ``tmp_path``."""
    lines = ["path\tlabel\tgroup\tsource"]
    for i, (path, label, source) in enumerate(ROWS):
        lines.append(f"{path}\t{label}\tgrp{i}\t{source}")
        if path == "broken.wav":
            (tmp_path / path).write_bytes(b"this is no audio file")
        elif path != "gone.wav":
            x = noise(1.0, 30.0, seed=i)
            if label == "gunshot":
                add_impulse(x, RATE // 4, 15000.0, decay_ms=40.0)
            sf.write(tmp_path / path, to_int16(x), RATE)
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    records = [{"file": f, "gun_max": g, "seconds": s, "impulses": imp} for f, (g, s, imp) in POLEWATCH.items()]
    (tmp_path / "oof.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    peers = tmp_path / "peers"
    peers.mkdir()
    (peers / "spec.json").write_text(json.dumps(PEER))
    for name in ("run_yamnet.py", "run_efficientat.py", "run_birdnet.py"):
        (peers / name).write_text(FAKE_RUNNER)
    return tmp_path


def _run(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    argv = ["--manifest", str(data / "m.tsv"), "--peers-dir", str(data / "peers")]
    argv += ["--peers-python", sys.executable, "--batch", "3", "--json", *extra]
    assert main(argv) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


@needs_model
def test_table_numbers_match_a_hand_count(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(data, capsys, "--polewatch-scores", str(data / "oof.jsonl"))
    assert report["files"] == 10 and report["not_found"] == 1
    assert str(data / "oof.jsonl") in report["polewatch_source"]
    assert set(report["systems"]) == {"polewatch", "YAMNet", "EfficientAT", "BirdNET"}

    pw = report["systems"]["polewatch"]
    assert pw["files"] == 8 and pw["missing"] == 2  # gone.wav (not found), broken.wav (not in the scores file)
    assert pw["auc_gunshot_vs_all"] == pytest.approx(4 / 9)  # 0.9 beats 2 of 3 negatives, 0.8 and 0.3 beat 1
    assert pw["auc_gunshot_vs_hard_negatives"] == pytest.approx(4 / 6)
    assert pw["threshold_at_2pct_hard_fpr"] > 0.85  # 2 hard negatives: none may reach it
    assert pw["recall_at_2pct_hard_fpr"] == pytest.approx(1 / 3)
    # above 0.85 on street1: 1.0 + 2.5 (1.5 s apart, one alarm), 10.0 + 12.0 (2 s: still one), 30.0
    assert pw["false_alarms_ambience"] == {"alarms": 3, "hours": 1.0, "per_hour": pytest.approx(3.0)}
    assert pw["false_alarms_urban_ambience"]["per_hour"] == pytest.approx(6.0)
    assert pw["forest_auc"] == 1.0
    assert pw["calls"] == 1 and pw["cpu_ms_per_s"] > 0.0
    assert pw["audio_s"] == pytest.approx(8.0)  # the CPU pass: the 8 readable 1-s recordings
    shipped = read_metadata(DEFAULT_MODEL).threshold
    assert 0.95 < shipped <= 0.99, "the hand count below assumes the shipped threshold lies in (0.95, 0.99]"
    assert pw["at_shipped_threshold"]["false_alarms_ambience"]["alarms"] == 1  # only the 0.99 at 30 s

    for name in ("YAMNet", "EfficientAT", "BirdNET"):
        peer = report["systems"][name]
        assert peer["files"] == 8 and peer["missing"] == 2
        assert peer["unscored"]["broken.wav"].startswith("KeyError")
        # batches of 3: [g1 g2 g3] [door1 broken -> dies] [door2 street1 fg1] [fb1]
        assert peer["calls"] == 4
        assert peer["auc_gunshot_vs_all"] == pytest.approx(3 / 9)
        assert peer["auc_gunshot_vs_hard_negatives"] == pytest.approx(3 / 6)
        assert peer["recall_at_2pct_hard_fpr"] == pytest.approx(1 / 3)
        # above 0.7 on street1: windows 0-1 (one run), 3, 6
        assert peer["false_alarms_ambience"]["alarms"] == 3
        assert peer["false_alarms_ambience"]["per_hour"] == pytest.approx(3.0)
        assert peer["false_alarms_urban_ambience"]["per_hour"] == pytest.approx(6.0)
        assert peer["forest_auc"] == 1.0
        assert peer["audio_s"] == pytest.approx(3606.0)
        assert peer["cpu_ms_per_s"] > 0.0


@needs_model
def test_shipped_model_pass_is_marked_optimistic(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(data, capsys, "--no-peers")
    assert "includes training files (optimistic)" in report["polewatch_source"]
    pw = report["systems"]["polewatch"]
    assert pw["files"] == 8 and set(pw["unscored"]) == {"gone.wav", "broken.wav"}
    assert pw["false_alarms_ambience"]["hours"] == pytest.approx(2.0 / 3600, abs=1e-4)
    argv = ["--manifest", str(data / "m.tsv"), "--no-peers", "--limit", "4"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "4 files" in table and "includes training files (optimistic)" in table and "AUC hard" in table


def test_peer_runner_failing_at_start_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "run_x.py"
    script.write_text("import sys\nsys.exit('model not found')\n")
    with pytest.raises(RuntimeError, match="model not found"):
        score_files(script, sys.executable, ["a.wav"], None, 30.0)


def test_scores_lines_old_and_new(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    new = {"file": "b.wav", "gun_max": 0.7, "seconds": 2.0, "impulses": [[0.1, 0.7]]}
    path.write_text('{"file": "a.wav", "gun_max": 0.5}\n\n' + json.dumps(new) + "\n")
    assert read_scores(path) == {"a.wav": FileScores(0.5), "b.wav": FileScores(0.7, 2.0, ((0.1, 0.7),))}
    path.write_text('{"file": "a.wav"}\n')
    with pytest.raises(ValueError, match="line 1"):
        read_scores(path)


def test_count_events_and_limit() -> None:
    assert metrics.count_events([], 2.0) == 0
    assert metrics.count_events([5.0, 1.0, 3.0, 3.5, 9.0], 2.0) == 2  # 1-3-3.5-5 chained, 9 alone
    assert metrics.count_events([0.0, 0.5, 1.5], 0.75) == 2
    rows = [ManifestRow(f"{i}.wav", "street") for i in range(10)]
    assert [r.path for r in pick_rows(rows, 3)] == ["0.wav", "3.wav", "6.wav"]
