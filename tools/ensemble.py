"""Average the logits of several finished tools.kfold runs (same folds, other training seeds), cross-validated.

    python -m tools.ensemble --data ../shared/data/audio --out DIR --runs RUN_A RUN_B [RUN_C ...]
        [--from-score 0.3] [--final models/ --finals FINAL_A FINAL_B [FINAL_C ...]]

On the unit RUN_A's network is the first look and the others together are its second look
(:class:`edge.detect.detector.MeanLogit` with weight n / (n + 1)): every candidate RUN_A scores ``--from-score`` or
more ends up with the plain mean of all n + 1 logits, every other candidate keeps RUN_A's score. So the extra
networks cost nothing on the quiet street, only on impulses that already look like shots.

Every file is scored through the streaming pipeline by the fold models (of every run) that never saw its group;
threshold and report as in tools.kfold (``DIR/cv.json``, ``DIR/oof_scores.jsonl``). With ``--final`` the runs'
final models (``tools.kfold --final``, one folder each, in the order of ``--runs``) are copied into one folder, the
first as ``gunshot.tflite``, the others as ``gunshot-member{i}.tflite``, and the first one's metadata names the
others with the ensemble's cross-validated threshold and metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.detect.detector import MeanLogit, SecondLook
from edge.detect.runtime import TfliteModel, read_metadata
from edge.dsp.onset import GateParams
from tools import train
from tools.dataset import DataError, exit_status
from tools.kfold import VALIDATION_KEYS, FoldScorer, cross_validate, finished_run, own_front_end_model, pinned_scores

log = logging.getLogger("tools.ensemble")

MEMBER_NAME = "gunshot-member{}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tools.ensemble", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.tsv and the FLAC files")
    ap.add_argument("--out", type=Path, required=True, help="folder for the ensemble's CV report")
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="finished tools.kfold runs; the first leads")
    ap.add_argument(
        "--from-score", type=float, default=0.3, help="the first network's score that calls the others (default 0.3)"
    )
    ap.add_argument(
        "--gate-rise-db",
        type=float,
        default=GateParams().rise_db,
        metavar="DB",
        help=f"score behind an onset gate with this rise (default {GateParams().rise_db:g}, the unit's)",
    )
    ap.add_argument(
        "--gate-busy-s",
        type=float,
        default=GateParams().busy_s,
        metavar="S",
        help=f"... which needs {GateParams().busy_rise_db:g} dB within S seconds of the previous candidate "
        f"(default {GateParams().busy_s:g}; 0: never)",
    )
    ap.add_argument("--final", type=Path, default=None, help="assemble the shipped model folder here")
    ap.add_argument("--finals", type=Path, nargs="+", default=None, help="with --final: each run's final model folder")
    args = ap.parse_args(argv)
    if len(args.runs) < 2:
        ap.error("--runs: give at least two runs")
    if not 0.0 <= args.from_score <= 1.0:
        ap.error(f"--from-score {args.from_score}: must lie in 0..1")
    if not 3.0 <= args.gate_rise_db <= 30.0:
        ap.error(f"--gate-rise-db {args.gate_rise_db}: must lie in 3..30 (dB), as detect.gate_rise_db")
    if args.gate_busy_s < 0:
        ap.error(f"--gate-busy-s {args.gate_busy_s}: must be 0 or more")
    if args.final is not None and (args.gate_rise_db, args.gate_busy_s) != (GateParams().rise_db, GateParams().busy_s):
        ap.error("--final ships a model for the unit's default gate: leave --gate-rise-db and --gate-busy-s out")
    if (args.final is None) != (args.finals is None):
        ap.error("--final and --finals go together")
    if args.finals is not None and len(args.finals) != len(args.runs):
        ap.error(f"--finals: give one folder per run ({len(args.runs)}), got {len(args.finals)}")
    return args


def common_folds(runs: Sequence[Path]) -> list[list[str]]:
    folds: list[list[str]] = finished_run(runs[0], "--runs")["fold_groups"]
    for run in runs[1:]:
        if finished_run(run, "--runs")["fold_groups"] != folds:
            raise DataError(f"--runs {run} has other folds than {runs[0]}: the runs need the same --folds and --seed")
    return folds


def ensemble(first: TfliteModel, others: Sequence[TfliteModel], from_score: float) -> SecondLook:
    for model in others:
        if model.info.front_end != first.info.front_end:
            raise DataError(f"{model.path} was trained for another front end than {first.path}")
    return SecondLook(MeanLogit(others), first.info.front_end, from_score, len(others) / (len(others) + 1))


def ensemble_scorer(runs: Sequence[Path], from_score: float) -> FoldScorer:
    def scorer(k: int) -> tuple[TfliteModel, SecondLook]:
        first, *others = (own_front_end_model(run / f"fold{k}" / "gunshot.tflite") for run in runs)
        return first, ensemble(first, others, from_score)

    return scorer


def assemble(args: argparse.Namespace, cv: dict[str, Any]) -> Path:
    """Copy the runs' final models into ``args.final`` and name the members in the first one's metadata."""
    args.final.mkdir(parents=True, exist_ok=True)
    names = ["gunshot"] + [MEMBER_NAME.format(i) for i in range(1, len(args.finals))]
    for src, name in zip(args.finals, names, strict=True):
        for suffix in (".tflite", ".json"):
            if not (src / f"gunshot{suffix}").is_file():
                raise DataError(f"--finals {src}: no gunshot{suffix} (run tools.kfold --final into it)")
            shutil.copyfile(src / f"gunshot{suffix}", args.final / f"{name}{suffix}")
    first_path = args.final / "gunshot.tflite"
    first = read_metadata(first_path)
    members = [read_metadata(args.final / f"{name}.tflite") for name in names[1:]]
    for name, info in zip(names[1:], members, strict=True):
        if info.front_end != first.front_end:
            raise DataError(f"{name}: trained for another front end than the first final model")
        member_meta = json.loads((args.final / f"{name}.json").read_text())
        member_meta["version"] = train.MODEL_VERSION
        member_meta["member_of"] = {
            "model": first_path.name,
            "note": "scored only inside that model's second look; its threshold and metrics here are of this "
            "network alone",
        }
        (args.final / f"{name}.json").write_text(json.dumps(member_meta, indent=2) + "\n")
    meta = json.loads(first_path.with_suffix(".json").read_text())
    meta["version"] = train.MODEL_VERSION
    meta["second_look"] = {
        "models": [{"model": f"{n}.tflite", "sha256": m.sha256} for n, m in zip(names[1:], members, strict=True)],
        "from_score": args.from_score,
        "weight": round(len(members) / (len(members) + 1), 6),
        "front_end": first.front_end.to_dict(),
    }
    meta["threshold"] = cv["metrics"]["threshold"]
    meta["metrics"] = cv["metrics"]
    meta["validation"] = {k: cv[k] for k in (*VALIDATION_KEYS, "ensemble_of") if k in cv}
    first_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")  # the fingerprint loads it
    meta["pinned_scores"] = pinned_scores(first_path, args.data, meta["threshold"])
    first_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return first_path


def run(args: argparse.Namespace) -> dict[str, Any]:
    folds = common_folds(args.runs)
    first_cv = finished_run(args.runs[0], "--runs")
    describe = {
        "seed": first_cv.get("seed"),
        "train_options": first_cv.get("train_options"),
        "ensemble_of": {
            "runs": [str(r) for r in args.runs],
            "train_seeds": [read_metadata(r / "fold0" / "gunshot.tflite").raw.get("seed") for r in args.runs],
            "from_score": args.from_score,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    gate = replace(GateParams(), rise_db=args.gate_rise_db, busy_s=args.gate_busy_s)
    cv = cross_validate(args.data, args.out, folds, ensemble_scorer(args.runs, args.from_score), describe, gate)
    if args.final is not None:
        path = assemble(args, cv)
        threshold = cv["metrics"]["threshold"]
        print(f"ensemble of {len(args.runs)} networks in {args.final} (lead {path.name}), threshold {threshold}")
    return cv


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
