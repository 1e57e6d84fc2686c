"""Smoke test of the training pipeline on a few seconds of synthetic audio: trains a few steps and exports a
model that the runtime loads. Says nothing about quality (that is measured on real recordings)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("tensorflow")
pytest.importorskip("tqdm")

from edge.detect.runtime import TfliteModel
from edge.dsp.logmel import SECOND_LOOK_WINDOW_S, FrontEndParams, LogMel, second_look_front_end
from edge.dsp.onset import GateParams
from edge.errors import ModelError
from edge.evaluate.scores import read_scores
from tools import train
from tools.augment import AugmentParams
from tools.dataset import Item, fold_groups, gate_candidates, load_audio
from tools.dataset import read_manifest as read_items

RATE = 16_000
HEADER = "path\tlabel\tgroup\tsource\tduration_s\toriginal_sr\tlicense\torigin\tnote\n"

pytestmark = [pytest.mark.train, pytest.mark.slow]


def _impulse(x: np.ndarray, onset: int, peak: float, decay_ms: float, rng: np.random.Generator) -> None:
    n = min(len(x) - onset, round(0.2 * RATE))
    body = rng.standard_normal(n) * np.exp(-np.arange(n) / (decay_ms * RATE / 1000.0))
    x[onset : onset + n] += peak * body / np.abs(body).max()


def _clip(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(RATE) * 30.0
    if kind == "gunshot":
        _impulse(x, int(rng.integers(2000, 6000)), 20_000.0, 15.0, rng)
    elif kind == "door":
        t = np.arange(3000) / RATE
        x[5000:8000] += 8_000.0 * np.sin(2 * np.pi * 120.0 * t) * np.exp(-t * 30.0)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _write_data(root: Path) -> Path:
    data = root / "audio"
    data.mkdir()
    rows = []
    for label, source in (("gunshot", "us8k"), ("door", "dcase2016"), ("street", "synthetic")):
        for k in range(4):
            name = f"{label}_{k}.flac"
            sf.write(str(data / name), _clip(label, seed=hash((label, k)) % 1000), RATE, subtype="PCM_16")
            rows.append(f"{name}\t{label}\t{label}:{k}\t{source}\t1.000\t16000\tsynthetic test data\ttest\t\n")
    (data / "manifest.tsv").write_text(HEADER + "".join(rows))
    return data


def _write_teacher(data: Path, path: Path) -> Path:
    """Teacher features for every file of the manifest: a noisy hint of the label in 8 class scores."""
    rng = np.random.default_rng(0)
    paths = [line.split("\t")[0] for line in (data / "manifest.tsv").read_text().splitlines()[1:]]
    hint = np.array([p.startswith("gunshot") for p in paths], float)[:, None]
    features = 1 / (1 + np.exp(-(2 * hint - 1 + rng.standard_normal((len(paths), 8)))))
    np.savez_compressed(path, paths=np.array(paths), features=features.astype(np.float32))
    return path


def _write_window_teacher(data: Path, path: Path, shift: int = 0) -> Path:
    """Per-window teacher features at every clean gate candidate (moved by ``shift`` samples): a noisy hint of
    whether the window is a gunshot file's."""
    rng = np.random.default_rng(0)
    paths, onsets, dbfs = [], [], []
    for item in read_items(data):
        for c in gate_candidates(load_audio(data / item.path), GateParams()):
            paths.append(item.path)
            onsets.append(c.onset + shift)
            dbfs.append(c.block_dbfs)
    hint = np.array([p.startswith("gunshot") for p in paths], float)[:, None]
    features = 1 / (1 + np.exp(-(2 * hint - 1 + rng.standard_normal((len(paths), 8)))))
    np.savez_compressed(
        path,
        paths=np.array(paths),
        onsets=np.array(onsets),
        block_dbfs=np.array(dbfs, np.float32),
        features=features.astype(np.float32),
    )
    return path


def _quick(data: Path, out: Path, *extra: str) -> int:
    return train.main(["--data", str(data), "--out", str(out), "--quick", "--max-steps", "3", "--workers", "1", *extra])


