"""K-fold cross-validation over groups, then (optionally) the final model on every group.

    python -m tools.kfold --data ../shared/data/audio --out DIR [--folds 5] [--seed 0] [--final models/]
        [--resume] [--only-fold K ...] [any tools.train option: --arch, --max-steps, --mine-hard-negatives, ...]

The groups are dealt into ``--folds`` folds (:func:`tools.dataset.fold_groups`). For each fold a model is trained
by :mod:`tools.train` on the other folds and exported to ``DIR/foldK/``. Every file is then scored through the real
streaming pipeline (``polewatch evaluate``'s runner) by the one model that never saw its group, giving out-of-fold
scores for the whole manifest. The operating threshold is the one at which 2 % of urban hard-negative files score
at or above it; the report (``DIR/cv.json``, ``DIR/oof_scores.jsonl``, printed table) is computed at that threshold.
With ``--final DIR`` the model is retrained on every group with that threshold and its metadata carries the
cross-validated metrics: a single split holds too few urban gunshots to tell recipes apart.

With ``--first-look RUN`` the models trained are second looks (train them with ``--window``, see
:class:`edge.detect.detector.SecondLook`): every file is scored by RUN's fold model with this run's fold model as its
second look, both of the fold that never saw the file's group. ``--final DIR`` then trains the second look on every
group as ``DIR/gunshot-second.tflite`` and names it in ``DIR/gunshot.json``, the first look's final model, which must
be there already; that metadata gets the cascade's threshold and metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.detect.detector import SecondLook
from edge.detect.params import DetectorParams
from edge.detect.runtime import TfliteModel, read_metadata
from edge.dsp.logmel import SECOND_LOOK_WINDOW_S, second_look_front_end
from edge.dsp.onset import GateParams
from edge.evaluate import metrics
from edge.evaluate.labels import FOREST, HARD_NEGATIVES
from edge.evaluate.manifest import ManifestRow, read_manifest
from edge.evaluate.report import build_report, format_report
from edge.evaluate.runner import FileResult, evaluate_files
from edge.evaluate.scores import write_scores
from tools import train
from tools.dataset import DataError, exit_status, fold_groups, manifest_path
from tools.dataset import read_manifest as read_items

log = logging.getLogger("tools.kfold")

TARGET_HARD_FPR = train.TARGET_HARD_FPR


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(prog="python -m tools.kfold", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.tsv and the FLAC files")
    ap.add_argument("--out", type=Path, required=True, help="folder for the fold models and the CV report")
    ap.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fold assignment and of training")
    ap.add_argument(
        "--train-seed", type=int, default=None, help="seed of training only (default --seed): the same folds, retrained"
    )
    ap.add_argument("--final", type=Path, default=None, help="then train on every group and export here")
    ap.add_argument("--resume", action="store_true", help="reuse fold models already in --out")
    ap.add_argument(
        "--only-fold",
        type=int,
        action="append",
        default=None,
        metavar="K",
        help="train just this fold (repeatable) and stop: to run folds in parallel processes, then --resume",
    )
    ap.add_argument(
        "--first-look",
        type=Path,
        default=None,
        metavar="RUN",
        help="train second looks for the fold models of this finished tools.kfold run (same --folds and --seed)",
    )
    ap.add_argument(
        "--from-score", type=float, default=0.5, help="with --first-look: first score that calls the second look"
    )
    ap.add_argument(
        "--look-weight", type=float, default=0.5, help="with --first-look: share of the second look's logit"
    )
    args, train_argv = ap.parse_known_args(argv)
    if args.folds < 2:
        ap.error(f"--folds {args.folds}: need at least 2")
    for flag, value in (("--from-score", args.from_score), ("--look-weight", args.look_weight)):
        if not 0.0 <= value <= 1.0:
            ap.error(f"{flag} {value}: must lie in 0..1")
    return args, train_argv


def _train_argv(args: argparse.Namespace, out: Path, extra: Sequence[str]) -> list[str]:
    seed = args.seed if args.train_seed is None else args.train_seed
    return ["--data", str(args.data), "--out", str(out), "--seed", str(seed), *extra]


def train_folds(args: argparse.Namespace, folds: list[list[str]], extra: Sequence[str]) -> list[Path]:
    paths = []
    for k, groups in enumerate(folds):
        if args.only_fold is not None and k not in args.only_fold:
            continue
        out = args.out / f"fold{k}"
        model = out / "gunshot.tflite"
        if args.resume and model.is_file() and model.with_suffix(".json").is_file():
            log.info("fold %d: reusing %s", k, model)
        else:
            log.info("fold %d of %d: training without %d groups", k + 1, len(folds), len(groups))
            train.run(train.parse_args(_train_argv(args, out, extra)), val_groups=groups)
            _clear_keras()
        paths.append(model)
    return paths


def _clear_keras() -> None:
    import keras

    keras.backend.clear_session()


def own_front_end_model(path: Path) -> TfliteModel:
    """A model this tool trained, loaded with the front end it was trained for (``tools.train --window``)."""
    return TfliteModel(path, front_end=read_metadata(path).front_end)


@dataclass(frozen=True)
class Cascade:
    """The fold models being trained are second looks; ``first_run``'s fold models are their first looks."""

    first_run: Path
    from_score: float
    weight: float

    def first_look(self, k: int) -> Path:
        return self.first_run / f"fold{k}" / "gunshot.tflite"

    def check_folds(self, folds: list[list[str]]) -> None:
        if finished_run(self.first_run, "--first-look")["fold_groups"] != folds:
            raise DataError(f"--first-look {self.first_run} has other folds: give the same --folds and --seed")


