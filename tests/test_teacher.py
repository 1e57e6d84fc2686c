"""The distillation teacher's probes (per file and per window): they separate what is separable and never score a
file with a probe fitted on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.evaluate.metrics import auc
from tools.teacher import (
    WindowFeatures,
    cross_fitted_scores,
    cross_fitted_window_scores,
    fit_probe,
    main,
    pooled_file_features,
    random_folds,
    read_features,
    read_window_features,
)


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


def _windows(paths: list[str], onsets: list[int], dbfs: list[float], features: np.ndarray) -> WindowFeatures:
    return WindowFeatures(np.array(paths), np.array(onsets), np.array(dbfs, np.float32), features.astype(np.float32))


def test_window_probe_learns_the_shots_not_the_other_impulses_of_a_gunshot_file() -> None:
    # each file: a loud impulse and one 20 dB quieter. A gunshot file's loud impulse carries one hint, its quiet
    # impulse another: taught that the quiet ones are negatives (training's rule), the probe scores them low
    rng = np.random.default_rng(3)
    files = [f"{'gun' if k % 2 else 'door'}{k}.flac" for k in range(120)]
    paths = [p for p in files for _ in range(2)]
    dbfs = [v for _ in files for v in (-10.0, -30.0)]
    gun = np.array([p.startswith("gun") for p in paths])
    shot, other = gun & (np.array(dbfs) == -10.0), gun & (np.array(dbfs) == -30.0)
    x = (
        rng.standard_normal((len(paths), 6))
        + 2.0 * shot[:, None] * (np.arange(6) < 5)
        + 3.0 * other[:, None] * (np.arange(6) == 5)
    )
    x = 1 / (1 + np.exp(-x))
    windows = _windows(paths, [1000, 9000] * len(files), dbfs, x)
    fold = random_folds([f"g{k // 3}" for k in range(len(files))])
    scores = cross_fitted_window_scores(windows, files, [f.startswith("gun") for f in files], [10.0] * len(files), fold)
    got = np.array([scores[(p, o)] for p, o in zip(windows.paths, windows.onsets, strict=True)])
    assert _auc(got, shot.astype(int)) > 0.9
    assert np.median(got[other]) < 0.5


def test_window_probe_never_scores_a_window_with_its_own_files() -> None:
    rng = np.random.default_rng(4)
    files = [f"f{k}.flac" for k in range(200)]
    y = rng.random(200) < 0.5
    x = rng.random((200, 300)) * 0.98 + 0.01
    windows = _windows(files, [0] * 200, [-20.0] * 200, x)
    scores = cross_fitted_window_scores(windows, files, list(y), [6.0] * 200, random_folds(files))
    assert 0.3 < _auc(np.array([scores[(f, 0)] for f in files]), y.astype(int)) < 0.7


def test_window_features_round_trip_and_per_file_features_are_told_apart(tmp_path: Path) -> None:
    per_window = tmp_path / "w.npz"
    np.savez_compressed(
        per_window,
        paths=np.array(["a.flac", "a.flac"]),
        onsets=np.array([10, 900]),
        block_dbfs=np.array([-20.0, -35.0], np.float32),
        features=np.eye(2, dtype=np.float32),
    )
    got = read_window_features(per_window)
    assert got is not None and list(got.onsets) == [10, 900] and list(got.paths) == ["a.flac", "a.flac"]
    per_file = tmp_path / "f.npz"
    np.savez_compressed(per_file, paths=np.array(["a.flac"]), features=np.ones((1, 2), np.float32))
    assert read_window_features(per_file) is None


def test_window_probe_refuses_features_of_other_files() -> None:
    windows = _windows(["x.flac"], [0], [-20.0], np.full((1, 3), 0.5))
    with pytest.raises(KeyError, match="none of the training files"):
        cross_fitted_window_scores(windows, ["a.flac"], [True], [6.0], [0])


def test_cv_report_scores_a_file_by_its_best_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    rows, paths, onsets, dbfs = [], [], [], []
    for k in range(80):
        label = "gunshot" if k % 2 else "door"
        rows.append(f"{label}{k}.flac\t{label}\t{label}:{k}\tus8k\t1.0\tCC0\n")
        if k < 78:  # two files without any gate candidate score 0
            paths += [f"{label}{k}.flac"] * 2
            onsets += [100, 9000]
            dbfs += [-10.0, -40.0]
    (tmp_path / "manifest.tsv").write_text("path\tlabel\tgroup\tsource\tduration_s\tlicense\n" + "".join(rows))
    shot = np.array([p.startswith("gunshot") and d == -10.0 for p, d in zip(paths, dbfs, strict=True)])
    x = 1 / (1 + np.exp(-(rng.standard_normal((len(paths), 4)) + 3.0 * shot[:, None])))
    np.savez_compressed(
        tmp_path / "w.npz",
        paths=np.array(paths),
        onsets=np.array(onsets),
        block_dbfs=np.array(dbfs, np.float32),
        features=x.astype(np.float32),
    )
    assert main(["--data", str(tmp_path), "--cv", str(tmp_path / "w.npz")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"]["urban_gunshot"] == 40 and report["auc_gunshot_vs_all_urban"] > 0.9
    assert main(["--data", str(tmp_path), "--cv", str(tmp_path / "w.npz"), "--pool"]) == 0
    pooled = json.loads(capsys.readouterr().out)
    assert pooled["files"]["urban_gunshot"] == 40 and pooled["auc_gunshot_vs_all_urban"] > 0.9


def test_pooling_takes_each_class_scores_maximum_over_a_files_windows() -> None:
    windows = _windows(
        ["a.flac", "a.flac", "b.flac", "x.flac"],
        [0, 800, 0, 0],
        [-20.0] * 4,
        np.array([[0.1, 0.9], [0.7, 0.2], [0.3, 0.3], [1.0, 1.0]]),
    )
    pooled = pooled_file_features(windows, ["a.flac", "b.flac", "c.flac"])
    assert pooled["a.flac"].tolist() == pytest.approx([0.7, 0.9])
    assert pooled["b.flac"].tolist() == pytest.approx([0.3, 0.3])
    assert pooled["c.flac"].tolist() == [0.0, 0.0]  # no candidate; x.flac is not in the manifest


def test_learning_curve_gains_from_more_gunshot_recordings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # four kinds of gunshot, each lifting its own feature: a probe that saw few recordings misses the other kinds
    rng = np.random.default_rng(3)
    rows, features = [], {}
    for k in range(120):
        label = "gunshot" if k < 40 else "door"
        path = f"{label}{k}.flac"
        rows.append(f"{path}\t{label}\t{label}:{k}\tus8k\t1.0\tCC0\n")
        x = rng.standard_normal(4)
        if label == "gunshot":
            x[k % 4] += 6.0
        features[path] = 1 / (1 + np.exp(-x))
    (tmp_path / "manifest.tsv").write_text("path\tlabel\tgroup\tsource\tduration_s\tlicense\n" + "".join(rows))
    np.savez_compressed(
        tmp_path / "f.npz", paths=np.array(list(features)), features=np.array(list(features.values()), np.float32)
    )
    points = {}
    for share in ("0.05", "1"):  # about 2 and 32 training recordings a fold
        cv = ["--data", str(tmp_path), "--cv", str(tmp_path / "f.npz"), "--urban-gunshot-share", share, "--draws", "3"]
        assert main(cv) == 0
        points[share] = json.loads(capsys.readouterr().out)
    few, all_ = points["0.05"], points["1"]
    assert few["draws"] == 3 and set(few["sd"]) == set(few["mean"]) == set(few["hash_ranked"])
    assert all_["sd"]["auc_all_urban"] == 0.0, "every draw of all recordings is the same subset"
    assert all_["hash_ranked"]["auc_all_urban"] > 0.95
    assert all_["hash_ranked"]["auc_all_urban"] > few["mean"]["auc_all_urban"] + 0.1
    assert all_["hash_ranked"]["auc_all_urban"] > few["hash_ranked"]["auc_all_urban"] + 0.1
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--cv", str(tmp_path / "f.npz"), "--urban-gunshot-share", "0"])
    assert "--urban-gunshot-share" in capsys.readouterr().err
