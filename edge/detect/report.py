"""Detections as plain JSON-ready dicts (the shape ``polewatch detect`` prints)."""

from __future__ import annotations

from typing import Any

from edge.detect.bursts import Detection


def detection_dict(det: Detection, sample_rate: int = 16_000) -> dict[str, Any]:
    first = det.onset
    return {
        "phase": det.phase,
        "onset_sample": first,
        "onset_s": round(first / sample_rate, 6),
        "score": round(det.score, 4),
        "rounds": det.rounds,
        "impulses": [
            {
                "offset_ms": round((imp.onset - first) * 1000.0 / sample_rate, 3),
                "score": round(imp.score, 4),
                "peak_dbfs": imp.peak_dbfs,
            }
            for imp in det.impulses
        ],
    }


def describe(det: Detection, sample_rate: int = 16_000) -> str:
    """One human line, e.g. ``gunshot x3 at 12.345 s (score 0.97) [final]``."""
    return (
        f"gunshot x{det.rounds} at {det.onset / sample_rate:.3f} s "
        f"(score {det.score:.2f}, peak {max(i.peak_dbfs for i in det.impulses):.1f} dBFS) [{det.phase}]"
    )
