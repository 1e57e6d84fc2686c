"""``polewatch run``: the live unit, from its config file."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from edge.config import DEFAULT_CONFIG_PATH, load_config
from edge.detect.bursts import Detection
from edge.detect.report import detection_dict
from edge.service import Unit

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the pole unit (microphone → detections)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"default {DEFAULT_CONFIG_PATH}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.log_level is None and not args.debug:
        logging.getLogger().setLevel(config.logging.level.upper())
    unit = Unit(config, handlers=[_print_json])

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        unit.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    unit.start()
    try:
        summary = unit.run()
    finally:
        unit.stop()
    log.info("stopped after %.1f s of audio, %d detection(s)", summary.seconds, len(summary.detections))
    return 0


def _print_json(det: Detection) -> None:
    sys.stdout.write(json.dumps(detection_dict(det)) + "\n")
    sys.stdout.flush()
