"""Per-file score lines: what ``polewatch evaluate --scores-out FILE`` writes and ``tools.bench.quality`` reads.

One JSON object per line::

    {"file": "us8k/7061-6-0-0.flac", "gun_max": 0.9871, "seconds": 4.0, "impulses": [[0.5125, 0.9871], ...]}

``file`` is the path as written in the manifest, ``gun_max`` the highest score of the file (0 when the gate found
nothing), ``seconds`` the audio length, ``impulses`` the (onset in seconds, score) of every classified gate
candidate. Lines of older files with only ``file`` and ``gun_max`` still read (no length, no impulses).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import PolewatchError

if TYPE_CHECKING:  # light at run time: tools.bench's unit subprocess imports this before measuring its memory
    from edge.evaluate.runner import FileResult


class ScoresError(PolewatchError, ValueError):
    """A scores file is missing or a line is not a score record."""


@dataclass(frozen=True)
class FileScores:
    """One file as one system scored it."""

    gun_max: float
    seconds: float | None = None
    """Length of the audio; None when the line does not say."""
    marks: tuple[tuple[float, float], ...] | None = None
    """(time in seconds, score) of every scored unit: gate candidate (polewatch) or window (peers); None when the
    line does not say."""


def score_record(result: FileResult) -> dict[str, object]:
    return {
        "file": result.row.path,
        "gun_max": round(result.gun_max, 6),
        "seconds": round(result.seconds, 4),
        "impulses": [[round(onset, 5), round(score, 6)] for onset, score in result.impulses],
    }


def write_scores(path: Path, results: Iterable[FileResult]) -> int:
    """Writes a line per scored file (files that could not be read are left out); returns the line count."""
    count = 0
    with path.open("w") as fh:
        for result in results:
            if result.ok:
                fh.write(json.dumps(score_record(result)) + "\n")
                count += 1
    return count


def read_scores(path: Path) -> dict[str, FileScores]:
    """Scores by ``file``; a file listed twice keeps its last line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoresError(f"scores file {path} cannot be read: {exc}") from exc
    out: dict[str, FileScores] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            gun_max = float(obj["gun_max"])
            seconds = float(obj["seconds"]) if obj.get("seconds") is not None else None
            marks = None
            if obj.get("impulses") is not None:
                marks = tuple((float(t), float(s)) for t, s in obj["impulses"])
            if math.isnan(gun_max):
                raise ValueError("gun_max is NaN")
            out[str(obj["file"])] = FileScores(gun_max, seconds, marks)
        except (ValueError, TypeError, KeyError) as exc:
            raise ScoresError(f"scores file {path} line {number}: not a score record ({exc!r})") from exc
    return out
