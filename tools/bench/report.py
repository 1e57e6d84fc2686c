"""The report: table, notes, target verdicts and the Raspberry Pi estimate (see the package docstring)."""

from __future__ import annotations

import math
from typing import Any

TARGET_MS_PER_S = 0.5
TARGET_RSS_MB = 80.0
GATE_CEILING_PER_S = 1.0 / 0.03
"""Most candidates the gate can emit per second (default refractory period 30 ms)."""
PI_FACTORS: dict[str, tuple[float, float]] = {
    "pi4_cortex_a72": (4.0, 6.0),
    "pi5_cortex_a76": (2.0, 3.0),
}
"""Assumed x86 core -> Pi core slowdown (low, high); see the package docstring for the source."""


def pi_estimate(unit: dict[str, Any]) -> dict[str, Any]:
    """Estimated Pi ms per s of audio and real-time margin, at this stream's rate and at the gate's ceiling (there
    every window is assumed to get the second look too: the worst case, a stream of gun-like impulses)."""
    per_window = unit["logmel_ms_per_window"] + unit["model_ms_per_window"]
    looks = unit["breakdown_ms_per_s"].get("second_looks", 0.0)
    no_windows = unit["cpu_ms_per_s"] - per_window * unit["windows_per_s"] - looks
    worst_window = per_window + unit.get("second_look_ms_per_window", 0.0)
    ceiling = no_windows + worst_window * GATE_CEILING_PER_S
    out: dict[str, Any] = {"x86_ms_per_s": unit["cpu_ms_per_s"], "x86_ms_per_s_at_gate_ceiling": ceiling}
    for board, (lo, hi) in PI_FACTORS.items():
        out[board] = {
            "factor": [lo, hi],
            "ms_per_s": [unit["cpu_ms_per_s"] * lo, unit["cpu_ms_per_s"] * hi],
            "realtime_margin": [1000.0 / (unit["cpu_ms_per_s"] * hi), 1000.0 / (unit["cpu_ms_per_s"] * lo)],
            "ms_per_s_at_gate_ceiling": [ceiling * lo, ceiling * hi],
            "realtime_margin_at_gate_ceiling": [1000.0 / (ceiling * hi), 1000.0 / (ceiling * lo)],
        }
    return out


