"""Train the polewatch gunshot classifier and export it as a full-int8 TFLite model with its metadata JSON.

    python -m tools.train --data ../shared/data/audio --out models/ [--seed 0] [--split-seed S] [--ensemble N]
        [--epochs N] [--max-steps N] [--quick] [--mine-hard-negatives FRAC [--mine-weight W]]

Training patches are made exactly as the unit makes them: the onset gate runs over every (augmented) recording and
each candidate's window goes through the numpy log-mel front end. Validation is by ``group`` and scores whole files
by ``gun_max`` (the highest model score over all of a file's gate candidates). With ``--ensemble N`` N CNNs are
trained on the same patches with seeds ``seed``, ``seed + 1``, ... and exported as ONE model whose logit is the mean
of the members' logits. With ``--mine-hard-negatives FRAC`` (hard-negative mining) a first CNN is trained with the
plain recipe (seed ``seed``), scores every training negative patch, and the final model(s) are retrained from
scratch with the top FRAC of negative patches by that score weighted ``--mine-weight`` times more (the negatives'
total weight is unchanged, so the gunshot/negative balance stays that of the recipe).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from edge.detect.runtime import file_sha256
from edge.dsp.logmel import FloatArray, FrontEndParams, LogMel
from edge.dsp.onset import GateParams
from edge.evaluate import metrics
from tools import distil
from tools.augment import AugmentParams, Float, burst, mix_event, street_bank, to_float
from tools.dataset import (
    AMBIENCE,
    DataError,
    Item,
    counts,
    exit_status,
    gate_candidates,
    licence_summary,
    load_audio,
    loud_candidates,
    manifest_path,
    patches_at,
    read_manifest,
    split_groups,
)

log = logging.getLogger("tools.train")

MODEL_NAME = "polewatch-gunshot"
MODEL_VERSION = "0.6.1"
TRAIN_GATE = GateParams(rise_db=10.0, min_dbfs=-70.0)
"""The gate training windows are found with. The shipped networks were trained with it; the unit's gate
(``GateParams()``: 7 dB rise, -90 dBFS floor) is more sensitive, which the cross-validation scores as the unit runs
(model card)."""
SPLIT_METHOD = (
    "group split stratified by (label, urban/forest): 20 % of each stratum's groups (at least one when it has two "
    "or more), sorted then shuffled with python random.Random(seed); see tools.dataset.split_groups"
)
TARGET_HARD_FPR = 0.02


ARCHITECTURES = {"cnn": (16, 32, 48, 64), "sepcnn": (16, 32, 64, 96)}
"""Default channel widths of each architecture."""


@dataclass(frozen=True)
class Recipe:
    """How many examples to make; ``--quick`` shrinks everything for smoke tests."""

    epochs: int = 15
    batch: int = 128
    learning_rate: float = 2e-3
    arch: str = "cnn"
    widths: tuple[int, ...] = ARCHITECTURES["cnn"]
    gun_aug: int = 60
    """Augmented copies of each urban training gunshot file."""
    hard_aug: int = 6
    """Augmented copies of each hard-negative training file (glass, fireworks, door, ...)."""
    other_aug: int = 1
    """Augmented copies of other urban event files (horn, siren, dog, voice, ...)."""
    max_neg_per_file: int = 150
    """Cap on negative windows taken from one (long) recording."""
    gun_within_db: float = 10.0
    """A gunshot file's candidates within this of its loudest candidate are shots."""
    forest_within_db: float = 6.0
    match_tolerance_s: float = 0.03
    """An augmented clip's candidate is a shot if it lies this close to a known shot onset."""
    shares: dict[str, float] = field(
        default_factory=lambda: {"gun_urban": 0.40, "gun_forest": 0.08, "hard": 0.37, "other": 0.15}
    )
    """Each category's share of the training weight (normalised to their sum). Forest negatives are a category of
    their own (``forest_neg``) only when it has a share; otherwise they are part of ``other``."""
    label_smoothing: float = 0.05
    spec_mask: bool = True
    """SpecAugment-style masks: one band of up to 8 mel bins, one stretch of up to 6 frames after the onset."""
    street_irs: int = 0
    """Simulated street impulse responses events are heard through (``AugmentParams.p_street``); 0: none."""
    p_burst: float = 0.0
    """Share of augmented gunshot copies turned into a burst of fire before the channel effects."""
    burst_rounds: tuple[int, int] = (2, 8)
    burst_spacing_s: tuple[float, float] = (0.05, 0.4)
    """Full-auto (10-20 rounds/s) to semi-auto spacing."""
    p_truncate: float = 0.0
    """Share of augmented clips that end shortly after the event (``AugmentParams.p_end_after_event``)."""
    p_thump: float = 0.0
    """Share of augmented events given a low-frequency thump at their onset (``AugmentParams.p_thump``)."""
    p_eq: float = 0.0
    """Share of augmented events given a random low and high shelf (``AugmentParams.p_eq``)."""
    eq_high_db: tuple[float, float] = (-12.0, 6.0)
    """The high shelf's gain range (``AugmentParams.high_shelf_db``)."""
    jitter_s: float = 0.0
    """Augmented copies' windows start up to this far (uniform, either way) from the gate's onset, so the network
    does not lean on the gate's exact placement; the recordings' own windows stay where the unit puts them."""
    p_channel: float = 0.0
    """Share of augmented clips hard-clipped or band-limited as a whole (``AugmentParams.p_channel``)."""
    channel_clip_share: float = 0.5
    """Of those, the share hard-clipped (``AugmentParams.channel_clip_share``)."""
    p_far: float = 0.0
    """Share of augmented events, negatives too, heard from far away (``AugmentParams.p_far``)."""
    weighted_as_hard: tuple[str, ...] = ()
    """Further negative labels weighted as hard negatives (one equal share each), e.g. impulsive ambience."""
    band_norm: bool = False
    """A second input channel inside the network: each mel band minus its mean over the window (``build_model``)."""

    def shot_within_db(self, item: Item) -> float:
        """How close to a gunshot file's loudest candidate another must be to count as a shot."""
        return self.gun_within_db if item.urban else self.forest_within_db


QUICK = Recipe(epochs=1, gun_aug=2, hard_aug=1, other_aug=0, max_neg_per_file=20, spec_mask=False)


# --------------------------------------------------------------------------- arguments


CATEGORIES = ("gun_urban", "gun_forest", "hard", "other", "forest_neg")
"""The weight categories a training file's patches belong to (:func:`_category`)."""


