"""Class imbalance in training: per-class weights and the order of an epoch's beats (numpy only).

:func:`class_weights` weighs rare classes up; :func:`epoch_order` draws one epoch's beat
indices (a permutation, or balanced sampling with replacement). Both are what
:mod:`edge_ecg.model.train` uses; they touch no TensorFlow, so their tests run in the quick loop.
"""

from __future__ import annotations

import numpy as np

from edge_ecg.config import CLASSES


def class_weights(y: np.ndarray, power: float, cap: float) -> np.ndarray:
    """Per-class weights ``(5,)``: ``min((n_max / n_c) ** power, cap)``, 0 for absent classes,
    scaled so that the mean weight over the beats ``y`` is 1."""
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    w = np.zeros(len(CLASSES))
    present = counts > 0
    w[present] = np.minimum((counts.max() / counts[present]) ** power, cap)
    w /= (w[y]).mean()
    return w


def epoch_order(y: np.ndarray, rng: np.random.Generator, mode: str, weights: np.ndarray,
                scale: np.ndarray | None = None) -> np.ndarray:
    """Indices of one epoch (``len(y)`` of them): a permutation, or for ``balanced_sampling``
    a draw with replacement where beat i has probability proportional to ``weights[y[i]]``
    (times ``scale[i]``, its database's sampling weight, when given)."""
    if mode == "balanced_sampling":
        p = weights[y] if scale is None else weights[y] * scale
        return rng.choice(len(y), size=len(y), replace=True, p=p / p.sum())
    if scale is not None:  # other modes: database weights as sampling probabilities
        return rng.choice(len(y), size=len(y), replace=True, p=scale / scale.sum())
    return rng.permutation(len(y))
