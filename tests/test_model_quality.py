"""The shipped model's validation metrics, re-measured through the real streaming pipeline on real recordings.

Needs ../shared/data/audio (skipped when absent). The validation groups are the ones the model card names; the
numbers must reach the first model's quality bar and match what the card claims.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge.detect.runtime import DEFAULT_MODEL, TfliteModel, metadata_path
from edge.detect.scan import scan_file
from edge.evaluate.metrics import auc
from tools.dataset import Item, read_manifest

DATA = Path(os.environ.get("POLEWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"))

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not (DATA / "manifest.tsv").exists(), reason=f"no recordings at {DATA}"),
    pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/"),
]


@pytest.fixture(scope="module")
def validation() -> tuple[dict[str, object], list[Item], np.ndarray]:
    meta = json.loads(metadata_path(DEFAULT_MODEL).read_text())
    val_groups = set(meta["split"]["val_groups"])
    items = [i for i in read_manifest(DATA) if i.group in val_groups]
    model = TfliteModel()
    scores = np.array([scan_file(DATA / i.path, model, model.info.threshold).max_score for i in items])
    return meta, items, scores


def urban_auc(items: list[Item], scores: np.ndarray, hard_only: bool) -> float:
    gun = [s for i, s in zip(items, scores, strict=True) if i.urban and i.is_gunshot]
    neg = [
        s
        for i, s in zip(items, scores, strict=True)
        if i.urban and not i.is_gunshot and (i.is_hard_negative or not hard_only)
    ]
    return auc(gun, neg)


def test_validation_split_is_real(validation: tuple[dict[str, object], list[Item], np.ndarray]) -> None:
    _, items, _ = validation
    assert sum(i.urban and i.is_gunshot for i in items) >= 10
    assert sum(i.urban and i.is_hard_negative for i in items) >= 30


def test_urban_auc_gunshot_vs_all_is_what_the_card_claims(
    validation: tuple[dict[str, object], list[Item], np.ndarray],
) -> None:
    meta, items, scores = validation
    measured = urban_auc(items, scores, hard_only=False)
    assert measured == pytest.approx(meta["metrics"]["auc_gunshot_vs_all_urban"], abs=0.01)  # type: ignore[index]
    assert measured >= 0.95  # a regression guard below the bar: the shipped model measures 0.965


@pytest.mark.xfail(
    strict=True,
    reason="known shortfall: the shipped model reaches 0.965, not the 0.97 bar (issue 2 stays open; models/README.md)",
)
def test_urban_auc_gunshot_vs_all_reaches_the_bar(validation: tuple[dict[str, object], list[Item], np.ndarray]) -> None:
    _, items, scores = validation
    assert urban_auc(items, scores, hard_only=False) >= 0.97


def test_urban_auc_gunshot_vs_hard_negatives(validation: tuple[dict[str, object], list[Item], np.ndarray]) -> None:
    meta, items, scores = validation
    measured = urban_auc(items, scores, hard_only=True)
    assert measured >= 0.93
    expected = meta["metrics"]["auc_gunshot_vs_hard_negatives_urban"]  # type: ignore[index]
    assert measured == pytest.approx(expected, abs=0.01)
