"""A teacher for distillation: a linear probe on two large AudioSet peers' class scores.

Step 1 runs under the peers' venv (it needs their runtimes) and writes one feature vector per manifest file:
YAMNet's 521 and EfficientAT mn04's 527 AudioSet class scores, each the maximum over the file's windows::

    cd polewatch && /tmp/peers-venv/bin/python -m tools.teacher --data ../shared/data/audio \
        --peers-dir ../shared/peers --out /tmp/teacher.npz

With ``--windows`` it writes one feature vector per gate candidate instead (the onsets training cuts its patches
at), the two peers' scores of a patch starting 0.1 s before the onset: ~11,000 windows, about 1.5 min.

Step 2 happens inside ``tools.train --teacher FILE``: :func:`cross_fitted_scores` fits an L2 logistic regression on
the training groups' features and scores each training file with a probe that never saw that file's group. With
per-window features :func:`cross_fitted_window_scores` does the same for each candidate window, a gunshot file's
shots (its loud candidates) being the positives. ``python -m tools.teacher --data DIR --cv FILE`` reports the
probe's own cross-validation over ``tools.kfold``'s folds. Both peers are permissively licensed (YAMNet
Apache-2.0, EfficientAT MIT); their code and weights stay in the peers folder and are loaded from there at run
time, never copied here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

YAMNET_WINDOW, YAMNET_HOP = 15_600, 7_680
"""YAMNet's own patch (0.975 s) and hop (0.48 s) at 16 kHz."""
EAT_RATE, EAT_WINDOW, EAT_HOP = 32_000, 64_000, 32_000
"""EfficientAT's rate and the peers runner's default 2 s window, 1 s hop."""
WINDOW_PRE_S, WINDOW_S = 0.1, 1.0
"""Per-window teacher (``--windows``): each gate candidate's patch starts WINDOW_PRE_S before its onset, as the
unit's classifier window does, and runs about WINDOW_S (YAMNet's own 0.975 s patch; EfficientAT WINDOW_S)."""
PEER_MODELS = ("models/yamnet/yamnet.tflite", "models/efficientat/mn04_as.onnx")


def _peer(peers_dir: Path, module: str) -> Any:
    sys.path.insert(0, str(peers_dir))
    return importlib.import_module(module)


