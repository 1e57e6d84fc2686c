"""The shipped model's quality on real recordings (skipped when ../shared/data/audio is absent).

- Cross-validation: ``models/gunshot.json`` ``metrics`` are ``tools.kfold``'s out-of-fold numbers (every file scored
  by a fold model that never saw its group) and ``models/cv_scores.jsonl`` holds the scores they come from. The
  tests recompute the metrics from that file and hold them to the quality bars.
- The shipped file itself: re-scored through the streaming pipeline on the urban gunshot and hard-negative files it
  trained on, it must reproduce the fingerprint pinned at export (``pinned_scores``): a changed model file, front
  end, gate or runtime shows up here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.detect.bursts import BurstParams
from edge.detect.runtime import DEFAULT_MODEL, TfliteModel, metadata_path
from edge.detect.scan import scan_file
from edge.evaluate.labels import AMBIENCE, FOREST, GUNSHOT, HARD_NEGATIVES
from edge.evaluate.manifest import ManifestRow, read_manifest
from edge.evaluate.metrics import auc, count_events, recall_at_fpr
from edge.evaluate.scores import FileScores, read_scores

DATA = Path(os.environ.get("POLEWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"))
CV_SCORES = DEFAULT_MODEL.parent / "cv_scores.jsonl"

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not (DATA / "manifest.tsv").exists(), reason=f"no recordings at {DATA}"),
    pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/"),
]

Scored = list[tuple[ManifestRow, float]]


@pytest.fixture(scope="module")
def meta() -> dict[str, Any]:
    return dict(json.loads(metadata_path(DEFAULT_MODEL).read_text()))


@pytest.fixture(scope="module")
def out_of_fold() -> Scored:
    scores: dict[str, FileScores] = read_scores(CV_SCORES)
    rows = read_manifest(DATA / "manifest.tsv")
    missing = [r.path for r in rows if r.path not in scores]
    assert not missing, f"{len(missing)} manifest files have no out-of-fold score (first {missing[:1]})"
    return [(r, scores[r.path].gun_max) for r in rows]


def _urban(scored: Scored) -> tuple[list[float], list[float], list[float]]:
    urban = [(r, s) for r, s in scored if r.source != FOREST]
    gun = [s for r, s in urban if r.label == GUNSHOT]
    neg = [s for r, s in urban if r.label != GUNSHOT]
    hard = [s for r, s in urban if r.label in HARD_NEGATIVES]
    return gun, neg, hard


def _forest_auc(scored: Scored) -> float:
    forest = [(r, s) for r, s in scored if r.source == FOREST]
    return auc([s for r, s in forest if r.label == GUNSHOT], [s for r, s in forest if r.label != GUNSHOT])


def test_card_metrics_are_the_out_of_fold_scores(meta: dict[str, Any], out_of_fold: Scored) -> None:
    gun, neg, hard = _urban(out_of_fold)
    m = meta["metrics"]
    assert len(gun) == m["files"]["gunshot"] >= 90
    assert auc(gun, neg) == pytest.approx(m["auc_gunshot_vs_all_urban"], abs=1e-4)
    assert auc(gun, hard) == pytest.approx(m["auc_gunshot_vs_hard_negatives_urban"], abs=1e-4)
    assert recall_at_fpr(gun, hard, 0.02) == pytest.approx(m["recall_at_hard_fpr"]["2%"], abs=1e-4)
    assert _forest_auc(out_of_fold) == pytest.approx(m["auc_forest_gunshot_vs_forest_negatives"], abs=1e-4)
    assert meta["threshold"] == m["threshold"]


def test_first_model_bar_gunshot_vs_all(out_of_fold: Scored) -> None:
    gun, neg, _ = _urban(out_of_fold)
    assert auc(gun, neg) >= 0.97


def test_first_model_bar_gunshot_vs_hard_negatives(out_of_fold: Scored) -> None:
    gun, _, hard = _urban(out_of_fold)
    assert auc(gun, hard) >= 0.93


def test_shipped_file_reproduces_its_fingerprint(meta: dict[str, Any]) -> None:
    pinned = meta["pinned_scores"]
    rows = [
        r
        for r in read_manifest(DATA / "manifest.tsv")
        if r.source != FOREST and (r.label == GUNSHOT or r.label in HARD_NEGATIVES)
    ]
    model = TfliteModel()
    scored = [(r, scan_file(DATA / r.path, model, model.info.threshold).max_score) for r in rows]
    assert len(scored) == pinned["files"]
    gun = [s for r, s in scored if r.label == GUNSHOT]
    hard = [s for r, s in scored if r.label != GUNSHOT]
    assert auc(gun, hard) == pytest.approx(pinned["auc"], abs=1e-3)
    assert sum(gun) / len(gun) == pytest.approx(pinned["mean_gun_max"], abs=1e-3)


Target = Callable[[list[float], list[float], list[float], float], bool]
TARGETS: dict[str, Target] = {  # issue 3, on held-out groups
    "auc_gunshot_vs_all_urban >= 0.99": lambda gun, neg, hard, forest: auc(gun, neg) >= 0.99,
    "auc_gunshot_vs_hard_negatives_urban >= 0.98": lambda gun, neg, hard, forest: auc(gun, hard) >= 0.98,
    "recall at 2 % hard-negative FPR >= 0.90": lambda gun, neg, hard, forest: recall_at_fpr(gun, hard, 0.02) >= 0.9,
    "forest AUC >= 0.90": lambda gun, neg, hard, forest: forest >= 0.90,
}


MET = {"forest AUC >= 0.90"}
"""Targets the shipped model meets (since 0.6.1's 7 dB gate); the others are strict xfails."""
SHORTFALL = pytest.mark.xfail(
    strict=True,
    reason="known shortfall (issue 3 open): cross-validated 0.983 / 0.971 / 56.2 % / forest 0.901 (models/README.md)",
)


@pytest.mark.parametrize("target", [t if t in MET else pytest.param(t, marks=SHORTFALL) for t in sorted(TARGETS)])
def test_issue_3_target(target: str, out_of_fold: Scored) -> None:
    gun, neg, hard = _urban(out_of_fold)
    assert TARGETS[target](gun, neg, hard, _forest_auc(out_of_fold))


def test_false_alarms_per_hour_of_urban_ambience_at_the_threshold(meta: dict[str, Any]) -> None:
    scores = read_scores(CV_SCORES)
    rows = [r for r in read_manifest(DATA / "manifest.tsv") if r.source != FOREST and r.label in AMBIENCE]
    hours = sum(scores[r.path].seconds or 0.0 for r in rows) / 3600.0
    alarms = sum(
        count_events([t for t, s in scores[r.path].marks or () if s >= meta["threshold"]], BurstParams().gap_s)
        for r in rows
    )
    assert hours > 1.0
    assert alarms / hours <= 0.5
