"""Manifest reading, the group split and gate-driven patch extraction for training.

Every patch comes from the same code the unit runs: :class:`edge.dsp.onset.OnsetGate` finds the candidate onsets,
the classifier window is ``[onset - pre, onset + post)`` (zeros outside the recording) and
:meth:`edge.dsp.logmel.LogMel.patch` turns it into a log-mel patch.
"""

from __future__ import annotations

import csv
import logging
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from edge.dsp.logmel import FloatArray, FrontEndParams, LogMel
from edge.dsp.onset import Candidate, GateParams, OnsetGate
from edge.evaluate.labels import FOREST, GUNSHOT, HARD_NEGATIVES

log = logging.getLogger(__name__)

Int16Array = npt.NDArray[np.int16]

AMBIENCE = ("street", "traffic", "rain", "wind", "background", "indoor_other", "forest_other")
"""Recordings events are mixed into for training (not the evaluation's false-alarm labels: edge.evaluate.labels)."""
MANIFEST = "manifest.tsv"
REQUIRED_COLUMNS = ("path", "label", "group", "source", "duration_s", "license")


class DataError(Exception):
    """The data folder or its manifest is missing or malformed."""


def exit_status(job: Callable[[], object]) -> int:
    """Run a tool's job: 0, or 2 after printing ``error: ...`` when it raises :class:`DataError`."""
    try:
        job()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


@dataclass(frozen=True)
class Item:
    path: str
    label: str
    group: str
    source: str
    duration_s: float
    license: str

    @property
    def urban(self) -> bool:
        return self.source != FOREST

    @property
    def is_gunshot(self) -> bool:
        return self.label == GUNSHOT

    @property
    def is_hard_negative(self) -> bool:
        return self.label in HARD_NEGATIVES


def manifest_path(data_dir: Path) -> Path:
    return data_dir / MANIFEST


def read_manifest(data_dir: Path) -> list[Item]:
    """Rows of ``manifest.tsv``; a path listed twice is kept once (the first row)."""
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} not found (expected ../shared/data/audio with {MANIFEST})")
    manifest = manifest_path(data_dir)
    if not manifest.is_file():
        raise DataError(f"data folder {data_dir} has no {MANIFEST}")
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{manifest} lacks column(s) {', '.join(missing)}")
        rows = list(reader)
    items: dict[str, Item] = {}
    for row in rows:
        if row["path"] in items:
            log.debug("manifest lists %s twice; keeping the first row", row["path"])
            continue
        items[row["path"]] = Item(
            path=row["path"],
            label=row["label"],
            group=row["group"],
            source=row["source"],
            duration_s=float(row["duration_s"] or 0.0),
            license=row["license"],
        )
    if not items:
        raise DataError(f"{manifest} lists no files")
    return list(items.values())


def split_groups(items: Iterable[Item], seed: int, val_fraction: float = 0.2) -> list[str]:
    """Validation groups, stratified by (label, urban/forest): ``val_fraction`` of each stratum's groups.

    A stratum with a single group stays in training. Deterministic for a given manifest and seed.
    """
    strata: dict[tuple[str, bool], set[str]] = defaultdict(set)
    for item in items:
        strata[(item.label, item.urban)].add(item.group)
    rng = random.Random(seed)
    val: set[str] = set()
    for key in sorted(strata):
        groups = sorted(strata[key])
        rng.shuffle(groups)
        n_val = max(1, round(val_fraction * len(groups))) if len(groups) > 1 else 0
        val.update(groups[:n_val])
    return sorted(val)


def fold_groups(items: Iterable[Item], folds: int, seed: int) -> list[list[str]]:
    """``folds`` disjoint lists of groups covering every group, stratified by (label, urban/forest).

    Strata are dealt out smallest first (so the few urban gunshot groups spread evenly), each stratum's groups
    shuffled with ``random.Random(seed)`` and dealt round-robin, starting at the fold that has the fewest of that
    stratum's files so far. A group already dealt through another stratum keeps its fold.
    """
    if folds < 2:
        raise ValueError(f"folds = {folds}: need at least 2")
    items = list(items)
    strata: dict[tuple[str, bool], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in items:
        strata[(item.label, item.urban)][item.group] += 1
    rng = random.Random(seed)
    fold_of: dict[str, int] = {}
    for key in sorted(strata, key=lambda k: (len(strata[k]), k)):
        sizes = strata[key]
        load = [0] * folds
        for group, n in sizes.items():
            if group in fold_of:
                load[fold_of[group]] += n
        groups = sorted(g for g in sizes if g not in fold_of)
        rng.shuffle(groups)
        groups.sort(key=lambda g: -sizes[g])  # big groups first, random order among equals
        for group in groups:
            k = min(range(folds), key=lambda f: (load[f], f))
            fold_of[group] = k
            load[k] += sizes[group]
    return [sorted(g for g, k in fold_of.items() if k == f) for f in range(folds)]


def load_audio(path: Path) -> Int16Array:
    samples, _ = sf.read(str(path), dtype="int16", always_2d=True)
    return np.ascontiguousarray(samples[:, 0])


def gate_candidates(audio: Int16Array, params: GateParams) -> list[Candidate]:
    with np.errstate(divide="ignore", invalid="ignore"):  # digital silence makes the rise infinite
        return OnsetGate(params).process(audio)


def windows(audio: Int16Array, onsets: Iterable[int], fe: FrontEndParams) -> Int16Array:
    """Classifier windows ``[onset - pre, onset + post)``, zeros outside the recording."""
    onsets = list(onsets)
    out = np.zeros((len(onsets), fe.window_samples), dtype=np.int16)
    for row, onset in enumerate(onsets):
        start, stop = onset - fe.pre_samples, onset + fe.post_samples
        lo, hi = max(start, 0), min(stop, len(audio))
        if hi > lo:
            out[row, lo - start : hi - start] = audio[lo:hi]
    return out


def patches_at(audio: Int16Array, onsets: Iterable[int], logmel: LogMel) -> FloatArray:
    return logmel.patches(windows(audio, onsets, logmel.params))


def loud_candidates(cands: list[Candidate], within_db: float) -> list[Candidate]:
    """Candidates whose block energy is within ``within_db`` of the loudest one (the likely shots)."""
    if not cands:
        return []
    top = max(c.block_dbfs for c in cands)
    return [c for c in cands if c.block_dbfs >= top - within_db]


def counts(items: Iterable[Item]) -> dict[str, dict[str, int]]:
    by_label: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    for item in items:
        by_label[item.label] += 1
        by_source[item.source] += 1
    return {"label": dict(sorted(by_label.items())), "source": dict(sorted(by_source.items()))}


def licence_summary(items: Iterable[Item]) -> dict[str, int]:
    """Files per licence statement, most common first."""
    return dict(Counter(item.license for item in items).most_common())
