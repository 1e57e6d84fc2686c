"""``--config``, ``--model`` and ``--threshold`` for the commands that run the detector over files (``detect``,
``evaluate``): by default polewatch's defaults, with ``--config`` what that unit runs, flags on top."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge.config import DetectConfig, load_config
from edge.detect.params import DetectorParams
from edge.detect.runtime import TfliteModel


def add_unit_options(p: Any) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="run as the unit with this config file would: its [detect] model, threshold, onset gate, burst "
        "and texture rules (default: polewatch's defaults)",
    )
    p.add_argument("--model", type=Path, default=None, help="a .tflite with its .json (default: the config's)")
    p.add_argument("--threshold", type=float, default=None, help="gunshot score threshold (default: the config's)")


def unit_detector(args: argparse.Namespace) -> tuple[TfliteModel, float, DetectorParams]:
    """The model, threshold and rules a unit with ``--config`` (or the defaults) would detect with."""
    detect = load_config(args.config).detect if args.config else DetectConfig()
    model = TfliteModel(args.model or (Path(detect.model) if detect.model else None))
    threshold = args.threshold if args.threshold is not None else (detect.threshold or model.info.threshold)
    return model, threshold, DetectorParams.from_config(detect)
