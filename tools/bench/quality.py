"""Quality side by side: polewatch and the peer classifiers (YAMNet, EfficientAT mn04, BirdNET) on one manifest.

Usage (from the repository root)::

    python -m tools.bench.quality --manifest ../shared/data/audio/manifest.tsv [--peers-dir ../shared/peers]
        [--peers-python PY] [--polewatch-scores FILE] [--model models/gunshot.tflite] [--no-birdnet] [--limit N]
        [--json]

Every system scores the same files in the same run. polewatch runs as ``python -m edge evaluate --scores-out``
(the real streaming pipeline, one thread) in a subprocess pinned to ``--cpu``; each peer runner gets the files in
calls of ``--batch`` files with ``--threads 1 --json --per-window``, pinned to the same core. CPU ms per second of
audio is the CPU time of those processes (``os.wait4``) over the seconds of audio they scored.

With ``--polewatch-scores FILE`` (JSON lines of ``polewatch evaluate --scores-out``, e.g. the out-of-fold scores of
k-fold models on their held-out files) polewatch's quality numbers come from that file; the shipped model's pass
still runs, for the CPU column. Without it they come from the shipped model's pass, which has seen the training
files: the table says so. The metrics are defined in :mod:`tools.bench.quality_report`.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.detect.bursts import BurstParams
from edge.detect.runtime import read_metadata
from edge.errors import PolewatchError
from edge.evaluate.manifest import ManifestRow, read_manifest
from edge.evaluate.scores import read_scores
from tools.bench.cli import default_peers_python
from tools.bench.peers import PEERS, PeerScores, score_files
from tools.bench.proc import REPO, run_pinned
from tools.bench.quality_report import System, format_table, subset_counts, system_row

log = logging.getLogger("tools.bench.quality")

BURST_GAP_S = BurstParams().gap_s


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.bench.quality", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True, help="TSV with path, label, source (as for evaluate)")
    p.add_argument("--data-root", type=Path, default=None, help="paths are relative to it (default: the manifest's)")
    p.add_argument("--peers-dir", type=Path, default=REPO.parent / "shared" / "peers", help="peer runners folder")
    p.add_argument("--peers-python", default=default_peers_python(), help="python of the peers' venv")
    p.add_argument("--no-peers", action="store_true", help="polewatch only")
    p.add_argument("--no-birdnet", action="store_true", help="skip BirdNET (non-commercial licence, slow)")
    p.add_argument("--polewatch-scores", type=Path, default=None, help="polewatch's quality from these score lines")
    p.add_argument("--model", type=Path, default=REPO / "models" / "gunshot.tflite", help="polewatch model (.tflite)")
    p.add_argument("--limit", type=int, default=None, help="only N files, spread evenly over the manifest")
    p.add_argument("--batch", type=int, default=200, help="files per peer runner call (default 200)")
    p.add_argument("--cpu", type=int, default=0, help="core every measured process is pinned to (default 0)")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds allowed for each subprocess")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p.parse_args(argv)


def pick_rows(rows: list[ManifestRow], limit: int | None) -> list[ManifestRow]:
    if limit is None or limit >= len(rows):
        return rows
    return [rows[i * len(rows) // limit] for i in range(max(limit, 0))]


def polewatch_pass(rows: Sequence[ManifestRow], root: Path, args: argparse.Namespace) -> System:
    """The shipped model over ``rows`` through ``polewatch evaluate``, pinned: scores and process CPU time."""
    system = System("polewatch", BURST_GAP_S, calls=1)
    with tempfile.TemporaryDirectory(prefix="polewatch-quality-") as tmp:
        manifest, scores = Path(tmp) / "manifest.tsv", Path(tmp) / "scores.jsonl"
        with manifest.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(["path", "label"])
            writer.writerows([r.path, r.label] for r in rows)
        cmd = [sys.executable, "-m", "edge", "evaluate", "--manifest", str(manifest), "--data-root", str(root)]
        cmd += ["--model", str(args.model), "--scores-out", str(scores), "--json"]
        proc = run_pinned(cmd, args.cpu, args.timeout, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"polewatch evaluate failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
        report = json.loads(proc.stdout)
        system.scores = read_scores(scores)
    system.errors = {m["file"]: m["error"] for m in report["missing"]}
    system.cpu_s = proc.cpu_s
    system.audio_s = sum(s.seconds or 0.0 for s in system.scores.values())
    return system


def peer_system(name: str, script: Path, rows: Sequence[ManifestRow], root: Path, args: argparse.Namespace) -> System:
    by_arg = {str(root / r.path): r.path for r in rows}
    started = time.monotonic()

    def progress(run: PeerScores) -> None:
        done = len(run.scores) + len(run.errors)
        minutes = (time.monotonic() - started) / 60.0
        log.info("%s: %d/%d files, %d unreadable, %.1f min", name, done, len(by_arg), len(run.errors), minutes)

    run = score_files(script, args.peers_python, list(by_arg), args.cpu, args.timeout, args.batch, progress)
    return System(
        name,
        1.5 * run.hop_s,  # consecutive window starts are one hop apart; NaN (no FA/h) when the hop is unknown
        scores={by_arg[f]: s for f, s in run.scores.items() if f in by_arg},
        errors={by_arg.get(f, f): e for f, e in run.errors.items()},
        cpu_s=run.cpu_s,
        audio_s=sum(s.seconds or 0.0 for s in run.scores.values()),
        calls=run.calls,
    )


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    root = (args.data_root or args.manifest.parent).resolve()
    all_rows = pick_rows(read_manifest(args.manifest), args.limit)
    present = [r for r in all_rows if (root / r.path).is_file()]
    not_found = {r.path: "not found" for r in all_rows if not (root / r.path).is_file()}
    shipped = read_metadata(args.model).threshold
    log.info("polewatch: %d files through %s, pinned to core %d ...", len(present), args.model, args.cpu)
    polewatch = polewatch_pass(present, root, args)
    log.info("polewatch: done in %.1f min", (time.monotonic() - started) / 60.0)
    source = f"shipped model {args.model.name} over the manifest: includes training files (optimistic)"
    if args.polewatch_scores:
        scores = read_scores(args.polewatch_scores)
        polewatch.scores = {r.path: scores[r.path] for r in present if r.path in scores}
        polewatch.errors = {r.path: f"not in {args.polewatch_scores}" for r in present if r.path not in scores}
        source = f"{args.polewatch_scores} (CPU: shipped model {args.model.name} over the same files in this run)"
    systems = [polewatch]
    if not args.no_peers and not args.peers_dir.is_dir():
        log.warning("peers folder %s not found: peers skipped", args.peers_dir)
    elif not args.no_peers:
        for name, script in PEERS:
            if name == "BirdNET" and args.no_birdnet:
                continue
            log.info("%s: %d files in calls of %d, pinned to core %d ...", name, len(present), args.batch, args.cpu)
            try:
                systems.append(peer_system(name, args.peers_dir / script, present, root, args))
            except (RuntimeError, OSError) as exc:
                log.warning("%s failed: %s", name, exc)
                systems.append(System(name, math.nan, failed=str(exc)))
    report: dict[str, Any] = {
        "manifest": str(args.manifest),
        "files": len(all_rows),
        "not_found": len(not_found),
        "audio_hours": polewatch.audio_s / 3600.0,
        "counts": subset_counts(present),
        "polewatch_source": source,
        "burst_gap_s": BURST_GAP_S,
        "cpu": args.cpu,
        "systems": {},
    }
    for system in systems:
        if system.failed:
            report["systems"][system.name] = {"failed": system.failed}
            continue
        system.errors = {**not_found, **system.errors}
        threshold = shipped if system is polewatch else None
        report["systems"][system.name] = system_row(all_rows, system, threshold)
        report["systems"][system.name]["unscored"] = system.errors
    report["wall_s"] = time.monotonic() - started
    return report


def _jsonable(value: Any) -> Any:
    """NaN (an empty subset) as null, so the output is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        report = run_quality(args)
    except (PolewatchError, RuntimeError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(_jsonable(report), indent=1) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
