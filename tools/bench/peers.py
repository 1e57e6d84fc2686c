"""The peer classifiers (YAMNet, EfficientAT, BirdNET), each run by its own runner script with the peers' Python."""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.evaluate.scores import FileScores
from tools.bench.proc import run_pinned

log = logging.getLogger("tools.bench")

PEERS = (("YAMNet", "run_yamnet.py"), ("EfficientAT", "run_efficientat.py"), ("BirdNET", "run_birdnet.py"))


def _peer_summary(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "summary" in obj:
            return dict(obj["summary"])
    raise ValueError("no JSON summary line in the peer's output")


def measure_peer(script: Path, python: str, wav: Path, seconds: float, cpu: int, timeout_s: float) -> dict[str, Any]:
    proc = run_pinned([python, str(script), "--threads", "1", "--json", str(wav)], cpu, timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
    summary = _peer_summary(proc.stdout)
    return {
        "model_ms_per_s": 1000.0 * float(summary["model_s_per_audio_s"]),
        "total_ms_per_s": 1000.0 * float(summary["total_s_per_audio_s"]),
        "process_cpu_ms_per_s": 1000.0 * proc.cpu_s / seconds,
        "peak_rss_mb": proc.peak_rss_mb,
    }


def measure_peers(args: argparse.Namespace, wavs: dict[str, tuple[Path, float]]) -> dict[str, dict[str, Any]]:
    peers_dir = Path(args.peers_dir)
    results: dict[str, dict[str, Any]] = {}
    for name, script in PEERS:
        if name == "BirdNET" and args.no_birdnet:
            continue
        results[name] = {}
        for stream, (wav, seconds) in wavs.items():
            log.info("peer %s on %s ...", name, stream)
            try:
                results[name][stream] = measure_peer(
                    peers_dir / script, args.peers_python, wav, seconds, args.cpu, args.timeout
                )
            except (RuntimeError, ValueError, OSError, KeyError) as exc:
                log.warning("peer %s failed on %s: %s", name, stream, exc)
                results[name][stream] = {"error": str(exc)}
    return results


@dataclass
class PeerScores:
    """Every file one peer runner scored, over as many calls as the batches (and failures) needed."""

    scores: dict[str, FileScores] = field(default_factory=dict)
    """By the path as passed to the runner; ``marks`` are (window start s, gun score) of every window."""
    errors: dict[str, str] = field(default_factory=dict)
    """Files the runner could not score, with the end of its error output."""
    cpu_s: float = 0.0
    """CPU time of every runner process, summed (start-up, model load, decoding, resampling and the model)."""
    calls: int = 0
    hop_s: float = math.nan
    """Window hop from the runner's header line."""
    runner_s: float = 0.0
    """The runners' own timing of decode + resample + features + model (wall, one thread), summed."""


def score_files(
    script: Path,
    python: str,
    files: Sequence[str],
    cpu: int | None,
    timeout_s: float,
    batch: int = 200,
    on_batch: Callable[[PeerScores], None] | None = None,
) -> PeerScores:
    """Runs the peer over ``files`` in calls of at most ``batch`` files (``--threads 1 --json --per-window``).

    A call that fails part-way keeps the files it printed; the first file without a result is recorded as
    unreadable and the rest go to the next call. A call that fails before its header line (no model, broken
    venv) raises :class:`RuntimeError`."""
    out = PeerScores()
    todo = list(files)
    while todo:
        chunk, todo = todo[:batch], todo[batch:]
        cmd = [python, str(script), "--threads", "1", "--json", "--per-window", *chunk]
        proc = run_pinned(cmd, cpu, timeout_s, env={"PYTHONUNBUFFERED": "1"})
        out.cpu_s += proc.cpu_s
        out.calls += 1
        header = _read_output(proc.stdout, out)
        if header is None:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise RuntimeError(f"{script.name} exit {proc.returncode}: {' | '.join(tail)}")
        out.hop_s = float(header.get("hop_s", math.nan))
        unscored = [f for f in chunk if f not in out.scores and f not in out.errors]
        if proc.returncode != 0 and unscored:
            last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            out.errors[unscored[0]] = last
            todo = unscored[1:] + todo
        else:
            out.errors.update({f: "no result from the runner" for f in unscored})
        if on_batch is not None:
            on_batch(out)
    return out


def _read_output(stdout: str, out: PeerScores) -> dict[str, Any] | None:
    """Adds the file lines of one call to ``out``; returns its header line (None when there is none)."""
    header: dict[str, Any] | None = None
    for line in stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if "peer" in obj:
            header = obj
        elif "summary" in obj:
            out.runner_s += float(obj["summary"]["total_s_per_audio_s"]) * float(obj["summary"]["audio_s"])
        elif "file" in obj:
            gun_max = float(obj["gun_max"])
            if math.isnan(gun_max):
                out.errors[str(obj["file"])] = "no window scored"
                continue
            marks = tuple((float(w["t"]), float(w["gun"])) for w in obj.get("per_window", []))
            out.scores[str(obj["file"])] = FileScores(gun_max, float(obj["duration_s"]), marks)
    return header
