"""Beat sequences for variant (b) models, which see each beat with the beats before it.

A sequence model (``ModelConfig.sequence_beats = K``) takes, per beat, the windows ``(K, L)``
and RR features ``(K, F)`` of the last K beats, oldest first, the beat to classify last.
:func:`sequence_index` builds those rows for a whole beat set at once; :class:`BeatHistory`
builds them beat by beat, as a stream sees beats, and gives the same rows.
Before K beats have been seen (a record's start, or after :meth:`BeatHistory.reset` at a gap
in the stream) the oldest beat available stands in for the missing ones.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def sequence_beats_of(beat_shape) -> int:
    """K of a variant (b) model from its ``beat`` input's shape without the batch axis:
    ``(K, L, 1)`` -> K; a one-window model's ``(L, 1)`` -> 0."""
    return int(beat_shape[0]) if len(beat_shape) == 3 else 0


def sequence_index(record: np.ndarray, k: int) -> np.ndarray:
    """For every beat, the indices of the ``k - 1`` beats before it and itself: int64 ``(n, k)``.

    ``record`` ``(n,)`` names each beat's record; a record's beats must be contiguous and in
    time order (as ``build_beatset`` and ``BeatSet.subset`` keep them). Row ``i`` is
    ``[i - k + 1, ..., i]`` and never reaches into another record.
    """
    record = np.asarray(record)
    n = len(record)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    i = np.arange(n)
    starts = np.ones(n, dtype=bool)
    starts[1:] = record[1:] != record[:-1]
    first = np.maximum.accumulate(np.where(starts, i, 0))  # index of each beat's record start
    idx = i[:, None] + np.arange(1 - k, 1)[None, :]
    return np.maximum(idx, first[:, None]).astype(np.int64)


class BeatHistory:
    """The last ``k`` beats of a stream: :meth:`push` beats in time order, get their sequences.

    ``push(X (n, L), rr (n, F))`` returns ``(n, k, L)`` and ``(n, k, F)`` float32: for each
    pushed beat, the sequence ending with it. :meth:`reset` forgets the history (a new record,
    or a gap in the stream).
    """

    def __init__(self, k: int):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)
        self.reset()

    def reset(self) -> None:
        """Forget every beat seen so far."""
        self._beats: deque = deque(maxlen=self.k)

    def push(self, X: np.ndarray, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sequences ``(n, k, L)``, ``(n, k, F)`` of the beats ``X`` ``(n, L)`` with RR ``rr`` ``(n, F)``."""
        X = np.asarray(X, dtype=np.float32)
        rr = np.asarray(rr, dtype=np.float32)
        seq_x = np.empty((len(X), self.k) + X.shape[1:], dtype=np.float32)
        seq_r = np.empty((len(X), self.k) + rr.shape[1:], dtype=np.float32)
        for i in range(len(X)):
            self._beats.append((X[i], rr[i]))
            held = list(self._beats)
            held = [held[0]] * (self.k - len(held)) + held
            seq_x[i] = np.stack([b[0] for b in held])
            seq_r[i] = np.stack([b[1] for b in held])
        return seq_x, seq_r
