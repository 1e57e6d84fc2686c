"""The numbers ``polewatch evaluate`` prints: AUCs, recall at fixed hard-negative false-positive rates, precision
and recall at the threshold, per-label rates, false alarms per hour of ambience, round-count accuracy."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from edge.evaluate import metrics
from edge.evaluate.labels import AMBIENCE, FOREST, GUNSHOT, HARD_NEGATIVES
from edge.evaluate.runner import FileResult

FPRS = (0.01, 0.02, 0.05)


def _r(value: float, digits: int = 4) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def subset_report(results: list[FileResult], threshold: float) -> dict[str, Any]:
    gun = [r.gun_max for r in results if r.row.label == GUNSHOT]
    neg = [r.gun_max for r in results if r.row.label != GUNSHOT]
    hard = [r.gun_max for r in results if r.row.label in HARD_NEGATIVES]
    found = sum(s >= threshold for s in gun)
    false = sum(s >= threshold for s in neg)
    per_label: dict[str, dict[str, Any]] = {}
    by_label: dict[str, list[FileResult]] = defaultdict(list)
    for r in results:
        by_label[r.row.label].append(r)
    for label, rs in sorted(by_label.items()):
        rate = sum(r.gun_max >= threshold for r in rs) / len(rs)
        key = "recall" if label == GUNSHOT else "fp_rate"
        per_label[label] = {"files": len(rs), key: round(rate, 4), "detections": sum(len(r.detections) for r in rs)}
    ambience = [r for r in results if r.row.label in AMBIENCE]
    hours = sum(r.seconds for r in ambience) / 3600.0
    alarms = sum(len(r.detections) for r in ambience)
    counted = [r for r in results if r.row.label == GUNSHOT and r.row.rounds is not None]
    exact = sum(sum(d.rounds for d in r.detections) == r.row.rounds for r in counted)
    return {
        "files": {"gunshot": len(gun), "negative": len(neg), "hard_negative": len(hard)},
        "auc_gunshot_vs_all": _r(metrics.auc(gun, neg)),
        "auc_gunshot_vs_hard_negatives": _r(metrics.auc(gun, hard)),
        "recall_at_hard_fpr": {
            f"{100 * f:g}%": _r(metrics.recall_at_fpr(gun, hard, f)) if gun and hard else None for f in FPRS
        },
        "at_threshold": {
            "threshold": threshold,
            "recall": _r(found / len(gun)) if gun else None,
            "precision": _r(found / (found + false)) if found + false else None,
            "fp_rate_all_negatives": _r(false / len(neg)) if neg else None,
            "fp_rate_hard_negatives": _r(metrics.rate_at(hard, threshold)),
        },
        "per_label": per_label,
        "false_alarms_per_hour_ambience": {
            "alarms": alarms,
            "hours": round(hours, 3),
            "per_hour": _r(alarms / hours, 3) if hours else None,
        },
        "rounds_exact": {"bursts": len(counted), "exact": exact, "rate": _r(exact / len(counted)) if counted else None},
    }


def build_report(results: list[FileResult], threshold: float) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    report: dict[str, Any] = {
        "threshold": threshold,
        "files": len(results),
        "missing": [{"file": r.row.path, "error": r.error} for r in results if not r.ok],
        "audio_hours": round(sum(r.seconds for r in ok) / 3600.0, 3),
        "subsets": {"all": subset_report(ok, threshold)},
    }
    if any(r.row.source == FOREST for r in ok):
        report["subsets"]["urban"] = subset_report([r for r in ok if r.row.source != FOREST], threshold)
        report["subsets"]["forest"] = subset_report([r for r in ok if r.row.source == FOREST], threshold)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"evaluated {report['files'] - len(report['missing'])} of {report['files']} files "
        f"({report['audio_hours']:.2f} h of audio), threshold {report['threshold']:.3f}"
    ]
    if report.get("model"):
        m = report["model"]
        lines.append(f"model {m['name']} {m['version']} (sha256 {m['sha256'][:16]}...)")
    if report.get("config"):
        lines.append(f"detector settings from {report['config']}")
    if report.get("detector"):
        g, t = report["detector"]["gate"], report["detector"]["texture"]
        lines.append(
            f"onset gate: rise {g['rise_db']:g} dB ({g['busy_rise_db']:g} dB within {g['busy_s']:g} s of a candidate), "
            f"floor {g['min_dbfs']:g} dBFS; texture check " + (f"after {t['max_s']:g} s" if t["max_s"] > 0 else "off")
        )
    lines += [f"  missing: {missing['file']}: {missing['error']}" for missing in report["missing"]]
    header = f"{'subset':8} {'gun':>5} {'neg':>5} {'AUC all':>8} {'AUC hard':>9} {'R@1%':>6} {'R@2%':>6} {'R@5%':>6}"
    header += f" {'recall':>7} {'prec':>6} {'FA/h':>6} {'rounds':>7}"
    lines += ["", header]
    for name, sub in report["subsets"].items():
        at = sub["at_threshold"]
        r = sub["recall_at_hard_fpr"]
        rounds = sub["rounds_exact"]
        lines.append(
            f"{name:8} {sub['files']['gunshot']:>5} {sub['files']['negative']:>5} "
            f"{_fmt(sub['auc_gunshot_vs_all']):>8} {_fmt(sub['auc_gunshot_vs_hard_negatives']):>9} "
            f"{_fmt(r['1%']):>6} {_fmt(r['2%']):>6} {_fmt(r['5%']):>6} {_fmt(at['recall']):>7} "
            f"{_fmt(at['precision']):>6} {_fmt(sub['false_alarms_per_hour_ambience']['per_hour'], 2):>6} "
            f"{_fmt(rounds['rate']):>7}"
        )
    main = report["subsets"].get("urban", report["subsets"]["all"])
    lines += ["", "per label (urban)" if "urban" in report["subsets"] else "per label"]
    for label, row in main["per_label"].items():
        what = f"recall {row['recall']:.3f}" if "recall" in row else f"false positives {row['fp_rate']:.3f}"
        lines.append(f"  {label:14} {row['files']:>5} files  {what}  ({row['detections']} detections)")
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
