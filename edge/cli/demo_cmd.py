"""``polewatch demo``: a synthetic street scene replayed through the same unit as ``polewatch run``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge.config import Config, load_config, parse_config
from edge.detect.bursts import Detection
from edge.detect.report import describe
from edge.service import RunSummary, Unit

MATCH_S = 0.05
"""A detection within this many seconds of a scene gunshot's first round counts as finding it."""


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="replay a built-in street scene through the full unit and print detections")
    p.add_argument("--config", type=Path, default=None, help="config file (default: built-in defaults)")
    p.add_argument("--realtime", action="store_true", help="pace the scene like a microphone")
    p.add_argument("--loop", action="store_true", help="replay the scene until interrupted")
    p.add_argument("--seed", type=int, default=0, help="which generated scene (default 0)")
    p.add_argument("--save-scene", type=Path, default=None, metavar="WAV", help="also write the scene to a file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.audio.file_source import ArraySource
    from edge.scene.compose import demo_scene, write_scene

    config: Config = load_config(args.config) if args.config else parse_config({})
    scene = demo_scene(seed=args.seed)
    if args.save_scene:
        write_scene(scene, args.save_scene)
    source = ArraySource(
        scene.samples, chunk_samples=config.audio.chunk_ms * 16, realtime=args.realtime, loop=args.loop
    )
    guns = [e for e in scene.events if e.kind == "gunshot"]
    others = [e for e in scene.events if e.kind != "gunshot"]
    print(
        f"demo: {len(scene.samples) / 16_000:.0f} s street scene with {len(guns)} gunshot bursts "
        f"({', '.join(str(e.rounds) for e in guns)} rounds) and {len(others)} other impulses "
        f"({', '.join(sorted({e.kind for e in others}))})",
        flush=True,
    )
    unit = Unit(config, source=source, handlers=[_print_detection])
    try:
        summary = unit.run()
    finally:
        unit.stop()
    print(_summary_line(summary, scene.events, len(scene.samples)), flush=True)
    return 0


def _print_detection(det: Detection) -> None:
    print(describe(det), flush=True)


def _summary_line(summary: RunSummary, events: list[Any], scene_samples: int) -> str:
    guns = [e for e in events if e.kind == "gunshot"]
    found, false_alarms = 0, 0
    for det in summary.detections:
        at = det.onset % scene_samples
        if any(abs(at - g.onset_sample) <= MATCH_S * 16_000 for g in guns):
            found += 1
        else:
            false_alarms += 1
    rounds = "/".join(str(d.rounds) for d in summary.detections) or "-"
    return (
        f"demo done: {summary.seconds:.1f} s of audio, {summary.candidates} impulses classified, "
        f"{found} of {len(guns)} gunshot bursts detected (rounds {rounds}), {false_alarms} false alarm(s)"
    )