def _f(v: Any, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_report(report: dict[str, Any]) -> str:
    lines = [f"polewatch bench - model: {report['model']}", f"machine: {report['machine']}", ""]
    for name, s in report["streams"].items():
        lines.append(f"stream {name}: {s['seconds']:.0f} s from {s['source']}, {s['events']} events/clips")
    header = (
        f"{'system':<12} {'stream':<14} {'ms CPU/s':>9} {'model ms/s':>10} {'wall ms/s':>9} {'RSS MB':>7} "
        f"{'cand/min':>8} {'win/s':>6} {'detect':>6} {'peer/pw':>8}"
    )
    lines += ["", header, "-" * len(header)]
    unit = report["polewatch"]
    for stream, u in unit.items():
        lines.append(
            f"{'polewatch':<12} {stream:<14} {_f(u['cpu_ms_per_s'], 3):>9} "
            f"{_f(u['breakdown_ms_per_s']['model'], 3):>10} {_f(u['wall_ms_per_s'], 3):>9} "
            f"{_f(u['peak_rss_mb'], 1):>7} {_f(u['candidates_per_min'], 1):>8} "
            f"{_f(u['windows_per_s'], 2):>6} {u['detections']:>6} {'1.0':>8}"
        )
    for peer, per_stream in report["peers"].items():
        for stream, p in per_stream.items():
            if "error" in p:
                lines.append(f"{peer:<12} {stream:<14} failed: {p['error'][:70]}")
                continue
            ratio = p["total_ms_per_s"] / unit[stream]["cpu_ms_per_s"] if stream in unit else float("nan")
            lines.append(
                f"{peer:<12} {stream:<14} {_f(p['total_ms_per_s'], 3):>9} {_f(p['model_ms_per_s'], 3):>10} "
                f"{_f(p['total_ms_per_s'], 3):>9} {_f(p['peak_rss_mb'], 1):>7} {'-':>8} {'-':>6} "
                f"{'-':>6} {_f(ratio, 1) + 'x':>8}"
            )
    lines += _notes(report)
    return "\n".join(lines)


def _notes(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "polewatch: CPU time of the chunk loop in a fresh process pinned to one core (WAV reading "
        "subtracted); RSS = peak of that process.",
        "peers: their own timers (pinned, 1 thread: wall ~ CPU); 'ms CPU/s' = decode+resample+features+model,",
        "       RSS includes the whole file held in memory; peer/pw = peer ms per s / polewatch ms per s.",
        "",
    ]
    for stream, u in report["polewatch"].items():
        b = u["breakdown_ms_per_s"]
        lines.append(
            f"breakdown {stream}: gate {_f(b['gate'], 3)} + log-mel {_f(b['logmel'], 3)} + model "
            f"{_f(b['model'], 3)} + second looks {_f(b.get('second_looks', 0.0), 3)} + rest {_f(b['rest'], 3)} "
            f"ms/s ({_f(u['second_looks_per_min'], 1)} second looks a minute); per window: log-mel "
            f"{_f(u['logmel_ms_per_window'], 3)} ms, model {_f(u['model_ms_per_window'], 3)} ms, second look "
            f"{_f(u.get('second_look_ms_per_window', 0.0), 3)} ms; "
            f"RSS after imports {_f(u['rss_after_imports_mb'], 1)} MB, after model "
            f"{_f(u['rss_after_model_mb'], 1)} MB"
        )
        if "deployed_cpu_ms_per_s" in u:
            lines.append(
                f"  as deployed (not pinned, every core visible, so numpy's OpenBLAS threads the log-mel "
                f"matmul): {_f(u['deployed_cpu_ms_per_s'], 3)} ms CPU/s, log-mel "
                f"{_f(u['deployed_logmel_ms_per_window'], 3)} ms per window"
            )
    for stream, verdict in report["targets"].items():
        lines.append(f"target {stream}: {verdict}")
    for stream, est in report["pi_estimate"].items():
        lines.append(f"Pi estimate {stream} (x86 x assumed factor, NOT measured):")
        for board in PI_FACTORS:
            e = est[board]
            lines.append(
                f"  {board} (x{e['factor'][0]:g}-{e['factor'][1]:g}): {_f(e['ms_per_s'][0])}-"
                f"{_f(e['ms_per_s'][1])} ms/s, real-time margin {_f(e['realtime_margin'][0], 0)}-"
                f"{_f(e['realtime_margin'][1], 0)}x; at the gate ceiling ({GATE_CEILING_PER_S:.0f} "
                f"windows/s) {_f(e['ms_per_s_at_gate_ceiling'][0])}-{_f(e['ms_per_s_at_gate_ceiling'][1])} "
                f"ms/s, margin {_f(e['realtime_margin_at_gate_ceiling'][0], 0)}-"
                f"{_f(e['realtime_margin_at_gate_ceiling'][1], 0)}x"
            )
    if report.get("profile"):
        lines += ["", f"profile (cProfile, {report['profile_stream']} stream, top by own time):"]
        lines += [
            f"  {r['tottime_s']:8.3f} s own {r['cumtime_s']:8.3f} s cum {r['calls']:>8} calls  {r['function']}"
            for r in report["profile"]
        ]
    return lines


def target_verdicts(unit: dict[str, dict[str, Any]]) -> dict[str, str]:
    out = {}
    for stream, u in unit.items():
        cpu_ok = u["cpu_ms_per_s"] <= TARGET_MS_PER_S
        rss_ok = u["peak_rss_mb"] <= TARGET_RSS_MB
        applies = " (the CPU target is set for the street stream)" if stream != "street" else ""
        out[stream] = (
            f"CPU {u['cpu_ms_per_s']:.3f} ms/s {'meets' if cpu_ok else 'MISSES'} <= {TARGET_MS_PER_S}"
            f"{applies}; RSS {u['peak_rss_mb']:.1f} MB {'meets' if rss_ok else 'MISSES'} "
            f"<= {TARGET_RSS_MB:.0f}"
        )
    return out
