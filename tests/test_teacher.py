"""The distillation teacher's probe: it separates what is separable and never scores a file it was fitted on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.evaluate.metrics import auc
from tools.teacher import cross_fitted_scores, fit_probe, main, random_folds, read_features


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    return auc(list(scores[y == 1]), list(scores[y == 0]))


def test_probe_separates_shifted_classes() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(float)
    x = rng.standard_normal((400, 20)) + 1.5 * y[:, None] * (np.arange(20) < 3)
    probe = fit_probe(x[:200], y[:200])
    assert _auc(probe(x[200:]), y[200:]) > 0.9  # the Bayes limit here is 0.967


def test_cross_fitted_scores_come_from_probes_that_never_saw_the_group() -> None:
    # random labels on 300 random dimensions: a probe memorises its training files, but learns nothing about others
    rng = np.random.default_rng(1)
    n = 200
    y = rng.random(n) < 0.5
    x = rng.random((n, 300)).astype(np.float32) * 0.98 + 0.01
    paths = [f"f{k}.flac" for k in range(n)]
    in_sample = fit_probe(np.log(x / (1 - x)), y.astype(float))(np.log(x / (1 - x)))
    assert _auc(in_sample, y) > 0.95
    fold = random_folds([f"g{k // 2}" for k in range(n)])
    scores = cross_fitted_scores(dict(zip(paths, x, strict=True)), paths, list(y), fold)
    crossed = np.array([scores[p] for p in paths])
    assert np.all((crossed > 0) & (crossed < 1))
    assert 0.3 < _auc(crossed, y) < 0.7


def test_missing_file_is_named() -> None:
    with pytest.raises(KeyError, match=r"b\.flac"):
        cross_fitted_scores({"a.flac": np.zeros(3, np.float32)}, ["a.flac", "b.flac"], [True, False], [0, 1])


def test_features_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    np.savez_compressed(path, paths=np.array(["x/a.flac", "b.flac"]), features=np.eye(2, dtype=np.float32))
    got = read_features(path)
    assert list(got) == ["x/a.flac", "b.flac"]
    np.testing.assert_array_equal(got["b.flac"], [0.0, 1.0])


def test_random_folds_keep_a_group_together() -> None:
    groups = [f"g{k % 7}" for k in range(50)]
    fold = random_folds(groups, folds=3, seed=2)
    assert {(g, int(f)) for g, f in zip(groups, fold, strict=True)} == {(g, int(fold[groups.index(g)])) for g in groups}
    assert set(fold.tolist()) == {0, 1, 2}


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "t.npz"), "--peers-dir", str(tmp_path)]) == 2
    assert "yamnet.tflite" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "nope"), "--cv", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
