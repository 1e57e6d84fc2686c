"""How much of a score could the dev data's clip structure give, rather than the sound?

The dev data's classes differ in how their clips were cut: UrbanSound8K gunshot clips are short (median 1.8 s)
and start at the shot, fireworks clips run 5-10 s with a median of 14 gate candidates. A file-level score that
grows with a clip's length or its number of impulses separates them without hearing anything, and a detector
that pooled evidence over a file could learn exactly that ("many bangs: fireworks"), which on a pole would
suppress a burst of gunfire. This probe measures the risk on a scores file (``polewatch evaluate --scores-out``
or ``tools.kfold``'s out-of-fold scores)::

    python -m tools.structure --data ../shared/data/audio --scores models/cv_scores.jsonl

Each row is a class-balanced logistic regression (``tools.teacher.fit_probe``) on the named per-file features,
fitted on four of ``tools.kfold``'s folds and scored on the fifth, in ``tools.kfold``'s metrics. "score" is the
file's best impulse logit; structure features are the clip's length, its number of gate candidates, and the
candidates before the best one (a clip that starts at the shot has none). A row that beats "score" by using
structure is a warning about the data, not a better detector.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.evaluate.metrics import auc, recall_at_fpr
from edge.evaluate.scores import FileScores, ScoresError, read_scores
from tools.dataset import DataError, Item, exit_status, fold_groups, read_manifest
from tools.teacher import cross_fit, score_logits

Feature = Callable[[FileScores], float]
FEATURES: dict[str, Feature] = {
    "score": lambda f: float(score_logits(np.array(f.gun_max))),
    "seconds": lambda f: float(np.log(max(f.seconds or 0.0, 0.05))),
    "candidates": lambda f: float(np.log1p(len(f.marks or ()))),
    "candidates before the best": lambda f: float(np.log1p(_before_best(f))),
}
ROWS: tuple[tuple[str, ...], ...] = (
    ("score",),
    ("seconds",),
    ("candidates",),
    ("score", "seconds"),
    ("score", "candidates"),
    ("score", "candidates before the best"),
    ("score", "seconds", "candidates"),
)


def _before_best(f: FileScores) -> int:
    marks = f.marks or ()
    if not marks:
        return 0
    best = max(marks, key=lambda m: m[1])[0]
    return sum(1 for t, _ in marks if t < best)


def feature_matrix(
    scores: dict[str, FileScores], items: Sequence[Item], names: Sequence[str]
) -> npt.NDArray[np.float64]:
    return np.array([[FEATURES[n](scores[i.path]) for n in names] for i in items], dtype=np.float64)


def probe_rows(
    items: Sequence[Item], scores: dict[str, FileScores], folds: int = 5, seed: int = 0
) -> list[tuple[str, dict[str, object]]]:
    """``tools.kfold``'s metrics of each row's cross-fitted probe; files without a score line are left out."""
    items = [i for i in items if i.path in scores]
    if not any(i.is_gunshot for i in items):
        raise DataError("the scores cover no gunshot file of the manifest")
    fold_of = {g: k for k, groups in enumerate(fold_groups(items, folds, seed)) for g in groups}
    fold = np.array([fold_of[i.group] for i in items])
    y = np.array([i.is_gunshot for i in items], dtype=np.float64)
    out = [("score as scored (no probe)", unrounded_metrics(items, np.array([scores[i.path].gun_max for i in items])))]
    for names in ROWS:
        logit = cross_fit(feature_matrix(scores, items, names), y, fold)
        out.append((" + ".join(names), unrounded_metrics(items, logit)))
    return out


def unrounded_metrics(items: Sequence[Item], s: npt.NDArray[np.float64]) -> dict[str, object]:
    """``tools.kfold``'s headline metrics, unrounded (any monotone score: logits or probabilities)."""
    urban = np.array([i.urban for i in items])
    gun = np.array([i.is_gunshot for i in items])
    hard = np.array([i.is_hard_negative for i in items])
    gun_u, hard_u = list(s[urban & gun]), list(s[urban & hard])
    return {
        "auc_gunshot_vs_all_urban": auc(gun_u, list(s[urban & ~gun])),
        "auc_gunshot_vs_hard_negatives_urban": auc(gun_u, hard_u),
        "recall_at_hard_fpr": {f"{round(f * 100)}%": recall_at_fpr(gun_u, hard_u, f) for f in (0.01, 0.02, 0.05)},
        "auc_forest_gunshot_vs_forest_negatives": auc(list(s[~urban & gun]), list(s[~urban & ~gun])),
    }


def table(rows: Sequence[tuple[str, dict[str, object]]]) -> str:
    lines = [
        "| probe on | urban all | urban hard | R@1/2/5 % | forest |",
        "|---|---|---|---|---|",
    ]
    for name, m in rows:
        r = m["recall_at_hard_fpr"]
        assert isinstance(r, dict)
        recall = " / ".join(f"{100 * r[k]:.1f}" for k in ("1%", "2%", "5%"))
        lines.append(
            f"| {name} | {m['auc_gunshot_vs_all_urban']:.3f} | {m['auc_gunshot_vs_hard_negatives_urban']:.3f} | "
            f"{recall} | {m['auc_forest_gunshot_vs_forest_negatives']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.structure", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.tsv")
    ap.add_argument("--scores", type=Path, required=True, help="per-file scores with impulses (JSON lines)")
    ap.add_argument("--folds", type=int, default=5, help="tools.kfold's folds (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="tools.kfold's fold seed (default 0)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = ap.parse_args(argv)
    return exit_status(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    try:
        scores = read_scores(args.scores)
    except ScoresError as exc:
        raise DataError(str(exc)) from exc
    rows = probe_rows(read_manifest(args.data), scores, args.folds, args.seed)
    print(json.dumps(dict(rows), indent=2) if args.json else table(rows))


if __name__ == "__main__":
    raise SystemExit(main())
