"""``polewatch survey``: record a site's ambience from the unit's microphone into a folder that
``python -m tools.train --add-data`` trains on (model card: a new far-field site needs its own ambience in training,
together with ``--far``)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import soundfile as sf

from edge.audio.factory import open_configured
from edge.audio.source import SAMPLE_RATE
from edge.config import DEFAULT_CONFIG_PATH, load_config
from edge.errors import AudioError, ConfigError
from edge.health import MicLevel, MicReading, disk_usage

COLUMNS = ("path", "label", "group", "source", "duration_s", "original_sr", "license", "origin", "note")
"""The dev manifest's columns (``../shared/data/audio/manifest.tsv``)."""
MAX_MINUTES = 24 * 60
BYTES_PER_SAMPLE = 2.1
"""What the space check asks for: 16-bit samples plus 5 % for FLAC frames of sound that does not compress."""


def register(sub: Any) -> None:
    p = sub.add_parser("survey", help="record the site's ambience for retraining (tools.train --add-data)")
    p.add_argument("--out", type=Path, required=True, help="survey folder: FLAC files and manifest.tsv (appended)")
    p.add_argument("--minutes", type=float, default=20.0, help="how long to record (default 20)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"default {DEFAULT_CONFIG_PATH}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.minutes <= MAX_MINUTES:
        raise ConfigError([f"--minutes {args.minutes}: must lie in (0, {MAX_MINUTES}]"])
    config = load_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = next(n for k in range(1, 1000) if not (args.out / (n := _name(config.unit.id, stamp, k))).exists())
    wanted, minute = round(args.minutes * 60 * SAMPLE_RATE), 60 * SAMPLE_RATE
    need, free = round(BYTES_PER_SAMPLE * wanted), disk_usage(args.out).free_bytes
    if free < need:
        raise OSError(
            f"{args.out} has {free / 1e6:.1f} MB free and {args.minutes:g} min may need {need / 1e6:.1f} MB; "
            "free space there or ask for fewer --minutes"
        )
    source = open_configured(config.audio)
    meter = MicLevel()
    written = 0
    try:
        with sf.SoundFile(args.out / name, "w", SAMPLE_RATE, 1, "PCM_16") as flac:
            for chunk in source.chunks():
                take = chunk[: wanted - written]
                flac.write(take)
                meter.update(take)
                written += len(take)
                if written // minute > (written - len(take)) // minute:
                    print(_progress(written // minute, args.minutes, meter.reading()), file=sys.stderr, flush=True)
                if written >= wanted:
                    break
    except KeyboardInterrupt:
        print("stopped: keeping what was recorded", file=sys.stderr)
    except sf.SoundFileError as exc:  # a full disk: libsndfile reports "System error."
        (args.out / name).unlink(missing_ok=True)
        raise OSError(
            f"writing {args.out / name} failed after {written / SAMPLE_RATE / 60:.1f} min ({exc}); is the disk full? "
            "The unfinished file was removed (a FLAC cut off mid-write cannot be read); free space and run the "
            "survey again"
        ) from exc
    finally:
        source.close()
    seconds = written / SAMPLE_RATE
    if written == 0:
        (args.out / name).unlink(missing_ok=True)
        raise AudioError(f"{source.name} gave no audio; nothing recorded")
    _append_row(args.out, name, config.unit.id, stamp, seconds)
    print(f"{args.out / name}: {seconds / 60:.1f} min of {config.unit.id}'s ambience, in {args.out / 'manifest.tsv'}")
    print(f"how the installed model hears it: polewatch detect --config {args.config} {args.out / name}")
    return 0


def _name(unit_id: str, stamp: str, k: int) -> str:
    return f"{unit_id}-{stamp}.flac" if k == 1 else f"{unit_id}-{stamp}-{k}.flac"


def _progress(minutes: int, of: float, level: MicReading) -> str:
    return (
        f"{minutes} of {of:g} min: level {level.rms_dbfs:.0f} dBFS, floor {level.noise_floor_dbfs:.0f} dBFS, "
        f"{100 * level.clipping_ratio:.2f} % clipped"
    )


def _append_row(out: Path, name: str, unit_id: str, stamp: str, seconds: float) -> None:
    manifest = out / "manifest.tsv"
    row = {
        "path": name,
        "label": "background",
        "group": f"survey:{unit_id}:{stamp}",
        "source": f"survey:{unit_id}",
        "duration_s": f"{seconds:.3f}",
        "original_sr": str(SAMPLE_RATE),
        "license": "recorded by the unit at its site (the deployment's own)",
        "origin": unit_id,
        "note": "polewatch survey",
    }
    new = not manifest.is_file()
    with manifest.open("a") as fh:
        if new:
            fh.write("\t".join(COLUMNS) + "\n")
        fh.write("\t".join(row[c] for c in COLUMNS) + "\n")
