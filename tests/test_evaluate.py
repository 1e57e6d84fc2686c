"""``polewatch evaluate``: metrics (exact, on hand-made scores) and the command on generated recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.detect.params import DetectorParams
from edge.detect.runtime import DEFAULT_MODEL, TfliteModel
from edge.evaluate import metrics
from edge.evaluate.manifest import ManifestError, read_manifest
from tests.impulses import RATE, add_impulse, noise, to_int16


def test_auc_counts_ties_as_half_and_recall_at_fpr_is_exact() -> None:
    assert metrics.auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert metrics.auc([0.5], [0.5]) == 0.5
    assert metrics.auc([0.1], [0.9, 0.05]) == 0.5
    neg = np.linspace(0.0, 0.99, 100)  # 100 negatives: 2 % false positives lets 0.99 and 0.98 through
    assert metrics.recall_at_fpr([0.985, 0.975, 0.965], neg, 0.02) == pytest.approx(2 / 3)
    fpr, tpr = metrics.roc_curve([0.9, 0.4], [0.5, 0.1])
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    recall, precision = metrics.pr_curve([0.9, 0.4], [0.5, 0.1])
    assert recall[0] == 0.5 and precision[0] == 1.0


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "none.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("file\tkind\nx.wav\tgunshot\n")
    with pytest.raises(ManifestError, match="lacks column"):
        read_manifest(bad)
    rounds = tmp_path / "r.tsv"
    rounds.write_text("path\tlabel\trounds\nx.wav\tgunshot\tthree\n")
    with pytest.raises(ManifestError, match="line 2"):
        read_manifest(rounds)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/")
def test_evaluate_runs_the_pipeline_over_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["path\tlabel\tgroup\tsource\trounds"]
    for i in range(3):
        x = noise(2.0, 30.0, seed=i)
        add_impulse(x, RATE // 2, 15000.0, decay_ms=40.0)
        sf.write(tmp_path / f"shot{i}.wav", to_int16(x), RATE)
        rows.append(f"shot{i}.wav\tgunshot\tg{i}\tcity\t1")
        sf.write(tmp_path / f"street{i}.wav", to_int16(noise(3.0, 100.0, seed=10 + i)), RATE)
        rows.append(f"street{i}.wav\tstreet\ts{i}\tcity\t")
    rows.append("gone.wav\tdoor\tx\tcity\t")
    (tmp_path / "m.tsv").write_text("\n".join(rows) + "\n")
    scores = tmp_path / "scores.jsonl"
    code = main(["evaluate", "--manifest", str(tmp_path / "m.tsv"), "--json", "--scores-out", str(scores)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 7 and [m["file"] for m in report["missing"]] == ["gone.wav"]
    assert report["model"] == TfliteModel().identity  # every network that scored, in one sha256
    # the unit's default gate, burst and texture rules, which the numbers depend on
    assert report["detector"] == DetectorParams().to_dict() and "config" not in report
    sub = report["subsets"]["all"]
    assert sub["files"] == {"gunshot": 3, "negative": 3, "hard_negative": 0}
    assert sub["auc_gunshot_vs_hard_negatives"] is None and sub["recall_at_hard_fpr"]["2%"] is None
    assert sub["false_alarms_per_hour_ambience"]["hours"] == pytest.approx(9.0 / 3600, abs=1e-3)
    assert sub["rounds_exact"]["bursts"] == 3
    lines = [json.loads(line) for line in scores.read_text().splitlines()]
    assert [line["file"] for line in lines] == [f"{k}{i}.wav" for i in range(3) for k in ("shot", "street")]
    assert all(0.0 <= line["gun_max"] <= 1.0 for line in lines)
    for line in lines:  # every classified gate candidate, its onset in seconds; gun_max is the highest
        assert line["seconds"] == pytest.approx(2.0 if line["file"].startswith("shot") else 3.0)
        assert line["gun_max"] == pytest.approx(max((s for _, s in line["impulses"]), default=0.0), abs=1e-6)
        assert all(0.0 <= onset < line["seconds"] for onset, _ in line["impulses"])
    shots = [line for line in lines if line["file"].startswith("shot")]
    assert all(any(abs(onset - 0.5) < 0.01 for onset, _ in line["impulses"]) for line in shots)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/")
def test_evaluate_writes_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    x = noise(2.0, 30.0)
    add_impulse(x, RATE // 2, 15000.0)
    sf.write(tmp_path / "a.wav", to_int16(x), RATE)
    sf.write(tmp_path / "b.wav", to_int16(noise(2.0, 30.0, seed=3)), RATE)
    (tmp_path / "m.tsv").write_text("path\tlabel\na.wav\tgunshot\nb.wav\tglass\n")
    assert main(["evaluate", "--manifest", str(tmp_path / "m.tsv"), "--plots", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "AUC all" in out
    identity = TfliteModel().identity
    assert f"model {identity['name']} {identity['version']} (sha256 {identity['sha256'][:16]}...)" in out
    assert "onset gate: rise 7 dB (10 dB within 0.5 s of a candidate), floor -90 dBFS; texture check after 2 s" in out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["per_label.png", "pr.png", "roc.png"]


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/")
def test_evaluate_scores_as_a_configured_unit_would(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = noise(2.0, 30.0)
    add_impulse(x, RATE // 2, 15000.0)
    sf.write(tmp_path / "a.wav", to_int16(x), RATE)
    (tmp_path / "m.tsv").write_text("path\tlabel\na.wav\tgunshot\n")
    unit = tmp_path / "unit.toml"
    unit.write_text("[detect]\nthreshold = 0.25\ngate_rise_db = 12\ntexture_s = 0\n")
    assert main(["evaluate", "--manifest", str(tmp_path / "m.tsv"), "--config", str(unit), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"] == str(unit) and report["threshold"] == 0.25
    assert report["detector"]["gate"]["rise_db"] == 12.0 and report["detector"]["texture"]["max_s"] == 0.0
    assert main(["evaluate", "--manifest", str(tmp_path / "m.tsv"), "--config", str(unit)]) == 0
    out = capsys.readouterr().out
    assert f"detector settings from {unit}" in out and "rise 12 dB" in out and "texture check off" in out
