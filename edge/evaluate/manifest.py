"""Reading a labelled manifest (TSV with at least ``path`` and ``label``; ``group``, ``source``, ``duration_s`` and
``rounds`` are used when present), e.g. ``../shared/data/audio/manifest.tsv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from edge.errors import PolewatchError


class ManifestError(PolewatchError, ValueError):
    """The manifest is missing, unreadable or lacks a required column."""


@dataclass(frozen=True)
class ManifestRow:
    path: str
    """As written in the manifest (relative to the data root unless absolute)."""
    label: str
    group: str = ""
    source: str = ""
    duration_s: float | None = None
    rounds: int | None = None


def read_manifest(manifest: Path) -> list[ManifestRow]:
    """Rows in file order; a path listed twice is kept once (the first row)."""
    if not manifest.is_file():
        raise ManifestError(f"manifest {manifest} not found; give a TSV file with columns path and label")
    try:
        with manifest.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            missing = [c for c in ("path", "label") if c not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(f"manifest {manifest} lacks column(s) {', '.join(missing)} (tab-separated)")
            raw = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"manifest {manifest} cannot be read: {exc}") from exc
    rows: dict[str, ManifestRow] = {}
    for number, row in enumerate(raw, start=2):
        if not row.get("path") or row["path"] in rows:
            continue
        try:
            rows[row["path"]] = ManifestRow(
                path=row["path"],
                label=row["label"].strip(),
                group=row.get("group") or "",
                source=row.get("source") or "",
                duration_s=float(row["duration_s"]) if row.get("duration_s") else None,
                rounds=int(row["rounds"]) if row.get("rounds") else None,
            )
        except ValueError as exc:
            raise ManifestError(f"manifest {manifest} line {number}: {exc}") from exc
    if not rows:
        raise ManifestError(f"manifest {manifest} lists no files")
    return list(rows.values())
