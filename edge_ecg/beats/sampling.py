"""Class imbalance in training: per-class weights and the order of an epoch's beats (numpy only).

:func:`class_weights` weighs rare classes up; :func:`epoch_order` draws one epoch's beat
indices (a permutation, or balanced sampling with replacement); :func:`in_run_beats` finds the
S beats inside runs that ``train.in_run_weight`` draws more often. All are what
:mod:`edge_ecg.model.train` uses; they touch no TensorFlow, so their tests run in the quick loop.
"""

from __future__ import annotations

import numpy as np

from edge_ecg.beats.rr import beats_by_record, in_run_mask
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


def in_run_beats(record: np.ndarray, sample: np.ndarray, y: np.ndarray, fs: float) -> np.ndarray:
    """Boolean ``(n,)``: which beats of a beat set are S beats inside runs
    (:func:`edge_ecg.beats.rr.in_run_mask` on each record's beats, in time order).

    ``record`` ``(n,)`` record ids, ``sample`` int ``(n,)`` R positions at ``fs`` Hz, ``y`` int
    ``(n,)`` indices into :data:`CLASSES` (a BeatSet's or ShardedBeats' arrays: every annotated
    beat of each record, so the intervals are the reference ones)."""
    sample, y = np.asarray(sample, dtype=np.int64), np.asarray(y)
    out = np.zeros(len(y), dtype=bool)
    names = np.asarray(CLASSES)
    for idx in beats_by_record(record, sample):
        out[idx] = in_run_mask(sample[idx], names[y[idx]], fs)
    return out
