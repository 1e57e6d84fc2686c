"""A copy of a labelled data folder with every recording changed one way: how robust are the numbers?

    python -m tools.perturb --data ../shared/data/audio --out /tmp/quiet --gain-db -20
    python -m tools.perturb --data ../shared/data/audio --out /tmp/loud --gain-db 20      # clips at full scale
    python -m tools.perturb --data ../shared/data/audio --out /tmp/band --lowpass-hz 3400
    python -m tools.perturb --data ../shared/data/audio --out /tmp/mp3 --mp3 0.9        # libsndfile MP3, 0..1
    python -m tools.perturb --data ../shared/data/audio --out /tmp/noisy --noise-dbfs -45

The private held-out set a model is finally judged on is other recordings: other microphones, levels, codecs and
backgrounds. Scoring the same files changed in one such way (``tools.ensemble`` / ``tools.kfold --resume`` with
``--data`` pointing at the copy, and ``tools.bench.quality --manifest`` for the peers) shows which of those shifts
the numbers survive. The manifest is copied unchanged (same paths, labels, groups, so the same folds); every file is
written as 16 kHz mono FLAC (``--mp3``: decoded back from MP3). ``--noise-dbfs`` adds pink noise at that RMS level,
seeded per file. Nothing here is used in training.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from tools.augment import SR, Float, lowpass, to_float, to_int16
from tools.dataset import DataError, exit_status, load_audio, manifest_path, read_manifest

log = logging.getLogger("tools.perturb")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tools.perturb", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.tsv and the recordings")
    ap.add_argument("--out", type=Path, required=True, help="folder for the changed copy (must not exist)")
    kind = ap.add_mutually_exclusive_group(required=True)
    kind.add_argument("--gain-db", type=float, help="level change in dB; samples beyond full scale clip")
    kind.add_argument("--lowpass-hz", type=float, help="4th-order Butterworth low-pass at this frequency")
    kind.add_argument("--mp3", type=float, metavar="LEVEL", help="MP3 round trip at this compression level (0..1)")
    kind.add_argument("--noise-dbfs", type=float, help="add pink noise of this RMS level (dBFS)")
    args = ap.parse_args(argv)
    if args.lowpass_hz is not None and not 100.0 <= args.lowpass_hz < SR / 2:
        ap.error(f"--lowpass-hz {args.lowpass_hz:g}: must lie in 100..{SR // 2} (below the 8 kHz Nyquist limit)")
    if args.mp3 is not None and not 0.0 <= args.mp3 <= 1.0:
        ap.error(f"--mp3 {args.mp3:g}: the compression level must lie in 0..1")
    if args.noise_dbfs is not None and args.noise_dbfs > 0.0:
        ap.error(f"--noise-dbfs {args.noise_dbfs:g}: an RMS level above full scale (0 dBFS) makes no sense")
    return args


def pink_noise(n: int, rms_dbfs: float, rng: np.random.Generator) -> Float:
    """Pink (1/f power) noise of ``n`` samples at ``rms_dbfs``, shaped in the frequency domain."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spectrum *= 1.0 / np.sqrt(np.maximum(f, 20.0))
    x = np.fft.irfft(spectrum, n)
    x *= 10.0 ** (rms_dbfs / 20.0) / max(float(np.sqrt(np.mean(x**2))), 1e-12)
    return x.astype(np.float32)


def mp3_round_trip(x: Float, level: float) -> Float:
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="MP3", compression_level=level)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    y = y if y.ndim == 1 else y[:, 0]
    out = np.zeros_like(x)  # the codec pads; keep the original length and timing
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def perturb(x: Float, args: argparse.Namespace, path: str) -> Float:
    if args.gain_db is not None:
        return x * np.float32(10.0 ** (args.gain_db / 20.0))
    if args.lowpass_hz is not None:
        return lowpass(x, args.lowpass_hz)
    if args.mp3 is not None:
        return mp3_round_trip(x, args.mp3)
    seed = int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "little")
    return x + pink_noise(len(x), args.noise_dbfs, np.random.default_rng(seed))


def describe(args: argparse.Namespace) -> str:
    if args.gain_db is not None:
        return f"gain {args.gain_db:+g} dB"
    if args.lowpass_hz is not None:
        return f"low-pass {args.lowpass_hz:g} Hz"
    if args.mp3 is not None:
        return f"MP3 round trip, compression level {args.mp3:g}"
    return f"pink noise at {args.noise_dbfs:g} dBFS RMS"


def run(args: argparse.Namespace) -> int:
    items = read_manifest(args.data)
    if args.out.exists():
        raise DataError(f"--out {args.out} exists; give a new folder")
    args.out.mkdir(parents=True)
    shutil.copyfile(manifest_path(args.data), manifest_path(args.out))
    written = 0
    for item in items:
        src = args.data / item.path
        if not src.is_file():
            log.warning("%s is missing; left out of the copy", item.path)
            continue
        dst = args.out / item.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        changed = perturb(to_float(load_audio(src)), args, item.path)
        sf.write(str(dst), to_int16(changed), SR, format="FLAC", subtype="PCM_16")
        written += 1
    (args.out / "PERTURBED.txt").write_text(f"{describe(args)} of every file of {args.data}\n")
    print(f"{written} of {len(items)} files written to {args.out} ({describe(args)})")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