def _share(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    if name not in CATEGORIES:
        raise argparse.ArgumentTypeError(f"{name!r} is not a category; use one of {', '.join(CATEGORIES)}")
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be a number, e.g. {name}=0.04") from None
    if share < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be >= 0")
    return name, share


def _window(text: str) -> tuple[float, float]:
    try:
        pre, post = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give PRE,POST in seconds, e.g. 0.25,0.75") from None
    if not (0.0 <= pre <= 1.0 and 0.1 <= post <= 2.0):
        raise argparse.ArgumentTypeError(f"{text!r}: PRE must be 0-1 s and POST 0.1-2 s")
    return pre, post


def _fmin(text: str) -> float:
    try:
        hz = float(text)
    except ValueError:
        hz = -1.0
    top = FrontEndParams().fmax_hz
    if not 0.0 <= hz < top:
        raise argparse.ArgumentTypeError(f"{text!r}: give the lowest band edge in Hz, 0 to {top:g}")
    return hz


def _copies(text: str) -> tuple[int, int]:
    try:
        gun, hard = (int(v) for v in text.split(","))
    except ValueError:
        gun = hard = -1
    if gun < 0 or hard < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give two whole numbers GUN,HARD, e.g. {Recipe.gun_aug},6")
    return gun, hard


def _gain_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        low, high = 1.0, 0.0
    if not -30.0 <= low <= high <= 30.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give two gains LOW,HIGH in dB, -30 <= LOW <= HIGH <= 30")
    return low, high


def front_end_from_args(args: argparse.Namespace) -> FrontEndParams:
    fe = FrontEndParams()
    window = getattr(args, "window", None)
    if window is not None:
        fe = replace(fe, pre_s=window[0], post_s=window[1])
    fmin = getattr(args, "fmin", None)
    return fe if fmin is None else replace(fe, fmin_hz=fmin)


def gate_from_args(args: argparse.Namespace) -> GateParams:
    rise = getattr(args, "gate_rise_db", None)
    return TRAIN_GATE if rise is None else replace(TRAIN_GATE, rise_db=rise)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tools.train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.tsv and the FLAC files")
    ap.add_argument("--out", type=Path, required=True, help="output folder for gunshot.tflite and gunshot.json")
    ap.add_argument("--seed", type=int, default=0, help="training seed (augmentation, init, shuffling)")
    ap.add_argument("--split-seed", type=int, default=None, help="seed of the group split (default: --seed)")
    ap.add_argument("--ensemble", type=int, default=1, help="CNNs averaged (logits) into one exported model")
    ap.add_argument("--arch", choices=sorted(ARCHITECTURES), default=None, help="network (default: the recipe's)")
    ap.add_argument(
        "--widths",
        type=lambda text: tuple(int(w) for w in text.split(",")),
        default=None,
        metavar="W,W,...",
        help="channel widths of the network's blocks (default: the architecture's, e.g. sepcnn 16,32,64,96)",
    )
    ap.add_argument("--epochs", type=int, default=None, help=f"training epochs (default {Recipe.epochs})")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests (few examples, one epoch)")
    ap.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default: TF's choice)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="feature extraction processes")
    ap.add_argument(
        "--mine-hard-negatives",
        type=float,
        default=0.0,
        metavar="FRAC",
        help="hard-negative mining: train once, then retrain with the top FRAC (e.g. 0.25) of training negative "
        "patches by first-pass score up-weighted (default 0: off)",
    )
    ap.add_argument("--mine-weight", type=float, default=3.0, help="weight factor of mined negatives (default 3)")
    ap.add_argument(
        "--mine-steps", type=int, default=None, help="optimiser steps of the mining first pass (default --max-steps)"
    )
    ap.add_argument(
        "--all-groups",
        action="store_true",
        help="train on every group, no validation (the final model after tools.kfold); needs --threshold",
    )
    ap.add_argument("--threshold", type=float, default=None, help="detection threshold written with --all-groups")
    ap.add_argument(
        "--street-irs",
        type=int,
        default=None,
        metavar="N",
        help="hear 35 %% of augmented events through one of N simulated street canyons (edge.scene; default 0: off)",
    )
    ap.add_argument(
        "--bursts",
        type=float,
        default=None,
        metavar="P",
        help="turn a share P of augmented gunshot copies into bursts of 2-8 rounds 50-400 ms apart (default 0: off)",
    )
    ap.add_argument(
        "--truncate",
        type=float,
        default=None,
        metavar="P",
        help="end a share P of augmented clips 0.05-0.45 s after the event's onset, as short dataset clips end "
        "(default 0: off)",
    )
    ap.add_argument(
        "--thump",
        type=float,
        default=None,
        metavar="P",
        help="give a share P of augmented events a 3-25 Hz thump at their onset, as an overloaded microphone "
        "records them (default 0: off)",
    )
    ap.add_argument(
        "--eq",
        type=float,
        default=None,
        metavar="P",
        help="hear a share P of augmented events, negatives too, through a random low shelf (80-300 Hz, -6 to "
        "+18 dB) and high shelf (1.5-5 kHz, -12 to +6 dB), as other microphones and mountings colour them "
        "(default 0: off)",
    )
    ap.add_argument(
        "--eq-high-db",
        type=_gain_range,
        default=None,
        metavar="LOW,HIGH",
        help="the --eq high shelf's gain range in dB, e.g. --eq-high-db=-12,6 (the default); 0,0: low shelf only",
    )
    ap.add_argument(
        "--jitter",
        type=float,
        default=None,
        metavar="MS",
        help="move augmented copies' windows up to MS milliseconds either way from the gate's onset (default 0: "
        "off; the recordings' own windows are never moved)",
    )
    ap.add_argument(
        "--channel",
        type=float,
        default=None,
        metavar="P",
        help="pass a share P of augmented clips, ambience included, through a poor channel: a hard clip at full "
        "scale after 6-24 dB of gain, or a 2.5-4.5 kHz low-pass (default 0: off)",
    )
    ap.add_argument(
        "--channel-clip-share",
        type=float,
        default=None,
        metavar="F",
        help=f"of the --channel clips, the share hard-clipped; the rest are band-limited "
        f"(default {Recipe.channel_clip_share})",
    )
    ap.add_argument(
        "--far",
        type=float,
        default=None,
        metavar="P",
        help="hear a share P of augmented events, negatives too, from far away: a 0.5-2 kHz low-pass, a 0.8-2.5 s "
        "diffuse tail and -5 to 15 dB over the ambience (default 0: off)",
    )
    ap.add_argument(
        "--copies",
        type=_copies,
        default=None,
        metavar="GUN,HARD",
        help=f"augmented copies of each urban gunshot file and of each hard-negative file (default "
        f"{Recipe.gun_aug},{Recipe.hard_aug})",
    )
    ap.add_argument(
        "--weight-as-hard",
        type=lambda text: tuple(label for label in text.split(",") if label),
        default=None,
        metavar="LABEL,...",
        help="negative labels to weight like hard negatives in training, e.g. rain (default: none)",
    )
    ap.add_argument(
        "--share",
        type=_share,
        action="append",
        default=None,
        metavar="CATEGORY=S",
        help=f"training weight share of a category ({', '.join(CATEGORIES)}; repeatable), e.g. forest_neg=0.04: "
        "forest negatives then have a share of their own instead of being part of 'other'",
    )
    ap.add_argument(
        "--band-norm",
        action="store_true",
        help="give the network a second input channel, each mel band minus its mean over the window (computed in "
        "the model, so the unit's front end is unchanged)",
    )
    ap.add_argument(
        "--teacher",
        type=Path,
        default=None,
        metavar="NPZ",
        help="distil: mix a teacher's score into each patch's target (features from python -m tools.teacher: per file, "
        "or per gate candidate with --windows)",
    )
    ap.add_argument(
        "--teacher-weight",
        type=float,
        default=0.5,
        metavar="A",
        help="share of the teacher's score in the target, the rest is the label (default 0.5)",
    )
    ap.add_argument(
        "--teacher-aux",
        type=int,
        default=0,
        metavar="DIMS",
        help="with per-window --teacher features: keep the labels as targets and train a second head (dropped at "
        "export) to predict the first DIMS principal components of the teacher's class scores (tools.distil)",
    )
    ap.add_argument(
        "--aux-weight",
        type=float,
        default=0.5,
        metavar="L",
        help="weight of the teacher head's mean squared error against the logit's cross-entropy (default 0.5)",
    )
    ap.add_argument(
        "--gate-rise-db",
        type=float,
        default=None,
        metavar="DB",
        help=f"find the training windows with an onset gate of this rise (default {TRAIN_GATE.rise_db:g}, "
        f"tools.train.TRAIN_GATE; the unit's is {GateParams().rise_db:g})",
    )
    ap.add_argument(
        "--fmin",
        type=_fmin,
        default=None,
        metavar="HZ",
        help=f"lowest mel band edge (default: the front end's {FrontEndParams().fmin_hz:g} Hz); the model then needs a "
        "front end with it",
    )
    ap.add_argument(
        "--window",
        type=_window,
        default=None,
        metavar="PRE,POST",
        help="classifier window in seconds before and after the onset (default: the front end's "
        f"{FrontEndParams().pre_s},{FrontEndParams().post_s}); the model then needs a unit with that front end",
    )
    ap.add_argument(
        "--exclude-source",
        action="append",
        default=[],
        metavar="SOURCE",
        help="leave every file of this manifest source out of training and validation (repeatable), e.g. "
        "--exclude-source forest to see how far-field shots from a site never trained on score",
    )
    ap.add_argument(
        "--add-data",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="train on this folder's manifest.tsv and files as well (repeatable), e.g. a site survey: a deployment's "
        "own ambience recorded on the unit, labelled background",
    )
    ap.add_argument(
        "--urban-gunshot-share",
        type=float,
        default=None,
        metavar="P",
        help="train on only this share (0..1] of the training split's urban gunshot recordings (groups), the same "
        "ones at any seed and nested (a smaller share keeps a subset of a larger one's); with tools.kfold, a "
        "learning curve: how quality grows with gunshot recordings",
    )
    ap.add_argument("--name", default="gunshot", help="file stem of the exported model (default gunshot)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.all_groups and args.threshold is None:
        ap.error("--all-groups needs --threshold (e.g. the one tools.kfold reports)")
    if args.teacher_aux and args.teacher is None:
        ap.error("--teacher-aux needs --teacher (per-window features from python -m tools.teacher --windows)")
    if args.gate_rise_db is not None and not 3.0 <= args.gate_rise_db <= 30.0:
        ap.error(f"--gate-rise-db {args.gate_rise_db}: must lie in 3..30 (dB), as detect.gate_rise_db")
    if args.far is not None and not 0.0 <= args.far <= 1.0:
        ap.error(f"--far {args.far}: a share, must lie in 0..1")
    if args.urban_gunshot_share is not None and not 0.0 < args.urban_gunshot_share <= 1.0:
        ap.error(f"--urban-gunshot-share {args.urban_gunshot_share}: a share, must lie in (0, 1]")
    if args.jitter is not None and not 0.0 <= args.jitter <= 50.0:
        ap.error(f"--jitter {args.jitter}: must lie in 0..50 (ms); the window reaches 100 ms before the onset")
    return args


# --------------------------------------------------------------------------- examples


@dataclass
class Examples:
    x: list[FloatArray] = field(default_factory=list)
    y: list[npt.NDArray[np.float32]] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    """The manifest path each patch was cut from (or its augmented copy)."""
    origin: list[int] = field(default_factory=list)
    """The clean recording's candidate onset each patch shows (augmented or not), or -1 (an ambience impulse)."""

    def add(self, patches: FloatArray, positive: bool, category: str, item: Item, origins: Sequence[int]) -> None:
        if len(patches) == 0:
            return
        self.origin.extend(origins)
        self.x.append(patches)
        self.y.append(np.full(len(patches), 1.0 if positive else 0.0, dtype=np.float32))
        self.category.extend([category] * len(patches))
        self.label.extend([item.label] * len(patches))
        self.source.extend([item.path] * len(patches))

    def extend(self, other: Examples) -> None:
        self.x += other.x
        self.y += other.y
        self.category += other.category
        self.label += other.label
        self.source += other.source
        self.origin += other.origin

    def arrays(self, fe: FrontEndParams) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        if not self.x:
            return np.zeros((0, fe.n_frames, fe.n_mels), np.float32), np.zeros(0, np.float32)
        return np.concatenate(self.x), np.concatenate(self.y)


@dataclass(frozen=True)
class Context:
    data_dir: Path
    recipe: Recipe
    gate: GateParams
    aug: AugmentParams
    pool: list[Float]
    bank: list[Float]
    """Street impulse responses (:func:`tools.augment.street_bank`)."""
    front_end: FrontEndParams


_CTX: Context | None = None
"""Set before the worker pool forks, so workers share the ambience pool without pickling it."""


def _category(item: Item, recipe: Recipe) -> str:
    if item.is_gunshot:
        return "gun_urban" if item.urban else "gun_forest"
    if item.is_hard_negative or item.label in recipe.weighted_as_hard:
        return "hard"
    return "forest_neg" if not item.urban and recipe.shares.get("forest_neg", 0.0) > 0 else "other"


def _cap(onsets: list[int], cap: int, rng: np.random.Generator) -> list[int]:
    if len(onsets) <= cap:
        return onsets
    return sorted(int(o) for o in rng.choice(onsets, size=cap, replace=False))


def _gunshot_examples(item: Item, audio: npt.NDArray[np.int16], ctx: Context, rng: np.random.Generator) -> Examples:
    r, ex, logmel = ctx.recipe, Examples(), LogMel(ctx.front_end)
    loud = loud_candidates(gate_candidates(audio, ctx.gate), r.shot_within_db(item))
    shots = [c.onset for c in loud]
    ex.add(patches_at(audio, shots, logmel), True, _category(item, ctx.recipe), item, shots)
    if not item.urban or not shots:
        return ex
    main = max(loud, key=lambda c: c.block_dbfs).onset
    known = np.array(shots)
    tolerance = r.match_tolerance_s * logmel.params.sample_rate
    event = to_float(audio)
    for _ in range(r.gun_aug):
        fired, onsets = event, known
        if rng.random() < r.p_burst:
            fired, copies = burst(event, rng, r.burst_rounds, r.burst_spacing_s)
            onsets = (known[None, :] + copies[:, None]).ravel()
        clip, offset = mix_event(fired, main, ctx.pool, rng, ctx.aug, ctx.bank)
        placed = onsets + offset
        shown = [(c.onset, _origin(c.onset, placed, known, tolerance)) for c in gate_candidates(clip, ctx.gate)]
        found = [(c, o) for c, o in shown if o >= 0]
        moved = jittered([c for c, _ in found], r.jitter_s, logmel.params.sample_rate, rng)
        ex.add(patches_at(clip, moved, logmel), True, "gun_urban", item, [o for _, o in found])
    return ex


def jittered(onsets: list[int], jitter_s: float, sample_rate: int, rng: np.random.Generator) -> list[int]:
    """``onsets`` each moved by a uniform whole number of samples within ``jitter_s``; no draw when it is 0."""
    most = round(jitter_s * sample_rate)
    if most == 0 or not onsets:
        return onsets
    return [int(o) for o in np.asarray(onsets) + rng.integers(-most, most + 1, size=len(onsets))]


def _origin(onset: int, placed: npt.NDArray[np.int64], known: npt.NDArray[np.int64], tolerance: float) -> int:
    """The known onset whose placed copy lies within ``tolerance`` of ``onset``, or -1 (``placed`` is ``known``
    shifted into the augmented clip, tiled once per burst copy)."""
    if len(placed) == 0:
        return -1
    j = int(np.argmin(np.abs(placed - onset)))
    return int(known[j % len(known)]) if abs(int(placed[j]) - onset) <= tolerance else -1


def _negative_examples(item: Item, audio: npt.NDArray[np.int16], ctx: Context, rng: np.random.Generator) -> Examples:
    r, ex, logmel = ctx.recipe, Examples(), LogMel(ctx.front_end)
    category = _category(item, ctx.recipe)
    every = np.array([c.onset for c in gate_candidates(audio, ctx.gate)], dtype=np.int64)
    onsets = _cap([int(o) for o in every], r.max_neg_per_file, rng)
    ex.add(patches_at(audio, onsets, logmel), False, category, item, onsets)
    if not item.urban or item.label in AMBIENCE or item.label == "other":
        return ex
    n_aug = r.hard_aug if item.is_hard_negative else r.other_aug
    event = to_float(audio)
    tolerance = r.match_tolerance_s * logmel.params.sample_rate
    for _ in range(n_aug):
        clip, offset = mix_event(event, 0, ctx.pool, rng, ctx.aug, ctx.bank)
        onsets = _cap([c.onset for c in gate_candidates(clip, ctx.gate)], r.max_neg_per_file // 3, rng)
        origins = [_origin(o, every + offset, every, tolerance) for o in onsets]
        moved = jittered(onsets, r.jitter_s, logmel.params.sample_rate, rng)
        ex.add(patches_at(clip, moved, logmel), False, category, item, origins)
    return ex


def _file_examples(task: tuple[Item, int]) -> Examples:
    item, seed = task
    ctx = _CTX
    assert ctx is not None, "worker context not initialised"
    rng = np.random.default_rng(seed)
    audio = load_audio(ctx.data_dir / item.path)
    if item.is_gunshot:
        return _gunshot_examples(item, audio, ctx, rng)
    return _negative_examples(item, audio, ctx, rng)


def _parallel_map(fn: Callable[[Any], Any], tasks: list[Any], workers: int, desc: str) -> Iterator[Any]:
    if workers <= 1 or len(tasks) < 8:
        yield from tqdm(map(fn, tasks), total=len(tasks), desc=desc, unit="file")
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from tqdm(pool.imap(fn, tasks, chunksize=4), total=len(tasks), desc=desc, unit="file")


def load_ambience(items: list[Item], data_dir: Path) -> list[Float]:
    """Urban ambience recordings from training groups (the backgrounds events are mixed into)."""
    chosen = [i for i in items if i.label in AMBIENCE and i.urban]
    if not chosen:
        chosen = [i for i in items if i.label in AMBIENCE]
    return [to_float(load_audio(data_dir / i.path)) for i in tqdm(chosen, desc="ambience", unit="file")]


def training_examples(train: list[Item], ctx: Context, seed: int, workers: int) -> Examples:
    global _CTX
    _CTX = ctx
    tasks = [(item, seed * 1_000_003 + k) for k, item in enumerate(train)]
    out = Examples()
    for ex in _parallel_map(_file_examples, tasks, workers, "train features"):
        out.extend(ex)
    return out


def _file_patches(task: tuple[Item, Path, GateParams, FrontEndParams]) -> FloatArray:
    item, data_dir, gate, fe = task
    audio = load_audio(data_dir / item.path)
    return patches_at(audio, [c.onset for c in gate_candidates(audio, gate)], LogMel(fe))


def validation_patches(
    val: list[Item], data_dir: Path, gate: GateParams, fe: FrontEndParams, workers: int
) -> list[FloatArray]:
    """All candidate patches of each validation file, in file order (no augmentation, no cap)."""
    tasks = [(item, data_dir, gate, fe) for item in val]
    return list(_parallel_map(_file_patches, tasks, workers, "val features"))


def sample_weights(categories: list[str], labels: list[str], shares: dict[str, float]) -> npt.NDArray[np.float32]:
    """Each category gets its share of the total weight, split equally between the labels inside it."""
    by_cat_label: dict[tuple[str, str], int] = defaultdict(int)
    for c, lab in zip(categories, labels, strict=True):
        by_cat_label[(c, lab)] += 1
    labels_in_cat: dict[str, int] = defaultdict(int)
    for c, _lab in by_cat_label:
        labels_in_cat[c] += 1
    present = {c: s for c, s in shares.items() if labels_in_cat.get(c)}
    total_share = sum(present.values())
    w = np.array(
        [
            present[c] / total_share / labels_in_cat[c] / by_cat_label[(c, lab)]
            for c, lab in zip(categories, labels, strict=True)
        ],
        dtype=np.float64,
    )
    return (w / w.mean()).astype(np.float32)


def mine_hard_negatives(
    scores: npt.NDArray[np.float32], y: npt.NDArray[np.float32], w: npt.NDArray[np.float32], frac: float, factor: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Weights with the top ``frac`` of negatives by ``scores`` multiplied by ``factor`` (ties by index), the
    negatives then rescaled to their old total weight; also returns the mask of mined patches."""
    neg = np.flatnonzero(y <= 0.5)
    mined = np.zeros(len(y), dtype=bool)
    mined[neg[np.argsort(-scores[neg], kind="stable")[: round(frac * len(neg))]]] = True
    out = w.astype(np.float64)
    old = out[neg].sum()
    out[mined] *= factor
    out[neg] *= old / out[neg].sum()
    return out.astype(np.float32), mined


# --------------------------------------------------------------------------- model


def seed_everything(seed: int, threads: int | None = None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as exc:  # TF refuses once its runtime is up (second model in one process)
            log.debug("thread count already fixed: %s", exc)

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError) as exc:
        log.debug("op determinism unavailable: %s", exc)


def build_model(fe: FrontEndParams, arch: str, widths: Sequence[int], prefix: str = "", band_norm: bool = False) -> Any:
    """Small CNN ending in global average pooling and one logit.

    ``cnn``: conv3x3-BN-ReLU blocks with 2x2 max pooling between them. ``sepcnn``: a stride-2 conv3x3 stem, then
    depthwise-separable blocks (depthwise 3x3 and pointwise 1x1, each BN-ReLU) with max pooling between them: about
    a third of the ``cnn``'s multiply-adds per window.

    ``band_norm`` stacks a second channel on the input: each mel band minus its mean over the window's frames. A
    fixed filter colouring the whole window (distance, the microphone's response, a steady background) is a
    constant per band in log energy; that channel drops it and keeps each band's change in time, which a 3x3
    stem cannot compute across 47 frames. It runs inside the model: the front end and the unit are unchanged.
    """
    import keras
    from keras import layers

    def bn_relu(x: Any, name: str) -> Any:
        x = layers.BatchNormalization(name=f"{prefix}bn{name}")(x)
        return layers.ReLU(name=f"{prefix}relu{name}")(x)

    inputs = keras.Input((fe.n_frames, fe.n_mels, 1), name="logmel")
    x = inputs
    if band_norm:
        band_mean = keras.ops.mean(inputs, axis=1, keepdims=True)
        x = layers.Concatenate(name=f"{prefix}with_band_change")([inputs, layers.Subtract()([inputs, band_mean])])
    for k, width in enumerate(widths):
        if arch == "cnn" or k == 0:
            stride = 2 if arch == "sepcnn" else 1
            x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{prefix}conv{k}")(x)
        else:
            x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{prefix}dw{k}")(x)
            x = bn_relu(x, f"{k}dw")
            x = layers.Conv2D(width, 1, use_bias=False, name=f"{prefix}pw{k}")(x)
        x = bn_relu(x, str(k))
        if 0 < k < len(widths) - 1 or (arch == "cnn" and k == 0):
            x = layers.MaxPooling2D(2, name=f"{prefix}pool{k}")(x)
    x = layers.GlobalAveragePooling2D(name=f"{prefix}gap")(x)
    x = layers.Dropout(0.2, name=f"{prefix}drop")(x)
    outputs = layers.Dense(1, name=f"{prefix}gunshot_logit")(x)
    return keras.Model(inputs, outputs, name=f"{prefix}polewatch_gunshot")


def build_ensemble(fe: FrontEndParams, members: Sequence[Any]) -> Any:
    """One model that runs the trained members side by side on the same input and averages their logits."""
    import keras
    from keras import layers

    if len(members) == 1:
        return members[0]
    inputs = keras.Input((fe.n_frames, fe.n_mels, 1), name="logmel")
    outputs = layers.Average(name="gunshot_logit")([m(inputs, training=False) for m in members])
    return keras.Model(inputs, outputs, name="polewatch_gunshot_ensemble")


def keras_logits(model: Any, patches: FloatArray) -> npt.NDArray[np.float32]:
    """Float logits of a Keras model (used to report each ensemble member before quantisation)."""
    if len(patches) == 0:
        return np.zeros(0, np.float32)
    out = model.predict(patches[..., None], batch_size=512, verbose=0)
    return np.asarray(out, dtype=np.float32).reshape(-1)


class _TqdmSteps:
    """Keras callback factory: one tqdm bar over all optimiser steps."""

    @staticmethod
    def make(total: int) -> Any:
        import keras

        class Callback(keras.callbacks.Callback):  # type: ignore[misc]
            def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
                self.bar = tqdm(total=total, desc="train", unit="step")

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                self.bar.update(1)
                if logs and batch % 20 == 0:
                    self.bar.set_postfix(loss=f"{float(logs.get('loss', math.nan)):.4f}")

            def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
                self.bar.close()

        return Callback()


def _spec_mask(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
    """Per example: one frequency band and one post-onset time stretch set to the floor (-1)."""
    import tensorflow as tf

    n, frames, mels = tf.shape(x)[0], x.shape[1], x.shape[2]
    f_width = tf.random.uniform([n, 1, 1, 1], 0, 9, dtype=tf.int32)
    f_start = tf.random.uniform([n, 1, 1, 1], 0, mels - 8, dtype=tf.int32)
    t_width = tf.random.uniform([n, 1, 1, 1], 0, 7, dtype=tf.int32)
    t_start = tf.random.uniform([n, 1, 1, 1], 14, frames - 6, dtype=tf.int32)
    f_idx = tf.reshape(tf.range(mels), [1, 1, mels, 1])
    t_idx = tf.reshape(tf.range(frames), [1, frames, 1, 1])
    masked = ((f_idx >= f_start) & (f_idx < f_start + f_width)) | ((t_idx >= t_start) & (t_idx < t_start + t_width))
    return tf.where(masked, tf.constant(-1.0, x.dtype), x), y, w


def fit(
    model: Any,
    x: FloatArray,
    y: npt.NDArray[np.float32],
    w: npt.NDArray[np.float32],
    recipe: Recipe,
    epochs: int,
    max_steps: int | None,
    seed: int,
    loss: Any = None,
) -> int:
    """Adam with cosine decay and weight EMA, weighted binary cross-entropy on the logit (or ``loss``); returns the
    steps run."""
    import keras
    import tensorflow as tf

    steps_per_epoch = max(1, math.ceil(len(x) / recipe.batch))
    total = steps_per_epoch * epochs
    if max_steps is not None and max_steps < total:
        total = max_steps
        epochs = max(1, math.ceil(total / steps_per_epoch))
        steps_per_epoch = math.ceil(total / epochs)
        total = steps_per_epoch * epochs
    ds = (
        tf.data.Dataset.from_tensor_slices((x[..., None], y, w))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(recipe.batch)
    )
    if recipe.spec_mask:
        ds = ds.map(_spec_mask, num_parallel_calls=1, deterministic=True)
    ds = ds.prefetch(2)
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=total, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, use_ema=True, ema_momentum=0.995),
        loss=loss or keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing),
    )
    model.fit(
        ds, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0, callbacks=[_TqdmSteps.make(total)]
    )
    return total


def export_tflite(model: Any, representative: FloatArray, path: Path) -> bytes:
    """Full-int8 post-training quantisation; float32 input and output (the quantise ops are in the graph)."""
    import keras
    import tensorflow as tf

    shape = (1, *model.input_shape[1:])

    def rep_data() -> Iterator[list[FloatArray]]:
        for patch in representative:
            yield [patch[None, :, :, None].astype(np.float32)]

    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec(shape, tf.float32, name="logmel")],
        )
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = rep_data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        blob: bytes = converter.convert()
    path.write_bytes(blob)
    return blob


class TfliteLogits:
    """Raw logits from a ``.tflite`` file with ai-edge-litert (no metadata checks: used before the JSON exists)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(model_path=str(path), num_threads=threads)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]

    def __call__(self, patches: FloatArray) -> npt.NDArray[np.float32]:
        out = np.empty(len(patches), dtype=np.float32)
        for i, patch in enumerate(patches):
            self._interp.set_tensor(self._in, patch[None, :, :, None].astype(np.float32))
            self._interp.invoke()
            out[i] = self._interp.get_tensor(self._out).reshape(-1)[0]
        return out


# --------------------------------------------------------------------------- evaluation


def sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def file_scores(per_file: list[FloatArray], score: Callable[[FloatArray], npt.NDArray[np.float32]]) -> list[float]:
    """``gun_max`` per file (probability); 0 for a file where the gate found nothing."""
    flat = [p for p in per_file if len(p)]
    logits = score(np.concatenate(flat)) if flat else np.zeros(0, np.float32)
    probs = sigmoid(logits)
    out, pos = [], 0
    for patches in per_file:
        n = len(patches)
        out.append(float(probs[pos : pos + n].max()) if n else 0.0)
        pos += n
    return out


def operating_threshold(hard_negative_scores: Sequence[float] | npt.NDArray[np.float64]) -> float:
    """Lowest threshold, rounded up to 0.001, at which at most TARGET_HARD_FPR of the hard negatives reach it."""
    raw = metrics.threshold_at_fpr(hard_negative_scores, TARGET_HARD_FPR)
    return min(0.999, math.ceil(raw * 1000.0) / 1000.0)


def evaluate(items: list[Item], scores: list[float]) -> dict[str, Any]:
    """File-level metrics on the validation groups; the threshold gives <= 2 % FP on urban hard negatives."""
    s = np.asarray(scores)
    urban = np.array([i.urban for i in items])
    gun = np.array([i.is_gunshot for i in items])
    hard = np.array([i.is_hard_negative for i in items])
    gun_u, neg_u, hard_u = s[urban & gun], s[urban & ~gun], s[urban & hard]
    gun_f, neg_f = s[~urban & gun], s[~urban & ~gun]
    threshold = operating_threshold(hard_u)
    per_label: dict[str, dict[str, float]] = {}
    for label in sorted({i.label for i in items}):
        for region, mask in (("urban", urban), ("forest", ~urban)):
            sel = s[mask & np.array([i.label == label for i in items])]
            if len(sel):
                key = label if region == "urban" else f"{label}@forest"
                rate_name = "recall" if label == "gunshot" else "fp_rate"
                per_label[key] = {"files": len(sel), rate_name: round(metrics.rate_at(sel, threshold), 4)}
    return {
        "auc_gunshot_vs_all_urban": _r(metrics.auc(gun_u, neg_u)),
        "auc_gunshot_vs_hard_negatives_urban": _r(metrics.auc(gun_u, hard_u)),
        "auc_forest_gunshot_vs_forest_negatives": _r(metrics.auc(gun_f, neg_f)),
        "auc_forest_gunshot_vs_all_negatives": _r(metrics.auc(gun_f, s[~gun])),
        "recall_at_hard_fpr": {
            f"{int(f * 100)}%": _r(metrics.recall_at_fpr(gun_u, hard_u, f)) for f in (0.01, 0.02, 0.05)
        },
        "threshold": threshold,
        "at_threshold": {
            "recall_urban": _r(metrics.rate_at(gun_u, threshold)),
            "fp_rate_hard_negatives_urban": _r(metrics.rate_at(hard_u, threshold)),
            "fp_rate_all_negatives_urban": _r(metrics.rate_at(neg_u, threshold)),
            "recall_forest": _r(metrics.rate_at(gun_f, threshold)),
            "per_label": per_label,
        },
        "files": {
            "urban_gunshot": len(gun_u),
            "urban_negative": len(neg_u),
            "urban_hard_negative": len(hard_u),
            "forest_gunshot": len(gun_f),
            "forest_negative": len(neg_f),
        },
    }


_HEADLINE = (
    "auc_gunshot_vs_all_urban",
    "auc_gunshot_vs_hard_negatives_urban",
    "auc_forest_gunshot_vs_forest_negatives",
    "recall_at_hard_fpr",
)


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


# --------------------------------------------------------------------------- metadata


def metadata(
    *,
    blob_sha: str,
    items: list[Item],
    train: list[Item],
    val: list[Item],
    val_groups: Sequence[str],
    split_method: str,
    manifest_sha: str,
    gate: GateParams,
    recipe: Recipe,
    seed: int,
    split_seed: int,
    ensemble: int,
    member_metrics: list[dict[str, Any]],
    mining: dict[str, Any] | None,
    steps: int,
    n_params: int,
    n_patches: dict[str, int],
    result: dict[str, Any],
    train_seconds: float,
    fe: FrontEndParams,
    aug: AugmentParams,
) -> dict[str, Any]:
    val_gun_groups = sorted({i.group for i in val if i.is_gunshot and i.urban})
    return {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "output": "logit",
        "class_names": ["gunshot"],
        "input_shape": [1, fe.n_frames, fe.n_mels, 1],
        "sample_rate": fe.sample_rate,
        "front_end": fe.to_dict(),
        "gate": asdict(gate),
        "threshold": result["threshold"],
        "tflite_sha256": blob_sha,
        "quantization": "full int8 (PTQ, representative real patches), float32 input and output",
        "architecture": {
            "type": recipe.arch if ensemble == 1 else f"{recipe.arch}-ensemble",
            "widths": list(recipe.widths),
            "params": n_params,
            "members": ensemble,
            "combine": "single network" if ensemble == 1 else "mean of the members' logits (Keras Average layer)",
        },
        "training_data": {
            "manifest_sha256": manifest_sha,
            "files": counts(items),
            "train_files": counts(train),
            "val_files": counts(val),
            "train_patches": n_patches,
            "licences": licence_summary(items),
            "licence_note": (
                "Several sources are CC BY-NC 3.0 (UrbanSound8K, ESC-50) or research-use only / unverified "
                "(DCASE2016, Belize forest, glass sets, AudioSet-derived fireworks): the weights inherit "
                "these non-commercial / research-only restrictions."
            ),
        },
        "split": {
            "seed": split_seed,
            "method": split_method,
            "val_fraction": 0.2,
            "val_groups": list(val_groups),
            "val_urban_gunshot_groups": len(val_gun_groups),
            "val_urban_gunshot_files": sum(1 for i in val if i.is_gunshot and i.urban),
        },
        "metrics": result,
        "training": {
            "epochs": recipe.epochs,
            "steps": steps,
            "batch": recipe.batch,
            "learning_rate": recipe.learning_rate,
            "augmentation": asdict(aug),
            "recipe": {k: v for k, v in asdict(recipe).items() if k not in {"widths"}},
            "ensemble_members": ensemble,
            "member_seeds": [seed + k for k in range(ensemble)],
            "steps_per_member": steps,
            "member_metrics_float": member_metrics,
            "hard_negative_mining": mining,
        },
        "seed": seed,
        "train_seconds": round(train_seconds, 1),
    }


# --------------------------------------------------------------------------- main


def _representative(x: FloatArray, y: npt.NDArray[np.float32], n: int, seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y > 0.5), np.flatnonzero(y <= 0.5)
    take = [rng.choice(idx, size=min(len(idx), n // 2), replace=False) for idx in (pos, neg) if len(idx)]
    return x[np.concatenate(take)] if take else x[:n]


def distilled_targets(
    y: npt.NDArray[np.float32], examples: Examples, train: list[Item], args: argparse.Namespace, recipe: Recipe
) -> tuple[npt.NDArray[np.float32], dict[str, Any] | None]:
    """Each patch's training target: its label, or with ``--teacher`` the label mixed with the teacher's score.

    Per-file features (``python -m tools.teacher --out``) give every patch its file's score; per-window features
    (``--windows``) give each patch the score of the clean candidate it shows (:attr:`Examples.origin`), and
    patches of ambience impulses keep their label. Either way the probe scoring a file never saw its group."""
    if args.teacher is None:
        return y, None
    from tools import teacher

    paths, guns = [i.path for i in train], [i.is_gunshot for i in train]
    fold = teacher.random_folds([i.group for i in train], seed=args.seed)
    try:
        windows = teacher.read_window_features(args.teacher)
        if windows is None:
            by_file = teacher.cross_fitted_scores(teacher.read_features(args.teacher), paths, guns, fold)
            score, have = np.array([by_file[s] for s in examples.source]), np.ones(len(y), dtype=bool)
        else:
            within = [recipe.shot_within_db(i) for i in train]
            by_window = teacher.cross_fitted_window_scores(windows, paths, guns, within, fold)
            have = teacher.window_rows(windows, examples.source, examples.origin) >= 0
            patches = zip(examples.source, examples.origin, have, strict=True)
            score = np.array([by_window[(s, o)] if h else 0.0 for s, o, h in patches])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"teacher features {args.teacher}: {exc}") from exc
    a = args.teacher_weight
    targets = np.where(have, (1 - a) * y + a * score, y).astype(np.float32)
    info = {
        "features": args.teacher.name,
        "features_sha256": file_sha256(args.teacher),
        "per": "file" if windows is None else "window",
        "weight": a,
        "patches_distilled": int(have.sum()),
        "cross_fitted_patch_auc": _r(metrics.auc(score[have & (y > 0.5)], score[have & (y <= 0.5)])),
    }
    log.info("teacher: %s", info)
    return targets, info


def teacher_head_targets(
    examples: Examples, train: list[Item], args: argparse.Namespace
) -> tuple[distil.AuxTargets, dict[str, Any]]:
    """``--teacher-aux``: each patch's target for the training-only teacher head (:mod:`tools.distil`)."""
    from tools import teacher

    try:
        windows = teacher.read_window_features(args.teacher)
        if windows is None:
            raise ValueError("--teacher-aux needs per-window features (python -m tools.teacher --windows)")
        aux = distil.aux_targets(windows, [i.path for i in train], examples.source, examples.origin, args.teacher_aux)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"teacher features {args.teacher}: {exc}") from exc
    info = {
        "features": args.teacher.name,
        "features_sha256": file_sha256(args.teacher),
        "per": "window",
        "mode": "auxiliary head",
        "components": args.teacher_aux,
        "explained_variance": round(aux.explained, 4),
        "weight": args.aux_weight,
        "patches_distilled": int(aux.have.sum()),
    }
    log.info("teacher head: %s", info)
    return aux, info


def without_sources(items: list[Item], excluded: Sequence[str]) -> list[Item]:
    """``items`` without the files of the ``excluded`` sources; an unknown source is an error (a typo would
    otherwise train on everything)."""
    sources, leave_out = {i.source for i in items}, set(excluded)
    if unknown := sorted(leave_out - sources):
        known = ", ".join(sorted(sources))
        raise DataError(f"--exclude-source {', '.join(unknown)}: no such source in the manifest (sources: {known})")
    return [i for i in items if i.source not in leave_out]


def fewer_urban_gunshots(items: list[Item], share: float, draw: int | None = None) -> list[Item]:
    """``items`` with only ``share`` of their urban gunshot groups (at least one). Groups are ranked by a hash of
    their name, not by a seed, so a smaller share keeps a subset of a larger one's; with ``draw``, a seeded random
    choice instead (another draw, another subset)."""
    shots = sorted({i.group for i in items if i.urban and i.is_gunshot})
    n = max(1, round(share * len(shots)))
    if draw is None:
        kept = set(sorted(shots, key=lambda g: hashlib.sha256(g.encode()).digest())[:n])
    else:
        kept = set(random.Random(draw).sample(shots, n))
    return [i for i in items if not (i.urban and i.is_gunshot) or i.group in kept]


def with_added(items: list[Item], folders: Sequence[Path]) -> tuple[list[Item], list[dict[str, Any]]]:
    """``items`` and every row of each folder's manifest, its path made absolute (the training code joins paths
    to ``--data``, and an absolute path survives that); plus what each folder added, for the metadata."""
    added, described = list(items), []
    for folder in folders:
        rows = read_manifest(folder)
        added += [replace(i, path=str((folder / i.path).resolve())) for i in rows]
        sha = file_sha256(manifest_path(folder))
        described.append({"folder": str(folder), "manifest_sha256": sha, "files": counts(rows)})
    return added, described


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe (``--quick``'s or the default) with the options given on the command line."""
    base = QUICK if args.quick else Recipe()
    given = {
        "epochs": args.epochs,
        "arch": args.arch,
        "widths": args.widths or (ARCHITECTURES[args.arch] if args.arch else None),
        "weighted_as_hard": args.weight_as_hard,
        "street_irs": args.street_irs,
        "p_burst": args.bursts,
        "p_truncate": args.truncate,
        "p_thump": args.thump,
        "p_eq": args.eq,
        "eq_high_db": args.eq_high_db,
        "jitter_s": None if args.jitter is None else args.jitter / 1000.0,
        "p_channel": args.channel,
        "channel_clip_share": args.channel_clip_share,
        "p_far": args.far,
        "band_norm": args.band_norm or None,
        "gun_aug": args.copies[0] if args.copies else None,
        "hard_aug": args.copies[1] if args.copies else None,
        "shares": {**base.shares, **dict(args.share)} if args.share else None,
    }
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def run(args: argparse.Namespace, val_groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Train and export one model; validation on ``val_groups`` (default: ``--all-groups`` or the seeded split)."""
    started = time.monotonic()
    items, added = with_added(without_sources(read_manifest(args.data), args.exclude_source), args.add_data)
    recipe = recipe_from_args(args)
    fe, gate = front_end_from_args(args), gate_from_args(args)
    split_seed = args.seed if args.split_seed is None else args.split_seed
    split_method = "groups chosen by the caller (tools.kfold: one fold held out)"
    if val_groups is None and getattr(args, "all_groups", False):
        val_groups, split_method = [], "none: trained on every group (validation is tools.kfold's cross-validation)"
    elif val_groups is None:
        val_groups, split_method = split_groups(items, split_seed), SPLIT_METHOD
    val_set = set(val_groups)
    train = [i for i in items if i.group not in val_set]
    if args.urban_gunshot_share is not None:
        train = fewer_urban_gunshots(train, args.urban_gunshot_share)
    val = [i for i in items if i.group in val_set]
    log.info("%d files: %d train, %d validation (%d groups)", len(items), len(train), len(val), len(val_groups))

    bank = street_bank(recipe.street_irs, args.seed)
    aug = AugmentParams(
        p_end_after_event=recipe.p_truncate,
        p_thump=recipe.p_thump,
        p_eq=recipe.p_eq,
        high_shelf_db=recipe.eq_high_db,
        p_channel=recipe.p_channel,
        channel_clip_share=recipe.channel_clip_share,
        p_far=recipe.p_far,
    )
    ctx = Context(args.data, recipe, gate, aug, load_ambience(train, args.data), bank, fe)
    examples = training_examples(train, ctx, args.seed, args.workers)
    x, y = examples.arrays(fe)
    if len(x) == 0 or y.min() == y.max():
        raise DataError("training data yields no gunshot or no negative windows; check the manifest labels")
    w = sample_weights(examples.category, examples.label, recipe.shares)
    n_patches = {c: int(sum(1 for k in examples.category if k == c)) for c in sorted(set(examples.category))}
    log.info("training patches: %s (positives %d)", n_patches, int(y.sum()))
    val_patches = validation_patches(val, args.data, gate, fe, args.workers)
    aux: distil.AuxTargets | None = None
    teacher: dict[str, Any] | None
    if args.teacher_aux:
        targets, (aux, teacher) = y, teacher_head_targets(examples, train, args)
    else:
        targets, teacher = distilled_targets(y, examples, train, args, recipe)

    mining: dict[str, Any] | None = None
    if args.mine_hard_negatives > 0:
        seed_everything(args.seed, args.threads)
        first = build_model(fe, recipe.arch, recipe.widths, band_norm=recipe.band_norm)
        first_steps = fit(first, x, targets, w, recipe, recipe.epochs, args.mine_steps or args.max_steps, args.seed)
        first_res = evaluate(val, file_scores(val_patches, functools.partial(keras_logits, first))) if val else {}
        scores = keras_logits(first, x)
        w, mined = mine_hard_negatives(scores, y, w, args.mine_hard_negatives, args.mine_weight)
        per_label: dict[str, int] = defaultdict(int)
        for lab in np.asarray(examples.label)[mined]:
            per_label[str(lab)] += 1
        mining = {
            "fraction": args.mine_hard_negatives,
            "weight": args.mine_weight,
            "first_pass_seed": args.seed,
            "first_pass_steps": first_steps,
            "mined_patches": int(mined.sum()),
            "min_mined_probability": round(float(sigmoid(scores[mined]).min()), 4) if mined.any() else None,
            "mined_per_label": dict(sorted(per_label.items(), key=lambda kv: -kv[1])),
            "first_pass_metrics_float": {k: first_res[k] for k in _HEADLINE if k in first_res},
        }
        log.info("hard-negative mining: %s", mining)
        del first

    members, member_metrics, steps = [], [], 0
    for k in range(max(1, args.ensemble)):
        member_seed = args.seed + k
        seed_everything(member_seed, args.threads)
        prefix = f"m{k}_" if args.ensemble > 1 else ""
        member = build_model(fe, recipe.arch, recipe.widths, prefix, band_norm=recipe.band_norm)
        if aux is None:
            steps = fit(member, x, targets, w, recipe, recipe.epochs, args.max_steps, member_seed)
        else:
            trainer = distil.with_aux_head(member, args.teacher_aux)
            loss = distil.loss(recipe.label_smoothing, args.aux_weight)
            steps = fit(trainer, x, aux.packed(targets), w, recipe, recipe.epochs, args.max_steps, member_seed, loss)
        members.append(member)
        if args.ensemble > 1 and val:
            res = evaluate(val, file_scores(val_patches, functools.partial(keras_logits, member)))
            member_metrics.append({"seed": member_seed, **{k2: res[k2] for k2 in _HEADLINE}})
            log.info("member %d (seed %d, float): %s", k, member_seed, member_metrics[-1])
    model = build_ensemble(fe, members)

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / f"{args.name}.tflite"
    blob = export_tflite(model, _representative(x, y, 400, args.seed), model_path)
    if val:
        result = evaluate(val, file_scores(val_patches, TfliteLogits(model_path)))
    else:
        result = {"threshold": args.threshold, "note": "trained on every group: no validation of its own"}
    meta = metadata(
        blob_sha=hashlib.sha256(blob).hexdigest(),
        items=items,
        train=train,
        val=val,
        val_groups=val_groups,
        split_method=split_method,
        manifest_sha=file_sha256(manifest_path(args.data)),
        gate=gate,
        recipe=recipe,
        seed=args.seed,
        split_seed=split_seed,
        ensemble=max(1, args.ensemble),
        member_metrics=member_metrics,
        mining=mining,
        steps=steps,
        n_params=int(model.count_params()),
        n_patches=n_patches,
        result=result,
        train_seconds=time.monotonic() - started,
        fe=fe,
        aug=aug,
    )
    if teacher:
        meta["teacher"] = teacher
    if args.exclude_source:
        meta["training_data"]["excluded_sources"] = sorted(set(args.exclude_source))
    if added:
        meta["training_data"]["added"] = added
    if args.urban_gunshot_share is not None:
        kept = sorted({i.group for i in train if i.urban and i.is_gunshot})
        meta["training_data"]["urban_gunshot_share"] = {"share": args.urban_gunshot_share, "groups": kept}
    model_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _summary(meta: dict[str, Any], model_path: Path) -> str:
    m = meta["metrics"]
    if "auc_gunshot_vs_all_urban" not in m:
        return f"model {model_path}, threshold {m['threshold']}, trained on every group (no validation)"
    lines = [
        f"model {model_path} ({model_path.stat().st_size / 1024:.1f} KB, {meta['architecture']['params']} params), "
        f"{meta['train_seconds']:.0f} s",
        f"validation: {meta['split']['val_urban_gunshot_files']} urban gunshot files in "
        f"{meta['split']['val_urban_gunshot_groups']} groups",
        f"AUC urban gunshot vs all {m['auc_gunshot_vs_all_urban']}, vs hard negatives "
        f"{m['auc_gunshot_vs_hard_negatives_urban']}, forest {m['auc_forest_gunshot_vs_forest_negatives']}",
        f"recall at hard-negative FPR {m['recall_at_hard_fpr']}",
        f"threshold {m['threshold']}: {m['at_threshold']['recall_urban']} recall, "
        f"{m['at_threshold']['fp_rate_hard_negatives_urban']} FP on hard negatives",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return exit_status(lambda: print(_summary(run(args), args.out / f"{args.name}.tflite")))


if __name__ == "__main__":
    sys.exit(main())
