"""The peer classifiers (YAMNet, EfficientAT, BirdNET), each run by its own runner script with the peers' Python."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

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