def test_missing_data_folder_gives_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_quick_training_exports_a_loadable_model(tmp_path: Path) -> None:
    data = _write_data(tmp_path)
    out = tmp_path / "models"
    augment = ["--street-irs", "2", "--bursts", "0.5", "--band-norm"]  # the street channel, bursts, band change
    teacher = _write_teacher(data, tmp_path / "teacher.npz")
    code = train.main(
        [
            "--data",
            str(data),
            "--out",
            str(out),
            "--quick",
            "--max-steps",
            "3",
            "--workers",
            "1",
            "--seed",
            "1",
            *augment,
            "--teacher",
            str(teacher),
        ]
    )
    assert code == 0
    meta = json.loads((out / "gunshot.json").read_text())
    assert meta["teacher"]["weight"] == 0.5 and meta["teacher"]["features"] == "teacher.npz"
    assert meta["training"]["recipe"]["band_norm"] is True
    assert meta["output"] == "logit"
    assert meta["front_end"] == FrontEndParams().to_dict()
    assert meta["split"]["val_groups"], "the split must record its validation groups"

    model = TfliteModel(out / "gunshot.tflite")
    patches = LogMel().patches(np.stack([_clip("gunshot", 1)[:8000], _clip("door", 2)[:8000]]))
    scores = model.predict(patches)
    assert scores.shape == (2,)
    assert np.all((scores >= 0.0) & (scores <= 1.0))


def test_per_window_distillation_gives_each_patch_its_clean_windows_score(tmp_path: Path) -> None:
    data = _write_data(tmp_path)
    teacher = _write_window_teacher(data, tmp_path / "windows.npz")
    assert _quick(data, tmp_path / "m", "--teacher", str(teacher), "--teacher-weight", "0.3", "--seed", "2") == 0
    info = json.loads((tmp_path / "m" / "gunshot.json").read_text())["teacher"]
    assert info["per"] == "window" and info["weight"] == 0.3
    assert info["patches_distilled"] > 0 and 0.0 <= info["cross_fitted_patch_auc"] <= 1.0


def test_a_teacher_head_trains_beside_the_logit_and_is_dropped_at_export(tmp_path: Path) -> None:
    data = _write_data(tmp_path)
    teacher = _write_window_teacher(data, tmp_path / "windows.npz")
    assert _quick(data, tmp_path / "m", "--teacher", str(teacher), "--teacher-aux", "3", "--aux-weight", "0.2") == 0
    info = json.loads((tmp_path / "m" / "gunshot.json").read_text())["teacher"]
    assert info["mode"] == "auxiliary head" and info["components"] == 3 and info["weight"] == 0.2
    assert info["patches_distilled"] > 0 and 0.0 < info["explained_variance"] <= 1.0
    model = TfliteModel(tmp_path / "m" / "gunshot.tflite")
    assert model.predict(LogMel().patches(_clip("gunshot", 1)[None, :8000])).shape == (1,)


def test_a_teacher_head_needs_window_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_data(tmp_path)
    teacher = _write_teacher(data, tmp_path / "files.npz")
    assert _quick(data, tmp_path / "m", "--teacher", str(teacher), "--teacher-aux", "3") == 2
    assert "per-window features" in capsys.readouterr().err


def test_window_features_from_other_onsets_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_data(tmp_path)
    teacher = _write_window_teacher(data, tmp_path / "windows.npz", shift=7)
    assert _quick(data, tmp_path / "m", "--teacher", str(teacher)) == 2
    err = capsys.readouterr().err
    assert "no teacher window at onset" in err and "windows.npz" in err


def test_augmented_patches_know_the_clean_onset_they_show() -> None:
    known = np.array([1000, 5000])
    placed = np.concatenate([known + 300, known + 300 + 4000])  # two burst copies, shifted into the clip
    assert train._origin(1310, placed, known, tolerance=40) == 1000
    assert train._origin(9290, placed, known, tolerance=40) == 5000  # the second copy of the second onset
    assert train._origin(3000, placed, known, tolerance=40) == -1  # an impulse of the ambience
    assert train._origin(3000, placed[:0], known[:0], tolerance=40) == -1