def _yamnet_scores(peers_dir: Path) -> Any:
    """``scores(path, starts)``: YAMNet's class scores of one patch at each start (seconds), or with no starts the
    maximum over the file's own patches."""
    pc = _peer(peers_dir, "peers_common")
    interp, _backend = pc.tflite_interpreter(str(peers_dir / PEER_MODELS[0]), 1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def patch(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = np.pad(x, (0, max(0, YAMNET_WINDOW - len(x))))[:YAMNET_WINDOW]
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(np.float32))
        interp.invoke()
        return np.asarray(interp.get_tensor(out["index"]).reshape(-1).copy(), np.float32)

    def scores(path: Path, starts: Sequence[float] | None = None) -> npt.NDArray[np.float32]:
        x, _sr = pc.load_audio(str(path), 16_000)
        if starts is not None:
            return np.array([patch(x[round(s * 16_000) :]) for s in starts], np.float32).reshape(len(starts), -1)
        n = max(len(x), YAMNET_WINDOW)
        return np.max([patch(x[s:]) for s in range(0, n - YAMNET_WINDOW + 1, YAMNET_HOP)], axis=0)

    return scores


def _efficientat_scores(peers_dir: Path, window_s: float = WINDOW_S) -> Any:
    """``scores(path, starts)``: EfficientAT's class scores of a ``window_s`` patch at each start (seconds), or
    with no starts the maximum over the peers runner's 2 s windows."""
    import onnxruntime as ort

    pc, eat = _peer(peers_dir, "peers_common"), _peer(peers_dir, "run_efficientat")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(peers_dir / PEER_MODELS[1]), options)
    name = session.get_inputs()[0].name

    def patch(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(session.run(None, {name: eat.log_mel(x)[None, None]})[0][0], np.float32)

    def scores(path: Path, starts: Sequence[float] | None = None) -> npt.NDArray[np.float32]:
        x, _sr = pc.load_audio(str(path), EAT_RATE)
        if starts is not None:
            n = round(window_s * EAT_RATE)
            cut = [x[round(s * EAT_RATE) :][:n] for s in starts]
            return np.array([patch(np.pad(c, (0, n - len(c)))) for c in cut], np.float32).reshape(len(starts), -1)
        windows = pc.windows(x, EAT_WINDOW, EAT_HOP, min_last=EAT_RATE // 4)
        return np.max([patch(w) for _start, w in windows], axis=0)

    return scores


def extract(data: Path, peers_dir: Path, out: Path) -> int:
    from tqdm import tqdm

    from tools.dataset import read_manifest

    items = read_manifest(data)
    yamnet, efficientat = _yamnet_scores(peers_dir), _efficientat_scores(peers_dir)
    features = [
        np.concatenate([yamnet(data / i.path), efficientat(data / i.path)])
        for i in tqdm(items, desc="teacher features", unit="file")
    ]
    np.savez_compressed(out, paths=np.array([i.path for i in items]), features=np.array(features, np.float32))
    print(f"wrote {out}: {len(items)} files x {len(features[0])} class scores")
    return 0


def extract_windows(data: Path, peers_dir: Path, out: Path, window_s: float = WINDOW_S) -> int:
    """One feature vector per clean gate candidate of every manifest file (the onsets training cuts patches at),
    with the candidate's block level so the probe can tell a file's shots from its quieter impulses. EfficientAT
    sees ``window_s`` from WINDOW_PRE_S before the onset; YAMNet always its own 0.975 s patch."""
    from tqdm import tqdm

    from edge.dsp.onset import GateParams
    from tools.augment import SR
    from tools.dataset import DataError, gate_candidates, load_audio, read_manifest

    items, gate = read_manifest(data), GateParams()
    yamnet, efficientat = _yamnet_scores(peers_dir), _efficientat_scores(peers_dir, window_s)
    paths: list[str] = []
    onsets: list[int] = []
    dbfs: list[float] = []
    features: list[npt.NDArray[np.float32]] = []
    for item in tqdm(items, desc="teacher windows", unit="file"):
        cands = gate_candidates(load_audio(data / item.path), gate)
        if not cands:
            continue
        starts = [max(0.0, c.onset / SR - WINDOW_PRE_S) for c in cands]
        rows = np.concatenate([yamnet(data / item.path, starts), efficientat(data / item.path, starts)], axis=1)
        paths += [item.path] * len(cands)
        onsets += [c.onset for c in cands]
        dbfs += [c.block_dbfs for c in cands]
        features += list(rows)
    if not features:
        raise DataError(f"the onset gate found no candidate in any of the {len(items)} files: nothing to score")
    np.savez_compressed(
        out,
        paths=np.array(paths),
        onsets=np.array(onsets, np.int64),
        block_dbfs=np.array(dbfs, np.float32),
        features=np.array(features, np.float32),
    )
    print(f"wrote {out}: {len(features)} candidate windows of {len(items)} files x {features[0].size} class scores")
    return 0


# --------------------------------------------------------------------------- the probe (runs in the project's venv)


def read_features(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    with np.load(path) as f:
        return dict(zip((str(p) for p in f["paths"]), f["features"], strict=True))


@dataclass(frozen=True)
class WindowFeatures:
    """``--windows`` output: one row per clean gate candidate."""

    paths: npt.NDArray[np.str_]
    onsets: npt.NDArray[np.int64]
    block_dbfs: npt.NDArray[np.float32]
    features: npt.NDArray[np.float32]


def window_rows(windows: WindowFeatures, sources: Sequence[str], origins: Sequence[int]) -> npt.NDArray[np.int64]:
    """Each training patch's row in ``windows``, by the file and clean onset it shows (``Examples.origin``); -1
    for patches of ambience impulses (origin -1). A patch whose window is missing is an error."""
    row = {(str(p), int(o)): k for k, (p, o) in enumerate(zip(windows.paths, windows.onsets, strict=True))}
    out = np.full(len(sources), -1, dtype=np.int64)
    for k, (source, origin) in enumerate(zip(sources, origins, strict=True)):
        if origin >= 0:
            if (source, origin) not in row:
                raise KeyError(f"no teacher window at onset {origin} of {source} (other gate settings?)")
            out[k] = row[(source, origin)]
    return out


def read_window_features(path: Path) -> WindowFeatures | None:
    """The per-window features in ``path``, or None when it holds per-file features."""
    with np.load(path) as f:
        if "onsets" not in f.files:
            return None
        return WindowFeatures(f["paths"].astype(str), f["onsets"], f["block_dbfs"], f["features"])


def score_logits(p: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    q = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def fit_probe(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], l2: float = 0.3, steps: int = 400) -> Any:
    """Class-balanced L2 logistic regression on standardised features (Adam, full batch); returns logit(x)."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mu) / sd
    w = np.where(y > 0.5, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9)) / len(y)
    theta = np.zeros(z.shape[1] + 1)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(z @ theta[:-1] + theta[-1])))
        grad = np.append(z.T @ (w * (p - y)) + l2 * theta[:-1] / len(y), np.sum(w * (p - y)))
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
        theta -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return lambda x_new: ((x_new - mu) / sd) @ theta[:-1] + theta[-1]


def random_folds(groups: Sequence[str], folds: int = 5, seed: int = 0) -> npt.NDArray[np.int64]:
    """Each file's fold: its group's, groups dealt to folds by a seeded permutation."""
    names = sorted(set(groups))
    fold_of = dict(zip(names, np.random.default_rng(seed).permutation(len(names)) % folds, strict=True))
    return np.array([fold_of[g] for g in groups], dtype=np.int64)


def cross_fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], fold: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Each row's probe logit, from a probe fitted on the rows of every other fold."""
    out = np.zeros(len(y))
    for held_fold in np.unique(fold):
        held = fold == held_fold
        if (~held).any():
            out[held] = fit_probe(x[~held], y[~held])(x[held])
    return out


def cross_fitted_scores(
    features: dict[str, npt.NDArray[np.float32]],
    paths: Sequence[str],
    labels: Sequence[bool],
    fold: Sequence[int] | npt.NDArray[np.int64],
) -> dict[str, float]:
    """Teacher probability for each file from a probe fitted on the files of every other fold."""
    missing = [p for p in paths if p not in features]
    if missing:
        raise KeyError(f"the teacher features have no entry for {len(missing)} file(s), e.g. {missing[0]}")
    x = score_logits(np.array([features[p] for p in paths]))
    y = np.array(labels, dtype=np.float64)
    k = np.asarray(fold)
    out = cross_fit(x, y, k)
    return {p: float(1 / (1 + np.exp(-s))) for p, s in zip(paths, out, strict=True)}


def cross_fitted_window_scores(
    windows: WindowFeatures,
    paths: Sequence[str],
    labels: Sequence[bool],
    within_db: Sequence[float],
    fold: Sequence[int] | npt.NDArray[np.int64],
) -> dict[tuple[str, int], float]:
    """Teacher probability for each candidate window of ``paths``, from a probe fitted on the windows of every
    other fold. A window is a gunshot when its file is one and its block is within ``within_db`` of the file's
    loudest (the rule that picks training's gunshot patches); every other window is a negative."""
    index = {p: k for k, p in enumerate(paths)}
    rows = np.array([p in index for p in windows.paths])
    if not rows.any():
        raise KeyError("the teacher windows hold none of the training files")
    file_of = np.array([index[p] for p in windows.paths[rows]])
    dbfs = windows.block_dbfs[rows]
    top = np.full(len(paths), -np.inf)
    np.maximum.at(top, file_of, dbfs)
    y = (np.asarray(labels)[file_of] & (dbfs >= top[file_of] - np.asarray(within_db)[file_of])).astype(np.float64)
    x = score_logits(windows.features[rows])
    k = np.asarray(fold)[file_of]
    out = cross_fit(x, y, k)
    keys = zip(windows.paths[rows], windows.onsets[rows], strict=True)
    return {(str(p), int(o)): float(1 / (1 + np.exp(-s))) for (p, o), s in zip(keys, out, strict=True)}


def pooled_file_features(windows: WindowFeatures, paths: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
    """Per-file features from per-window ones: each class score's maximum over the file's candidate windows (all
    zero for a file where the gate found nothing)."""
    index = {p: k for k, p in enumerate(paths)}
    pooled = np.zeros((len(paths), windows.features.shape[1]), np.float32)
    rows = np.array([p in index for p in windows.paths], dtype=bool)
    np.maximum.at(pooled, [index[p] for p in windows.paths[rows]], windows.features[rows])
    return dict(zip(paths, pooled, strict=True))


def cv_report(data: Path, features_path: Path, folds: int, seed: int, pool: bool = False) -> int:
    """The probe's own cross-validation over ``tools.kfold``'s folds, in ``tools.kfold``'s metrics; a file's score
    under per-window features is its highest window's (0 when the gate found nothing in it), or with ``pool`` the
    score of one probe on the file's pooled windows (:func:`pooled_file_features`)."""
    from tools.dataset import fold_groups, read_manifest
    from tools.train import Recipe, evaluate

    items = read_manifest(data)
    fold_of = {g: k for k, groups in enumerate(fold_groups(items, folds, seed)) for g in groups}
    paths, guns, fold = [i.path for i in items], [i.is_gunshot for i in items], [fold_of[i.group] for i in items]
    windows = read_window_features(features_path)
    if windows is None or pool:
        features = read_features(features_path) if windows is None else pooled_file_features(windows, paths)
        scores = cross_fitted_scores(features, paths, guns, fold)
    else:
        within = [Recipe().shot_within_db(i) for i in items]
        scores = dict.fromkeys(paths, 0.0)
        for (path, _onset), score in cross_fitted_window_scores(windows, paths, guns, within, fold).items():
            scores[path] = max(scores[path], score)
    result = evaluate(items, [scores[i.path] for i in items])
    result["at_threshold"].pop("per_label")
    print(json.dumps(result, indent=2))
    return 0


def learning_curve(data: Path, features_path: Path, share: float, draws: int, folds: int, seed: int) -> int:
    """The per-file probe's cross-validation when each fold's training split keeps only ``share`` of its urban
    gunshot recordings (``tools.train.fewer_urban_gunshots``): the hash-ranked subset ``tools.train
    --urban-gunshot-share`` trains on, then ``draws`` seeded random subsets and their mean and spread."""
    from tools.dataset import fold_groups, read_manifest
    from tools.train import evaluate, fewer_urban_gunshots

    items = read_manifest(data)
    fold_of = {g: k for k, groups in enumerate(fold_groups(items, folds, seed)) for g in groups}
    features = read_features(features_path)
    x = score_logits(np.array([features[i.path] for i in items]))
    y = np.array([i.is_gunshot for i in items], dtype=np.float64)
    fold = np.array([fold_of[i.group] for i in items])

    def headline(draw: int | None) -> dict[str, float]:
        logit = np.zeros(len(items))
        for k in range(folds):
            kept = {i.group for i in fewer_urban_gunshots([i for i in items if fold_of[i.group] != k], share, draw)}
            train = np.array([i.group in kept for i in items])
            logit[fold == k] = fit_probe(x[train], y[train])(x[fold == k])
        r = evaluate(items, list(1 / (1 + np.exp(-logit))))
        return {
            "auc_all_urban": r["auc_gunshot_vs_all_urban"],
            "auc_hard_urban": r["auc_gunshot_vs_hard_negatives_urban"],
            "recall_at_2%_hard": r["recall_at_hard_fpr"]["2%"],
            "recall_at_5%_hard": r["recall_at_hard_fpr"]["5%"],
        }

    runs = [headline(d) for d in range(draws)]
    report: dict[str, Any] = {"share": share, "hash_ranked": headline(None), "draws": draws}
    if runs:
        report["mean"] = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in runs[0]}
        report["sd"] = {k: round(float(np.std([r[k] for r in runs])), 4) for k in runs[0]}
    print(json.dumps(report, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.teacher", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.tsv and the audio files")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="extract: feature file to write (.npz); needs --peers-dir")
    mode.add_argument(
        "--cv",
        type=Path,
        metavar="NPZ",
        help="report the probe's cross-validation on these features (per file or window)",
    )
    ap.add_argument("--peers-dir", type=Path, default=None, help="the peers folder (runners and models/)")
    ap.add_argument(
        "--windows", action="store_true", help="extract: one feature vector per gate candidate instead of per file"
    )
    ap.add_argument(
        "--window-s",
        type=float,
        default=WINDOW_S,
        metavar="S",
        help=f"extract with --windows: seconds of audio EfficientAT sees per candidate (default {WINDOW_S:g})",
    )
    ap.add_argument(
        "--pool",
        action="store_true",
        help="--cv on per-window features: one probe per file on each class score's maximum over its windows",
    )
    ap.add_argument(
        "--urban-gunshot-share",
        type=float,
        default=None,
        metavar="P",
        help="--cv on per-file features: a learning curve point; each fold's probe sees only this share (0..1] "
        "of its urban gunshot recordings (tools.train --urban-gunshot-share's subset, then --draws random ones)",
    )
    ap.add_argument("--draws", type=int, default=10, help="--urban-gunshot-share: random subsets (default 10)")
    ap.add_argument("--folds", type=int, default=5, help="--cv: folds, as tools.kfold (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="--cv: fold seed, as tools.kfold (default 0)")
    args = ap.parse_args(argv)
    from tools.dataset import DataError

    try:
        if args.cv and args.urban_gunshot_share is not None:
            if not 0.0 < args.urban_gunshot_share <= 1.0 or args.draws < 0:
                ap.error("--urban-gunshot-share must lie in (0, 1] and --draws be 0 or more")
            return learning_curve(args.data, args.cv, args.urban_gunshot_share, args.draws, args.folds, args.seed)
        if args.cv:
            return cv_report(args.data, args.cv, args.folds, args.seed, args.pool)
        if args.peers_dir is None:
            ap.error("--out needs --peers-dir")
        missing = [m for m in PEER_MODELS if not (args.peers_dir / m).is_file()]
        if missing:
            raise DataError(f"no {missing[0]} under {args.peers_dir}: point --peers-dir at the peers folder")
        if args.windows:
            return extract_windows(args.data, args.peers_dir.resolve(), args.out, args.window_s)
        return extract(args.data, args.peers_dir.resolve(), args.out)
    except ImportError as exc:
        print(f"error: no {exc.name or exc}: run the extraction with the peers' venv python", file=sys.stderr)
        return 2
    except (DataError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
