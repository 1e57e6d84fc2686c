"""ROC and precision-recall curves and a per-label bar chart as PNG (needs matplotlib: the ``dev`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.errors import PolewatchError
from edge.evaluate import metrics
from edge.evaluate.labels import FOREST, GUNSHOT, HARD_NEGATIVES
from edge.evaluate.runner import FileResult


def write_plots(results: list[FileResult], report: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PolewatchError("--plots needs matplotlib: pip install matplotlib") from exc
    out.mkdir(parents=True, exist_ok=True)
    ok = [r for r in results if r.ok]
    if any(r.row.source == FOREST for r in ok):  # the urban target, as in the report's per-label table
        ok = [r for r in ok if r.row.source != FOREST]
    gun = [r.gun_max for r in ok if r.row.label == GUNSHOT]
    curves = {
        "all negatives": [r.gun_max for r in ok if r.row.label != GUNSHOT],
        "hard negatives": [r.gun_max for r in ok if r.row.label in HARD_NEGATIVES],
    }
    written = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, neg in curves.items():
        fpr, tpr = metrics.roc_curve(gun, neg)
        ax.plot(fpr, tpr, label=f"vs {name} (AUC {metrics.auc(gun, neg):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-positive rate (files)", ylabel="recall", title="ROC, gunshot files (urban part)")
    ax.legend(loc="lower right")
    written.append(_save(fig, out / "roc.png"))
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, neg in curves.items():
        recall, precision = metrics.pr_curve(gun, neg)
        ax.plot(recall, precision, label=f"vs {name}")
    ax.set(xlabel="recall", ylabel="precision (files)", title="precision-recall", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    written.append(_save(fig, out / "pr.png"))
    sub = report["subsets"].get("urban", report["subsets"]["all"])
    labels = list(sub["per_label"])
    values = [row.get("recall", row.get("fp_rate")) for row in sub["per_label"].values()]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(labels, values, color=["tab:green" if label == GUNSHOT else "tab:red" for label in labels])
    ax.set(ylabel="share of files over the threshold", title=f"per label at threshold {report['threshold']:.3f}")
    ax.tick_params(axis="x", rotation=60)
    written.append(_save(fig, out / "per_label.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    return path