def test_kfold_scores_every_file_out_of_fold_and_trains_the_final_model(tmp_path: Path) -> None:
    from tools import kfold

    data = _write_data(tmp_path)
    out, final = tmp_path / "cv", tmp_path / "final"
    quick = ["--quick", "--max-steps", "2", "--workers", "1", "--arch", "sepcnn"]
    code = kfold.main(["--data", str(data), "--out", str(out), "--folds", "2", "--final", str(final), *quick])
    assert code == 0
    cv = json.loads((out / "cv.json").read_text())
    held_out = [g for fold in cv["fold_groups"] for g in fold]
    assert sorted(held_out) == sorted({f"{label}:{k}" for label in ("gunshot", "door", "street") for k in range(4)})
    scored = [json.loads(line)["file"] for line in (out / "oof_scores.jsonl").read_text().splitlines()]
    assert len(scored) == 12 and len(set(scored)) == 12
    meta = json.loads((final / "gunshot.json").read_text())
    assert meta["threshold"] == cv["metrics"]["threshold"] == meta["metrics"]["threshold"]
    assert meta["split"]["val_groups"] == [] and meta["validation"]["folds"] == 2
    assert meta["architecture"]["type"] == "sepcnn"
    assert TfliteModel(final / "gunshot.tflite").second_look is None  # loads: sha256 and front end match

    # second looks for those fold models, on the longer window the unit expects of them
    pre, post = SECOND_LOOK_WINDOW_S
    second_cv = tmp_path / "cv-second"
    look = ["--first-look", str(out), "--from-score", "0.0", "--look-weight", "1", "--window", f"{pre},{post}"]
    code = kfold.main(
        ["--data", str(data), "--out", str(second_cv), "--folds", "2", "--final", str(final), *look, *quick]
    )
    assert code == 0
    cv2 = json.loads((second_cv / "cv.json").read_text())
    assert cv2["second_look_of"] == {"first_run": str(out), "from_score": 0.0, "weight": 1.0}
    meta = json.loads((final / "gunshot.json").read_text())
    assert meta["second_look"]["model"] == "gunshot-second.tflite"
    assert meta["threshold"] == cv2["metrics"]["threshold"]
    model = TfliteModel(final / "gunshot.tflite")
    assert model.second_look is not None and model.second_look.front_end == second_look_front_end()
    with pytest.raises(ModelError, match=rf"pre_s={pre}"):
        TfliteModel(final / "gunshot-second.tflite")  # the unit's first-look front end cannot feed it
    # every candidate got a second look (from_score 0), so the out-of-fold scores are the second looks' alone
    second_scores, first_scores = read_scores(second_cv / "oof_scores.jsonl"), read_scores(out / "oof_scores.jsonl")
    assert second_scores.keys() == first_scores.keys()
    assert any(second_scores[f].gun_max != first_scores[f].gun_max for f in first_scores)


