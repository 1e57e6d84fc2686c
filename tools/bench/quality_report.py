"""The numbers and the table of ``python -m tools.bench.quality``: per-file scores of each system in, one row per
system out (no subprocesses here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.evaluate import metrics
from edge.evaluate.labels import AMBIENCE, FOREST, GUNSHOT, HARD_NEGATIVES
from edge.evaluate.manifest import ManifestRow
from edge.evaluate.scores import FileScores

HARD_FPR = 0.02
"""Fraction of urban hard-negative files allowed at or above each system's operating threshold."""


@dataclass
class System:
    """One system's scores over the manifest and the cost of computing them."""

    name: str
    event_gap_s: float
    """Above-threshold marks at most this far apart are one alarm (polewatch: the burst gap; peers: their hop)."""
    scores: dict[str, FileScores] = field(default_factory=dict)
    """By the path as written in the manifest."""
    errors: dict[str, str] = field(default_factory=dict)
    """Files without a score (missing, unreadable, absent from a scores file) and why."""
    cpu_s: float = 0.0
    audio_s: float = 0.0
    """Seconds of audio the CPU time was spent on."""
    calls: int = 0
    """Processes the CPU time was summed over (each includes start-up and model load)."""
    failed: str = ""
    """Why the system could not be run at all."""


def false_alarms(rows: Sequence[ManifestRow], system: System, threshold: float, urban_only: bool) -> dict[str, Any]:
    """Alarm events at ``threshold`` per hour of ambience audio (labels in :data:`AMBIENCE`)."""
    alarms, seconds, known = 0, 0.0, math.isfinite(system.event_gap_s)
    for row in rows:
        s = system.scores.get(row.path)
        if s is None or row.label not in AMBIENCE or (urban_only and row.source == FOREST):
            continue
        length = s.seconds if s.seconds is not None else row.duration_s
        if s.marks is None or length is None:
            known = False
            continue
        seconds += length
        alarms += metrics.count_events([t for t, score in s.marks if score >= threshold], system.event_gap_s)
    hours = seconds / 3600.0
    per_hour = alarms / hours if known and hours else None
    return {"alarms": alarms if known else None, "hours": round(hours, 4), "per_hour": per_hour}


def system_row(rows: Sequence[ManifestRow], system: System, shipped_threshold: float | None = None) -> dict[str, Any]:
    """Every number of one system's table line (NaN/None where a subset is empty)."""
    scored = [(r, system.scores[r.path]) for r in rows if r.path in system.scores]
    urban = [(r.label, s.gun_max) for r, s in scored if r.source != FOREST]
    forest = [(r.label, s.gun_max) for r, s in scored if r.source == FOREST]
    gun = [g for label, g in urban if label == GUNSHOT]
    neg = [g for label, g in urban if label != GUNSHOT]
    hard = [g for label, g in urban if label in HARD_NEGATIVES]
    threshold = metrics.threshold_at_fpr(hard, HARD_FPR) if hard else math.nan
    row: dict[str, Any] = {
        "files": len(scored),
        "missing": len(system.errors),
        "auc_gunshot_vs_all": metrics.auc(gun, neg),
        "auc_gunshot_vs_hard_negatives": metrics.auc(gun, hard),
        "recall_at_2pct_hard_fpr": metrics.rate_at(gun, threshold) if hard else math.nan,
        "threshold_at_2pct_hard_fpr": threshold,
        "false_alarms_ambience": false_alarms(rows, system, threshold, urban_only=False),
        "false_alarms_urban_ambience": false_alarms(rows, system, threshold, urban_only=True),
        "forest_auc": metrics.auc(
            [g for label, g in forest if label == GUNSHOT], [g for label, g in forest if label != GUNSHOT]
        ),
        "cpu_ms_per_s": 1000.0 * system.cpu_s / system.audio_s if system.audio_s else math.nan,
        "cpu_s": system.cpu_s,
        "audio_s": system.audio_s,
        "calls": system.calls,
    }
    if shipped_threshold is not None:
        row["at_shipped_threshold"] = {
            "threshold": shipped_threshold,
            "false_alarms_ambience": false_alarms(rows, system, shipped_threshold, urban_only=False),
            "false_alarms_urban_ambience": false_alarms(rows, system, shipped_threshold, urban_only=True),
        }
    return row


