"""The teacher head's targets (tools.distil): principal components of the teacher's scores, per patch."""

from __future__ import annotations

import numpy as np
import pytest

from tools.distil import aux_targets, loss
from tools.teacher import WindowFeatures


def _windows(n_files: int = 6, per_file: int = 5, classes: int = 12) -> WindowFeatures:
    rng = np.random.default_rng(0)
    paths = np.repeat([f"f{k}.flac" for k in range(n_files)], per_file)
    onsets = np.tile(np.arange(per_file) * 1000, n_files)
    scores = 1 / (1 + np.exp(-rng.standard_normal((len(paths), classes)) * 2))
    return WindowFeatures(paths, onsets.astype(np.int64), np.zeros(len(paths), np.float32), scores.astype(np.float32))


def test_components_are_whitened_on_the_training_files_and_follow_each_patchs_clean_onset() -> None:
    w = _windows()
    train = [f"f{k}.flac" for k in range(4)]
    sources = ["f0.flac", "f0.flac", "f5.flac", "f1.flac"]
    origins = [2000, 2000, 0, -1]  # an augmented copy of f0's third window twice, a held-out file, an ambience impulse
    aux = aux_targets(w, train, sources, origins, dims=3)
    assert aux.have.tolist() == [True, True, True, False]
    assert np.array_equal(aux.values[0], aux.values[1]) and not aux.values[3].any()
    assert 0.0 < aux.explained < 1.0
    every_train_window = aux_targets(
        w,
        train,
        [p for p in w.paths if p in train],
        [int(o) for o, p in zip(w.onsets, w.paths, strict=True) if p in train],
        dims=3,
    )
    assert np.allclose(every_train_window.values.mean(axis=0), 0.0, atol=1e-6)
    assert np.allclose(every_train_window.values.std(axis=0), 1.0, atol=1e-6)


def test_a_patch_whose_window_the_teacher_lacks_is_refused() -> None:
    with pytest.raises(KeyError, match=r"no teacher window at onset 1234 of f0\.flac"):
        aux_targets(_windows(), ["f0.flac", "f1.flac"], ["f0.flac"], [1234], dims=2)


def test_too_few_training_windows_for_the_components_are_refused() -> None:
    with pytest.raises(ValueError, match="fewer than 8 components"):
        aux_targets(_windows(), ["f0.flac"], ["f0.flac"], [0], dims=8)


def test_the_loss_is_the_plain_cross_entropy_where_the_teacher_is_silent() -> None:
    tf = pytest.importorskip("tensorflow")
    y_true = tf.constant([[1.0, 5.0, -5.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    y_pred = tf.constant([[2.0, 0.0, 0.0], [-1.0, 1.0, 3.0]])
    got = loss(label_smoothing=0.0, weight=0.5)(y_true, y_pred).numpy()
    bce = np.log1p(np.exp([-2.0, -1.0]))
    assert got == pytest.approx([bce[0], bce[1] + 0.5 * (0.0 + 4.0) / 2])