def test_an_ensemble_of_two_training_seeds_averages_their_logits_and_ships_both(tmp_path: Path) -> None:
    from tools import ensemble, kfold

    data = _write_data(tmp_path)
    quick = ["--quick", "--max-steps", "2", "--workers", "1", "--arch", "sepcnn", "--folds", "2"]
    runs, finals = [tmp_path / "cv0", tmp_path / "cv1"], [tmp_path / "final0", tmp_path / "final1"]
    for seed, (run, final) in enumerate(zip(runs, finals, strict=True)):
        argv = ["--data", str(data), "--out", str(run), "--final", str(final), "--train-seed", str(seed), *quick]
        assert kfold.main(argv) == 0
    out, shipped = tmp_path / "ens", tmp_path / "shipped"
    argv = ["--data", str(data), "--out", str(out), "--runs", *map(str, runs), "--from-score", "0"]
    assert ensemble.main([*argv, "--final", str(shipped), "--finals", *map(str, finals)]) == 0

    cv = json.loads((out / "cv.json").read_text())
    assert cv["ensemble_of"] == {"runs": [str(r) for r in runs], "train_seeds": [0, 1], "from_score": 0.0}
    # from_score 0: every candidate's score is the mean of the two fold models' logits
    alone = [read_scores(run / "oof_scores.jsonl") for run in runs]
    both = read_scores(out / "oof_scores.jsonl")
    assert both.keys() == alone[0].keys()
    pairs = [
        (s, a, b)
        for f in both
        for (_, s), (_, a), (_, b) in zip(
            both[f].marks or (), alone[0][f].marks or (), alone[1][f].marks or (), strict=True
        )
    ]
    # (the scores files round to 6 decimals: compare where that rounding moves a logit by < 0.001)
    clear = [(s, a, b) for s, a, b in pairs if min(s, a, b) > 0.001 and max(s, a, b) < 0.999]
    assert len(pairs) >= 12 and len(clear) >= len(pairs) // 2
    for s, a, b in clear:
        assert np.log(s / (1 - s)) == pytest.approx((np.log(a / (1 - a)) + np.log(b / (1 - b))) / 2, abs=0.01)

    meta = json.loads((shipped / "gunshot.json").read_text())
    assert meta["threshold"] == cv["metrics"]["threshold"] and meta["validation"]["ensemble_of"] == cv["ensemble_of"]
    assert [m["model"] for m in meta["second_look"]["models"]] == ["gunshot-member1.tflite"]
    assert json.loads((shipped / "gunshot-member1.json").read_text())["member_of"]["model"] == "gunshot.tflite"
    model = TfliteModel(shipped / "gunshot.tflite")  # loads: every sha256 and front end match
    assert model.second_look is not None and model.second_look.weight == 0.5
    assert model.second_look.front_end == FrontEndParams()

    # the same runs behind a less sensitive gate: fewer candidates scored, and cv.json says which gate
    deaf = tmp_path / "deaf"
    assert (
        ensemble.main(["--data", str(data), "--out", str(deaf), "--runs", *map(str, runs), "--gate-rise-db", "25"]) == 0
    )
    assert json.loads((deaf / "cv.json").read_text())["gate"]["rise_db"] == 25.0
    assert cv["gate"]["rise_db"] == GateParams().rise_db
    fewer = read_scores(deaf / "oof_scores.jsonl")
    assert sum(len(f.marks or ()) for f in fewer.values()) < sum(len(f.marks or ()) for f in both.values())


def test_an_ensemble_of_runs_with_other_folds_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools import ensemble

    data = _write_data(tmp_path)
    for name, folds in (("a", 2), ("b", 3)):
        (tmp_path / name).mkdir()
        groups = fold_groups(read_items(data), folds, 0)
        (tmp_path / name / "cv.json").write_text(json.dumps({"fold_groups": groups}))
    argv = ["--data", str(data), "--out", str(tmp_path / "o"), "--runs", str(tmp_path / "a"), str(tmp_path / "b")]
    assert ensemble.main(argv) == 2
    assert "has other folds" in capsys.readouterr().err
    assert ensemble.main([*argv[:-2], str(tmp_path / "a"), str(tmp_path / "none")]) == 2
    assert "not a finished tools.kfold run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--runs", "a"], "at least two runs"),
        (["--runs", "a", "b", "--final", "f"], "--final and --finals go together"),
        (["--runs", "a", "b", "--final", "f", "--finals", "x"], "one folder per run (2), got 1"),
        (["--runs", "a", "b", "--from-score", "1.5"], "--from-score 1.5: must lie in 0..1"),
        (["--runs", "a", "b", "--gate-rise-db", "2"], "--gate-rise-db 2.0: must lie in 3..30 (dB)"),
        (["--runs", "a", "b", "--gate-busy-s", "-1"], "--gate-busy-s -1.0: must be 0 or more"),
        (["--runs", "a", "b", "--gate-rise-db", "9", "--final", "f", "--finals", "x", "y"], "leave --gate-rise-db"),
    ],
)
def test_ensemble_arguments_are_checked(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tools import ensemble

    with pytest.raises(SystemExit):
        ensemble.parse_args(["--data", "d", "--out", "o", *extra])
    assert message in capsys.readouterr().err


def test_a_second_look_weight_outside_0_1_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from tools import kfold

    with pytest.raises(SystemExit):
        kfold.parse_args(["--data", "d", "--out", "o", "--first-look", "r", "--look-weight", "2"])
    assert "--look-weight 2.0: must lie in 0..1" in capsys.readouterr().err


def test_a_final_second_look_for_another_window_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import kfold

    data, first = _write_data(tmp_path), tmp_path / "cv"
    first.mkdir()
    (first / "cv.json").write_text(json.dumps({"fold_groups": fold_groups(read_items(data), 2, 0)}))
    argv = ["--data", str(data), "--out", str(tmp_path / "cv2"), "--folds", "2", "--first-look", str(first)]
    assert kfold.main([*argv, "--final", str(tmp_path / "final"), "--window", "0.2,0.4"]) == 2
    assert "add --window 0.5,0.4 (got 0.2,0.4)" in capsys.readouterr().err
    assert not (tmp_path / "cv2" / "fold0").exists()


def test_a_bad_window_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--window", "0.5"])
    assert "PRE,POST" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "-5", "8000"])