def subset_counts(rows: Sequence[ManifestRow]) -> dict[str, int]:
    urban = [r for r in rows if r.source != FOREST]
    forest = [r for r in rows if r.source == FOREST]
    return {
        "urban_gunshot": sum(r.label == GUNSHOT for r in urban),
        "urban_negative": sum(r.label != GUNSHOT for r in urban),
        "urban_hard_negative": sum(r.label in HARD_NEGATIVES for r in urban),
        "urban_ambience": sum(r.label in AMBIENCE for r in urban),
        "forest_gunshot": sum(r.label == GUNSHOT for r in forest),
        "forest_negative": sum(r.label != GUNSHOT for r in forest),
        "forest_ambience": sum(r.label in AMBIENCE for r in forest),
    }


COLUMNS = (
    ("AUC all", "auc_gunshot_vs_all", 3),
    ("AUC hard", "auc_gunshot_vs_hard_negatives", 3),
    ("R@2%hard", "recall_at_2pct_hard_fpr", 3),
    ("thr@2%", "threshold_at_2pct_hard_fpr", 4),
    ("FA/h amb", "false_alarms_ambience", 2),
    ("FA/h urban", "false_alarms_urban_ambience", 2),
    ("forest AUC", "forest_auc", 3),
    ("CPU ms/s", "cpu_ms_per_s", 2),
)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, dict):
        value = value["per_hour"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_table(report: dict[str, Any]) -> str:
    c = report["counts"]
    lines = [
        f"quality side by side: {report['files']} files of {report['manifest']} "
        f"({report['audio_hours']:.2f} h of audio), all systems in this run, wall {report['wall_s'] / 60:.1f} min",
        f"urban: {c['urban_gunshot']} gunshot vs {c['urban_negative']} negative files "
        f"({c['urban_hard_negative']} hard, {c['urban_ambience']} ambience); "
        f"forest: {c['forest_gunshot']} gunshot vs {c['forest_negative']} negative ({c['forest_ambience']} ambience)",
        "",
        f"{'system':22} {'files':>5}  " + "  ".join(f"{title:>{max(len(title), 8)}}" for title, _, _ in COLUMNS),
    ]
    for name, row in report["systems"].items():
        label = f"{name} (*)" if name == "polewatch" else name
        if "failed" in row:
            lines.append(f"{label:22} failed: {row['failed']}")
            continue
        cells = [f"{_cell(row[key], d):>{max(len(t), 8)}}" for t, key, d in COLUMNS]
        lines.append(f"{label:22} {row['files']:>5}  " + "  ".join(cells))
        shipped = row.get("at_shipped_threshold")
        if shipped:
            extra = {**{key: None for _, key, _ in COLUMNS}, **shipped}
            extra["threshold_at_2pct_hard_fpr"] = shipped["threshold"]
            cells = [f"{_cell(extra[key], d):>{max(len(t), 8)}}" for t, key, d in COLUMNS]
            lines.append(f"{'  at shipped threshold':22} {'':>5}  " + "  ".join(cells))
    calls = ", ".join(f"{n} {r['calls']}" for n, r in report["systems"].items() if "calls" in r)
    missing = ", ".join(f"{n} {r['missing']}" for n, r in report["systems"].items() if "missing" in r)
    lines += [
        "",
        f"(*) polewatch quality: {report['polewatch_source']}",
        "AUC all / AUC hard: urban (source != forest) gunshot files vs every urban negative / urban hard negatives;"
        " file score = highest gunshot score in the file.",
        "R@2%hard: urban gunshot recall at thr@2%, each system's own threshold at which 2 % of urban hard-negative"
        " files score at or above it.",
        "FA/h: alarm events per hour of ambience at thr@2% (amb: urban + forest ambience, urban: urban only);"
        f" polewatch: impulses at most {report['burst_gap_s']:g} s apart are one alarm, peers: a run of consecutive"
        " windows above the threshold is one alarm.",
        "forest AUC: forest gunshot files vs forest negative files.",
        f"CPU ms/s: process CPU time per second of audio, one thread, pinned to core {report['cpu']}, including"
        " interpreter start-up, model load, decoding and resampling (processes: " + calls + ").",
        f"files without a score: {missing}"
        + ("" if not report["not_found"] else f" ({report['not_found']} not found on disk)"),
    ]
    return "\n".join(lines)
