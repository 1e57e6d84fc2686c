"""``polewatch detect FILE...``: run the full streaming pipeline over recordings, as fast as possible."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.cli import EXIT_FAILURE
from edge.cli.unit_options import add_unit_options, unit_detector
from edge.detect.params import DetectorParams
from edge.detect.report import describe, detection_dict
from edge.detect.runtime import TfliteModel
from edge.detect.scan import scan_file
from edge.errors import AudioError


def register(sub: Any) -> None:
    p = sub.add_parser("detect", help="detect gunshots in audio files (WAV/FLAC/OGG)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON line per detection and per file")
    add_unit_options(p)
    p.add_argument(
        "--burst-gap", type=float, default=None, help="seconds between rounds of one burst (default: the config's, 2)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, threshold, params = unit_detector(args)
    if args.burst_gap is not None:
        params = replace(params, bursts=replace(params.bursts, gap_s=args.burst_gap))
    failures = 0
    for path in args.files:
        try:
            detect_file(path, model, threshold, params, as_json=args.json)
        except AudioError as exc:
            failures += 1
            print(f"polewatch: error: {exc}", file=sys.stderr)
    return EXIT_FAILURE if failures else 0


def detect_file(path: Path, model: TfliteModel, threshold: float, params: DetectorParams, *, as_json: bool) -> int:
    scan = scan_file(path, model, threshold, params)
    for det in scan.detections:
        record = {"file": str(path), **detection_dict(det)}
        print(json.dumps(record) if as_json else f"{path}: {describe(det)}", flush=True)
    gun_max = round(scan.max_score, 4)
    count = len(scan.detections)
    summary = {"file": str(path), "gun_max": gun_max, "detections": count, "texture_capped": scan.texture_capped}
    human = f"{path}: {count} detection(s), highest gunshot score {gun_max:.3f}"
    if scan.texture_capped:
        human += f", {scan.texture_capped} impulse(s) inside a texture (rain, rattling) kept from opening one"
    print(json.dumps(summary) if as_json else human, flush=True)
    return count