def test_a_bad_fmin_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--fmin", value])
    assert "lowest band edge in Hz, 0 to 7800" in capsys.readouterr().err


def test_the_training_gate_is_the_pinned_one_unless_asked() -> None:
    assert train.gate_from_args(train.parse_args(["--data", "d", "--out", "o"])) == train.TRAIN_GATE
    gate = train.gate_from_args(train.parse_args(["--data", "d", "--out", "o", "--gate-rise-db", "7"]))
    assert gate == GateParams(rise_db=7.0, min_dbfs=train.TRAIN_GATE.min_dbfs)


def test_a_bad_training_gate_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--gate-rise-db", "40"])
    assert "--gate-rise-db 40.0: must lie in 3..30 (dB)" in capsys.readouterr().err


def test_fmin_reaches_the_front_end() -> None:
    fe = train.front_end_from_args(
        train.parse_args(["--data", "d", "--out", "o", "--fmin", "150", "--window", "0.5,0.4"])
    )
    assert (fe.fmin_hz, fe.pre_s, fe.post_s) == (150.0, 0.5, 0.4)
    assert train.front_end_from_args(train.parse_args(["--data", "d", "--out", "o"])) == FrontEndParams()


@pytest.mark.parametrize("value", ["120", "a,b", "120,-6", "120,6,3"])
def test_bad_copies_are_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--copies", value])
    assert "give two whole numbers GUN,HARD, e.g. 60,6" in capsys.readouterr().err


def test_copies_reach_the_recipe() -> None:
    recipe = train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o", "--copies", "120,12"]))
    assert (recipe.gun_aug, recipe.hard_aug) == (120, 12)
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o"])).gun_aug == train.Recipe().gun_aug


def test_eq_reaches_the_recipe_and_is_off_by_default() -> None:
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o", "--eq", "0.4"])).p_eq == 0.4
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o"])).p_eq == 0.0
    only_low = train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o", "--eq-high-db", "0,0"]))
    assert only_low.eq_high_db == (0.0, 0.0) and train.Recipe().eq_high_db == AugmentParams().high_shelf_db


@pytest.mark.parametrize("value", ["6,-12", "a,b", "-40,0", "3"])
def test_a_bad_eq_gain_range_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", f"--eq-high-db={value}"])
    assert "give two gains LOW,HIGH in dB" in capsys.readouterr().err


def test_jitter_moves_windows_within_its_bound_and_is_off_by_default() -> None:
    rng = np.random.default_rng(0)
    onsets = list(range(1_000, 101_000, 1_000))
    assert train.jittered(onsets, 0.0, 16_000, rng) == onsets
    moved = train.jittered(onsets, 0.005, 16_000, rng)
    shifts = np.array(moved) - np.array(onsets)
    assert np.abs(shifts).max() <= 80 and len(set(shifts.tolist())) > 20
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o", "--jitter", "5"])).jitter_s == 0.005
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o"])).jitter_s == 0.0


def test_a_jitter_beyond_the_window_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--jitter", "120"])
    assert "--jitter 120" in capsys.readouterr().err


def test_an_excluded_source_is_left_out_of_training_and_named(tmp_path: Path) -> None:
    data = _write_data(tmp_path)
    out = tmp_path / "models"
    assert _quick(data, out, "--exclude-source", "synthetic", "--all-groups", "--threshold", "0.5") == 0
    meta = json.loads((out / "gunshot.json").read_text())
    assert meta["training_data"]["excluded_sources"] == ["synthetic"]
    assert "street" not in meta["training_data"]["files"]["label"]
    assert meta["training_data"]["files"]["label"]["gunshot"] == 4


