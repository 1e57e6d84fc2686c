"""``polewatch evaluate --manifest FILE``: the accuracy anyone can reproduce, through the real pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge.cli.unit_options import add_unit_options, unit_detector
from edge.evaluate.manifest import read_manifest
from edge.evaluate.report import build_report, format_report
from edge.evaluate.runner import Progress, evaluate_files
from edge.evaluate.scores import write_scores


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="metrics of the detector on a labelled manifest (path, label, ...)")
    p.add_argument("--manifest", type=Path, required=True, help="TSV with columns path, label (group, source, rounds)")
    p.add_argument(
        "--data-root", type=Path, default=None, help="folder the paths are relative to (default: the manifest's)"
    )
    add_unit_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--scores-out",
        type=Path,
        default=None,
        help='write a JSON line per file here: {"file", "gun_max", "seconds", "impulses": [[onset_s, score], ...]}',
    )
    p.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write ROC, PR and per-label PNGs here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = read_manifest(args.manifest)
    root = args.data_root or args.manifest.parent
    model, threshold, params = unit_detector(args)
    progress = Progress(len(rows))
    results = list(evaluate_files(rows, root, model, threshold, params=params, on_result=progress.step))
    if args.scores_out:
        write_scores(args.scores_out, results)
    report = build_report(results, threshold)
    report["model"] = model.identity
    report["detector"] = params.to_dict()  # what the metrics depend on besides the model
    if args.config:
        report["config"] = str(args.config)
    if args.plots:
        from edge.evaluate.plots import write_plots

        report["plots"] = [str(p) for p in write_plots(results, report, args.plots)]
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0