def finished_run(run: Path, flag: str) -> dict[str, Any]:
    """The cv.json of a finished tools.kfold run (its folds, metrics, options), or a DataError naming ``flag``."""
    try:
        cv: dict[str, Any] = json.loads((run / "cv.json").read_text())
        cv["fold_groups"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{flag} {run}: not a finished tools.kfold run ({exc})") from None
    return cv


def _check_second_look_window(train_args: argparse.Namespace) -> None:
    """Before hours of training: a final second look must have the window the unit feeds second looks."""
    window = train.front_end_from_args(train_args)
    if window != second_look_front_end():
        pre, post = SECOND_LOOK_WINDOW_S
        raise DataError(
            f"--final with --first-look ships a second look, which the unit feeds a {pre},{post} s window: "
            f"add --window {pre},{post} (got {window.pre_s},{window.post_s})"
        )


FoldScorer = Callable[[int], tuple[TfliteModel, SecondLook | None]]
"""Fold number → the model that never saw that fold's groups, and its second look if any."""


def fold_scorer(models: list[Path], cascade: Cascade | None = None) -> FoldScorer:
    """This run's fold models alone, or as second looks of ``cascade``'s first looks."""

    def scorer(k: int) -> tuple[TfliteModel, SecondLook | None]:
        model = own_front_end_model(models[k])
        if cascade is None:
            return model, None
        return TfliteModel(cascade.first_look(k)), SecondLook(
            model, model.info.front_end, cascade.from_score, cascade.weight
        )

    return scorer


def score_out_of_fold(
    rows: list[ManifestRow],
    root: Path,
    folds: list[list[str]],
    scorer: FoldScorer,
    threshold: float,
    gate: GateParams | None = None,
) -> list[FileResult]:
    """Every row scored by the model(s) of the fold that holds its group, in manifest order, behind ``gate`` (the
    unit's default gate unless given)."""
    fold_of = {g: k for k, groups in enumerate(folds) for g in groups}
    unassigned = [r.path for r in rows if r.group not in fold_of]
    if unassigned:
        raise DataError(f"{len(unassigned)} manifest rows are in no fold (first: {unassigned[0]})")
    by_path: dict[str, FileResult] = {}
    for k in range(len(folds)):
        model, look = scorer(k)
        mine = [r for r in rows if fold_of[r.group] == k]
        results = evaluate_files(
            mine,
            root,
            model,
            threshold,
            params=DetectorParams(gate=gate or GateParams()),
            front_end=model.info.front_end,
            second_look=look,
        )
        by_path.update((r.row.path, r) for r in results)
    return [by_path[r.path] for r in rows]


def cross_validate(
    data: Path,
    out: Path,
    folds: list[list[str]],
    scorer: FoldScorer,
    describe: dict[str, Any],
    gate: GateParams | None = None,
) -> dict[str, Any]:
    """Score out of fold, pick the threshold, report at it; write ``out/cv.json`` and ``out/oof_scores.jsonl``.

    ``describe`` (seed, train options, ...) goes into cv.json after the method and fold count."""
    rows = read_manifest(manifest_path(data))
    # Pass 1 finds the out-of-fold scores and so the threshold; pass 2 counts detections (false alarms per
    # hour, rounds) at that one threshold, as the shipped model will run.
    threshold = operating_threshold(score_out_of_fold(rows, data, folds, scorer, 0.5, gate))
    results = score_out_of_fold(rows, data, folds, scorer, threshold, gate)
    report = build_report(results, threshold)
    write_scores(out / "oof_scores.jsonl", results)
    cv = {
        "method": (
            f"{len(folds)}-fold cross-validation over groups (tools.dataset.fold_groups); every file scored through "
            "the streaming pipeline by the fold model that never saw its group; threshold at "
            f"{100 * TARGET_HARD_FPR:g} % urban hard-negative false positives of the pooled out-of-fold scores"
        ),
        "folds": len(folds),
        "gate": asdict(gate or GateParams()),
        **describe,
        "fold_groups": folds,
        "metrics": headline(report),
        "fold_spread": fold_spread(results, folds, threshold),
        "report": report,
    }
    (out / "cv.json").write_text(json.dumps(cv, indent=1) + "\n")
    print(format_report(report))
    print(f"fold spread: {json.dumps({k: v for k, v in cv['fold_spread'].items() if k != 'per_fold'})}")
    return cv


def operating_threshold(results: list[FileResult]) -> float:
    """Lowest threshold (rounded up to 0.001) at which <= 2 % of urban hard-negative files reach it."""
    hard = [r.gun_max for r in results if r.ok and r.row.source != FOREST and r.row.label in HARD_NEGATIVES]
    return train.operating_threshold(hard)


def fold_spread(results: list[FileResult], folds: list[list[str]], threshold: float) -> dict[str, Any]:
    """Each fold's own urban AUCs (their spread says how much one split can mislead)."""
    per_fold = []
    for groups in folds:
        members = set(groups)
        sub = build_report([r for r in results if r.row.group in members], threshold)["subsets"]
        urban = sub.get("urban", sub["all"])
        per_fold.append(
            {
                "urban_gunshots": urban["files"]["gunshot"],
                "auc_gunshot_vs_all": urban["auc_gunshot_vs_all"],
                "auc_gunshot_vs_hard_negatives": urban["auc_gunshot_vs_hard_negatives"],
            }
        )
    spread: dict[str, Any] = {"per_fold": per_fold}
    for key in ("auc_gunshot_vs_all", "auc_gunshot_vs_hard_negatives"):
        values = [f[key] for f in per_fold if f[key] is not None]
        if len(values) >= 2:
            spread[key] = {"mean": round(statistics.mean(values), 4), "sd": round(statistics.stdev(values), 4)}
    return spread


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers the model card and the quality bars use, from an evaluate report."""
    urban = report["subsets"].get("urban", report["subsets"]["all"])
    forest = report["subsets"].get("forest")
    return {
        "auc_gunshot_vs_all_urban": urban["auc_gunshot_vs_all"],
        "auc_gunshot_vs_hard_negatives_urban": urban["auc_gunshot_vs_hard_negatives"],
        "auc_forest_gunshot_vs_forest_negatives": forest["auc_gunshot_vs_all"] if forest else None,
        "recall_at_hard_fpr": urban["recall_at_hard_fpr"],
        "threshold": report["threshold"],
        "at_threshold": urban["at_threshold"],
        "false_alarms_per_hour_ambience": urban["false_alarms_per_hour_ambience"],
        "per_label": urban["per_label"],
        "files": urban["files"],
    }


def run(args: argparse.Namespace, extra: Sequence[str]) -> dict[str, Any]:
    """Train (or reuse) the fold models, score out of fold, report; then the final model with ``--final``."""
    items = read_items(args.data)
    folds = fold_groups(items, args.folds, args.seed)
    cascade = None
    if args.first_look is not None:
        cascade = Cascade(args.first_look, args.from_score, args.look_weight)
        cascade.check_folds(folds)
        if args.final is not None:
            _check_second_look_window(train.parse_args(_train_argv(args, args.final, extra)))
    models = train_folds(args, folds, extra)
    if args.only_fold is not None:
        return {"trained_folds": args.only_fold}
    describe = {
        "seed": args.seed,
        "train_seed": args.seed if args.train_seed is None else args.train_seed,
        "train_options": list(extra),
        "second_look_of": None if cascade is None else {**asdict(cascade), "first_run": str(cascade.first_run)},
    }
    cv = cross_validate(args.data, args.out, folds, fold_scorer(models, cascade), describe)
    threshold = cv["metrics"]["threshold"]
    if args.final is not None and cascade is not None:
        finish_cascade(args, extra, threshold, cv, cascade)
    elif args.final is not None:
        finish_final(args, extra, threshold, cv)
    return cv


PINNED_LABELS = ("gunshot", *sorted(HARD_NEGATIVES))


def pinned_scores(model_path: Path, data: Path, threshold: float) -> dict[str, Any]:
    """The exported model's own AUC on the urban gunshot and hard-negative files, all of which it trained on:
    not a quality figure, a fingerprint that tests/test_model_quality.py re-measures to catch a changed model
    file, front end, gate or runtime."""
    rows = [r for r in read_manifest(manifest_path(data)) if r.source != FOREST and r.label in PINNED_LABELS]
    model = own_front_end_model(model_path)
    scored = evaluate_files(rows, data, model, threshold, front_end=model.info.front_end)
    results = [r for r in scored if r.ok]
    gun = [r.gun_max for r in results if r.row.label == "gunshot"]
    hard = [r.gun_max for r in results if r.row.label != "gunshot"]
    return {
        "what": "urban gunshot vs urban hard-negative files, all seen in training (a fingerprint, not a quality claim)",
        "files": len(results),
        "auc": round(metrics.auc(gun, hard), 6),
        "mean_gun_max": round(sum(gun) / len(gun), 6) if gun else None,
    }


def finish_final(args: argparse.Namespace, extra: Sequence[str], threshold: float, cv: dict[str, Any]) -> None:
    """Train the model on every group (or reuse it with ``--resume``: the threshold is metadata only) and write
    the cross-validated threshold and metrics into its metadata."""
    final_argv = [*_train_argv(args, args.final, extra), "--all-groups", "--threshold", str(threshold)]
    final_args = train.parse_args(final_argv)
    meta_path = args.final / f"{final_args.name}.json"
    if args.resume and meta_path.is_file() and meta_path.with_suffix(".tflite").is_file():
        log.info("final model: reusing %s", meta_path.with_suffix(".tflite"))
        meta = json.loads(meta_path.read_text())
    else:
        meta = train.run(final_args)
    meta["threshold"] = threshold
    meta["metrics"] = cv["metrics"]
    meta["pinned_scores"] = pinned_scores(args.final / f"{final_args.name}.tflite", args.data, threshold)
    meta["validation"] = {k: cv[k] for k in VALIDATION_KEYS}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"final model in {args.final}, threshold {threshold}")


VALIDATION_KEYS = ("method", "folds", "seed", "train_seed", "train_options", "fold_spread")
SECOND_LOOK_NAME = "gunshot-second"


def finish_cascade(
    args: argparse.Namespace, extra: Sequence[str], threshold: float, cv: dict[str, Any], cascade: Cascade
) -> None:
    """Train the second look on every group next to the first look's final model, and name it in that model's
    metadata with the cascade's cross-validated threshold and metrics."""
    first_meta_path = args.final / "gunshot.json"
    if not first_meta_path.is_file():
        raise DataError(f"--final {args.final}: put the first look's final model (gunshot.tflite + .json) there first")
    second_path = args.final / f"{SECOND_LOOK_NAME}.tflite"
    if not (args.resume and second_path.is_file() and second_path.with_suffix(".json").is_file()):
        final_argv = [*_train_argv(args, args.final, extra), "--all-groups", "--threshold", str(threshold)]
        train.run(train.parse_args([*final_argv, "--name", SECOND_LOOK_NAME]))
    second = read_metadata(second_path)
    meta = json.loads(first_meta_path.read_text())
    meta["version"] = train.MODEL_VERSION
    meta["second_look"] = {
        "model": second_path.name,
        "sha256": second.sha256,
        "from_score": cascade.from_score,
        "weight": cascade.weight,
        "front_end": second.front_end.to_dict(),
    }
    meta["threshold"] = threshold
    meta["metrics"] = cv["metrics"]
    meta["validation"] = {k: cv[k] for k in (*VALIDATION_KEYS, "second_look_of")}
    first_meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # the fingerprint loads the pair from it
    meta["pinned_scores"] = pinned_scores(args.final / "gunshot.tflite", args.data, threshold)
    first_meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"second look in {second_path}, named in {first_meta_path}; threshold {threshold}")


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.out.mkdir(parents=True, exist_ok=True)
    return exit_status(lambda: run(args, extra))


if __name__ == "__main__":
    sys.exit(main())