def test_an_unknown_excluded_source_names_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_data(tmp_path)
    assert _quick(data, tmp_path / "models", "--exclude-source", "forrest") == 2
    err = capsys.readouterr().err.strip()
    assert "--exclude-source forrest" in err and "dcase2016, synthetic, us8k" in err and "\n" not in err


def test_far_is_a_share_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o", "--far", "0.3"])).p_far == 0.3
    assert train.recipe_from_args(train.parse_args(["--data", "d", "--out", "o"])).p_far == 0.0
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--far", "1.5"])
    assert "--far 1.5" in capsys.readouterr().err


def test_added_data_is_trained_on_and_named(tmp_path: Path) -> None:
    data = _write_data(tmp_path)
    survey = tmp_path / "survey"
    survey.mkdir()
    rows = []
    for k in range(3):
        sf.write(str(survey / f"site_{k}.flac"), _clip("street", seed=50 + k), RATE, subtype="PCM_16")
        rows.append(f"site_{k}.flac\tbackground\tsite:pole-7\tsite:pole-7\t1.000\t16000\town recording\tpole-7\t\n")
    (survey / "manifest.tsv").write_text(HEADER + "".join(rows))
    out = tmp_path / "models"
    assert _quick(data, out, "--add-data", str(survey), "--all-groups", "--threshold", "0.5") == 0
    meta = json.loads((out / "gunshot.json").read_text())
    assert meta["training_data"]["files"]["label"]["background"] == 3
    [added] = meta["training_data"]["added"]
    assert added["folder"] == str(survey) and added["files"]["label"] == {"background": 3}
    assert _quick(data, tmp_path / "m2", "--add-data", str(tmp_path / "nowhere")) == 2


def _item(group: str, label: str = "gunshot", source: str = "us8k") -> Item:
    return Item(path=f"{group}.flac", label=label, group=group, source=source, duration_s=1.0, license="cc0")


def _urban_shot_groups(items: list[Item]) -> set[str]:
    return {i.group for i in items if i.is_gunshot and i.urban}


def test_a_share_of_urban_gunshot_recordings_is_nested_and_leaves_the_rest() -> None:
    items = [_item(f"shot{k}") for k in range(20)]
    items += [_item("fw", "fireworks"), _item("far", source="forest"), _item("shot3b", "street", "us8k")]
    items.append(replace(items[0], path="shot0-second-clip.flac"))
    half, quarter = train.fewer_urban_gunshots(items, 0.5), train.fewer_urban_gunshots(items, 0.25)
    assert len(_urban_shot_groups(half)) == 10 and len(_urban_shot_groups(quarter)) == 5
    assert _urban_shot_groups(quarter) < _urban_shot_groups(half)
    assert {"fw", "far", "shot3b"} <= {i.group for i in quarter}
    assert train.fewer_urban_gunshots(list(reversed(items)), 0.5) == [i for i in reversed(items) if i in half]
    kept_first = [i for i in half if i.group == "shot0"]
    assert len(kept_first) in (0, 2), "a recording's clips stay together"
    assert len(_urban_shot_groups(train.fewer_urban_gunshots(items, 0.01))) == 1
    draws = [_urban_shot_groups(train.fewer_urban_gunshots(items, 0.5, draw)) for draw in range(4)]
    assert all(len(d) == 10 for d in draws) and len({frozenset(d) for d in draws}) > 1


def test_an_urban_gunshot_share_is_named_and_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_data(tmp_path)
    out = tmp_path / "models"
    assert _quick(data, out, "--urban-gunshot-share", "0.5", "--all-groups", "--threshold", "0.5") == 0
    kept = json.loads((out / "gunshot.json").read_text())["training_data"]["urban_gunshot_share"]
    all_shots = _urban_shot_groups(read_items(data))
    assert kept["share"] == 0.5 and len(kept["groups"]) == round(len(all_shots) / 2) and set(kept["groups"]) < all_shots
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--urban-gunshot-share", "0"])
    assert "--urban-gunshot-share 0" in capsys.readouterr().err
