"""Feature distillation: a training-only head that predicts a large teacher's view of each patch.

Mixing a teacher's score into the target (``tools.train --teacher``) softens the labels where the teacher is wrong.
Here the label stays the target of the logit; a second head on the same pooled features regresses the first
principal components of the teacher's AudioSet class scores of the clean candidate the patch shows
(``tools.teacher --windows``). The shared layers learn what tells a gunshot from a firework, a door or rain in the
teacher's 1,048 classes; the head is dropped before export, so the unit's model and its cost do not change.

The teacher never saw these recordings' labels, so its features need no cross-fitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tools.teacher import WindowFeatures, score_logits, window_rows


@dataclass(frozen=True)
class AuxTargets:
    values: npt.NDArray[np.float32]
    """(patches, dims): whitened principal components of the teacher's features (0 where there is none)."""
    have: npt.NDArray[np.bool_]
    """Patches that show a clean candidate the teacher scored (ambience impulses do not)."""
    explained: float
    """Share of the training windows' feature variance the components keep."""

    def packed(self, y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One target row per patch for :func:`loss`: label, the components, then 1 where they are known."""
        return np.concatenate([y[:, None], self.values, self.have[:, None]], axis=1).astype(np.float32)


def aux_targets(
    windows: WindowFeatures, train_paths: Sequence[str], sources: Sequence[str], origins: Sequence[int], dims: int
) -> AuxTargets:
    """Each patch's teacher components, by the (file, clean onset) it shows; the components are fitted on the
    training files' windows only."""
    z = score_logits(windows.features)
    fit_rows = np.isin(windows.paths, np.asarray(train_paths))
    if fit_rows.sum() <= dims:
        raise ValueError(f"{int(fit_rows.sum())} teacher windows in the training files, fewer than {dims} components")
    mu, sd = z[fit_rows].mean(axis=0), z[fit_rows].std(axis=0) + 1e-6
    z = (z - mu) / sd
    _u, s, vt = np.linalg.svd(z[fit_rows], full_matrices=False)
    scale = s[:dims] / np.sqrt(fit_rows.sum())
    comps = (z @ vt[:dims].T) / scale
    index = window_rows(windows, sources, origins)
    have = index >= 0
    values = np.where(have[:, None], comps[np.maximum(index, 0)], 0.0).astype(np.float32)
    return AuxTargets(values, have, float((s[:dims] ** 2).sum() / (s**2).sum()))


def with_aux_head(model: Any, dims: int) -> Any:
    """A training model: ``model``'s logit and a linear head of ``dims`` on its pooled features, concatenated."""
    import keras
    from keras import layers

    pooled = next(layer for layer in model.layers if isinstance(layer, layers.GlobalAveragePooling2D))
    aux = layers.Dense(dims, name=f"{model.name}_teacher_head")(pooled.output)
    out = layers.Concatenate(name=f"{model.name}_with_teacher")([model.output, aux])
    return keras.Model(model.input, out, name=f"{model.name}_distil")


def loss(label_smoothing: float, weight: float) -> Any:
    """Binary cross-entropy of the logit (label-smoothed, as the plain recipe) plus ``weight`` times the mean
    squared error of the teacher head where the teacher's view is known."""
    import tensorflow as tf

    def distil_loss(y_true: Any, y_pred: Any) -> Any:
        label = y_true[:, :1] * (1.0 - label_smoothing) + 0.5 * label_smoothing
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=y_pred[:, :1])[:, 0]
        mse = tf.reduce_mean(tf.square(y_true[:, 1:-1] - y_pred[:, 1:]), axis=1)
        return bce + weight * y_true[:, -1] * mse

    return distil_loss
