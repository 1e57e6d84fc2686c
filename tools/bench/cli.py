"""Command line: arguments, the whole run (streams -> unit -> peers -> report) and ``main``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import AudioError
from tools.bench.peers import measure_peers
from tools.bench.proc import REPO
from tools.bench.report import format_report, pi_estimate, target_verdicts
from tools.bench.unit import measure_unit, unit_child

log = logging.getLogger("tools.bench")

DESCRIPTION = "Whole-pipeline CPU and memory benchmark of the unit, side by side with the peer classifiers."


def default_peers_python() -> str:
    env = os.environ.get("PEERS_PYTHON")
    if env:
        return env
    conventional = Path("/tmp/peers-venv/bin/python")  # noqa: S108  (the peers README's set-up)
    return str(conventional) if conventional.exists() else sys.executable


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=DESCRIPTION)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "audio"), help="data folder")
    p.add_argument("--peers-dir", default=str(REPO.parent / "shared" / "peers"), help="peer runners folder")
    p.add_argument("--peers-python", default=default_peers_python(), help="python of the peers' venv")
    p.add_argument("--no-peers", action="store_true", help="measure polewatch only")
    p.add_argument("--no-birdnet", action="store_true", help="skip BirdNET (slowest peer)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of each stream (default 10)")
    p.add_argument(
        "--model",
        default=str(REPO / "models" / "gunshot.tflite"),
        help="classifier .tflite (with its .json), or 'fake' for no classifier",
    )
    p.add_argument("--synthetic", action="store_true", help="seeded synthetic streams instead of the data")
    p.add_argument("--cpu", type=int, default=0, help="core to pin every measured process to (default 0)")
    p.add_argument("--repeat", type=int, default=1, help="timed passes per stream; the fastest counts")
    p.add_argument(
        "--no-deployed",
        action="store_true",
        help="skip the second, unpinned run of the unit (as systemd starts it: all cores visible)",
    )
    p.add_argument("--profile", action="store_true", help="also cProfile the pipeline on the street stream")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for each subprocess")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--unit-child", metavar="SPEC", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    if args.model != "fake" and not Path(args.model).is_file():
        raise FileNotFoundError(f"model {args.model} not found: pass --model PATH (or 'fake' for no classifier)")
    # Imported here, not at the top: the unit subprocess starts through this module and must not load soundfile
    # and the training tools before it measures its own memory.
    from tools.bench.streams import build_streams, write_wav

    seconds = args.minutes * 60.0
    log.info("building %.1f-minute streams ...", args.minutes)
    streams = build_streams(Path(args.data), seconds, args.synthetic)
    if not streams:
        raise RuntimeError("no stream could be built (no data folder, no demo scene)")
    report: dict[str, Any] = {"machine": _machine(), "streams": {}, "polewatch": {}, "peers": {}}
    with tempfile.TemporaryDirectory(prefix="polewatch-bench-") as tmp:
        wavs: dict[str, tuple[Path, float]] = {}
        for s in streams:
            wav = Path(tmp) / f"{s.name}.wav"
            write_wav(wav, s.samples)
            wavs[s.name] = (wav, s.seconds)
            report["streams"][s.name] = {"seconds": s.seconds, "source": s.source, "events": s.events}
        del streams
        for name, (wav, _) in wavs.items():
            log.info("polewatch on %s ...", name)
            profile = args.profile and name == "street"
            unit = measure_unit(wav, args.model, args.cpu, args.repeat, profile, args.timeout)
            if not args.no_deployed:
                log.info("polewatch on %s, as deployed (not pinned) ...", name)
                deployed = measure_unit(wav, args.model, None, 1, False, args.timeout)
                unit["deployed_cpu_ms_per_s"] = deployed["cpu_ms_per_s"]
                unit["deployed_logmel_ms_per_window"] = deployed["logmel_ms_per_window"]
            report["polewatch"][name] = unit
            if profile:
                report["profile"] = report["polewatch"][name].pop("profile")
                report["profile_stream"] = name
        if not args.no_peers and Path(args.peers_dir).is_dir():
            report["peers"] = measure_peers(args, wavs)
        elif not args.no_peers:
            log.warning("peers folder %s not found: peers skipped", args.peers_dir)
    report["model"] = next(iter(report["polewatch"].values()))["model"]
    report["targets"] = target_verdicts(report["polewatch"])
    report["pi_estimate"] = {name: pi_estimate(u) for name, u in report["polewatch"].items()}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.unit_child:
        result = unit_child(json.loads(Path(args.unit_child).read_text()))
        print(json.dumps(result))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run_bench(args)
    except (FileNotFoundError, RuntimeError, ValueError, AudioError) as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0
