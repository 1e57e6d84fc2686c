"""tools.structure: the probe finds a clip-structure shortcut when the data has one, and only then."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.structure import main, probe_rows

HEADER = "path\tlabel\tgroup\tsource\tduration_s\tlicense\n"


def _dev_set(tmp_path: Path, gun_candidates: int, neg_candidates: int) -> tuple[Path, Path]:
    """60 urban gunshot files and 180 urban negatives (a third of them hard), 40 forest of each; every file's best
    score drawn from one distribution, so only the candidate counts can tell the classes apart."""
    rng = np.random.default_rng(0)
    rows, lines = [], []
    kinds = [("gunshot", "us8k", 60, gun_candidates), ("fireworks", "fireworks", 60, neg_candidates)]
    kinds += [("street", "us8k", 120, neg_candidates), ("gunshot", "forest", 40, 2), ("background", "forest", 40, 2)]
    for label, source, count, candidates in kinds:
        for k in range(count):
            path = f"{source}/{label}-{k}.flac"
            rows.append(f"{path}\t{label}\t{source}:{label}:{k // 2}\t{source}\t4.0\tCC0\n")
            best = round(float(rng.uniform(0.2, 0.9)), 4)
            marks = [[0.3 * j, best if j == 0 else 0.01] for j in range(candidates)]
            lines.append(json.dumps({"file": path, "gun_max": best, "seconds": 4.0, "impulses": marks}))
    (tmp_path / "manifest.tsv").write_text(HEADER + "".join(rows))
    scores = tmp_path / "scores.jsonl"
    scores.write_text("\n".join(lines) + "\n")
    return tmp_path, scores


def _rows(data: Path, scores: Path) -> dict[str, dict[str, object]]:
    from edge.evaluate.scores import read_scores
    from tools.dataset import read_manifest

    return dict(probe_rows(read_manifest(data), read_scores(scores)))


def _auc(rows: dict[str, dict[str, object]], name: str) -> float:
    value = rows[name]["auc_gunshot_vs_all_urban"]
    assert isinstance(value, float)
    return value


def test_a_candidate_count_shortcut_is_found(tmp_path: Path) -> None:
    # gunshot clips with one candidate, negatives with twelve: the scores say nothing, the count says everything
    rows = _rows(*_dev_set(tmp_path, gun_candidates=1, neg_candidates=12))
    for name in ("score as scored (no probe)", "score"):
        assert 0.35 < _auc(rows, name) < 0.65, name
    assert _auc(rows, "score + candidates") > 0.95
    assert rows["score + candidates"]["auc_gunshot_vs_hard_negatives_urban"] == pytest.approx(1.0, abs=0.05)


def test_no_shortcut_where_the_structure_is_shared(tmp_path: Path) -> None:
    rows = _rows(*_dev_set(tmp_path, gun_candidates=3, neg_candidates=3))
    for name in ("score", "candidates", "score + candidates", "score + seconds + candidates"):
        assert 0.35 < _auc(rows, name) < 0.65, name


def test_table_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, scores = _dev_set(tmp_path, 1, 12)
    assert main(["--data", str(data), "--scores", str(scores)]) == 0
    out = capsys.readouterr().out
    assert "| score + candidates |" in out and out.count("\n") == 10
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file": "x.flac"}\n')
    assert main(["--data", str(data), "--scores", str(bad)]) == 2
    assert "bad.jsonl line 1" in capsys.readouterr().err
