"""Pairing test beats with reference beats the way PhysioNet's ``bxb`` does (AAMI EC57).

Both beat lists are walked in time order, always looking at the earlier of the current
reference beat ``T`` and the current test beat ``t`` (``t`` first only when strictly
earlier). The two are paired when they are at most ``tolerance_s`` apart (150 ms by
default; 54 samples at 360 Hz, inclusive) and either

- the current pair is closer than the earlier beat is to the *next* beat of the other
  list (so the closer pairing wins), or
- the next reference beat and the next test beat match each other better than that cross
  pairing would (bxb's amendment of 24 November 2002; it only matters when both lists
  have beats less than two windows apart, above about 200 bpm).

Otherwise the earlier beat is left unmatched and the walk moves past it. Each beat is used
at most once and pairs never cross, so both returned index arrays are ascending.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from edge_ecg.errors import ConfigError, DataError

#: The EC57 match window, in seconds.
MATCH_WINDOW_S = 0.15


def tolerance_samples(fs: float, tolerance_s: float = MATCH_WINDOW_S) -> int:
    """The match window in whole samples at ``fs`` Hz, rounded as bxb does (54 at 360 Hz)."""
    fs = float(fs)
    tolerance_s = float(tolerance_s)
    if not math.isfinite(fs) or fs <= 0:
        raise ConfigError(f"sampling rate fs must be a positive number of Hz, got {fs}")
    if not math.isfinite(tolerance_s) or tolerance_s < 0:
        raise ConfigError(f"match tolerance must be >= 0 seconds, got {tolerance_s}")
    return int(math.floor(tolerance_s * fs + 0.5 + 1e-9))


def as_positions(samples, what: str) -> np.ndarray:
    """``samples`` as a 1-D int64 array of sample indices, or a one-line :class:`DataError`."""
    arr = np.asarray(samples)
    if arr.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of sample indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{what} must hold numeric sample indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{what} contains NaN or infinite sample positions")
        arr = np.rint(arr)
    return arr.astype(np.int64, copy=False)


def _walk(ref: list[int], test: list[int], dt: int) -> tuple[list[int], list[int]]:
    """The bxb walk over two ascending position lists; returns paired list indices."""
    inf = math.inf
    n_ref, n_test = len(ref), len(test)
    i = j = 0
    out_ref: list[int] = []
    out_test: list[int] = []
    while i < n_ref and j < n_test:
        ref_now, test_now = ref[i], test[j]
        ref_next = ref[i + 1] if i + 1 < n_ref else inf
        test_next = test[j + 1] if j + 1 < n_test else inf
        if test_now < ref_now:
            gap = ref_now - test_now
            cross = abs(ref_now - test_next)  # this reference beat with the next test beat
            matched = gap <= dt and (gap < cross or abs(ref_next - test_next) < cross)
            if not matched:
                j += 1  # an extra test beat
                continue
        else:
            gap = test_now - ref_now
            cross = abs(test_now - ref_next)  # this test beat with the next reference beat
            matched = gap <= dt and (gap < cross or abs(test_next - ref_next) < cross)
            if not matched:
                i += 1  # a missed reference beat
                continue
        out_ref.append(i)
        out_test.append(j)
        i += 1
        j += 1
    return out_ref, out_test


def match_beats(ref_samples, test_samples, fs: float, tolerance_s: float = MATCH_WINDOW_S):
    """Pair test beats with reference beats by EC57/bxb rules.

    ``ref_samples`` (n,) and ``test_samples`` (m,) are R-peak positions in samples at
    ``fs`` Hz (any order; float positions are rounded). ``tolerance_s`` is the match window
    in seconds (inclusive: 54 samples apart at 360 Hz match, 55 do not).

    Returns ``(ref_idx, test_idx)``: int64 arrays of equal length k, indices into the given
    arrays of the matched pairs, in time order (both ascending when the inputs are sorted).
    Reference beats not in ``ref_idx`` are misses; test beats not in ``test_idx`` are extra
    detections.

    >>> match_beats([100, 400, 700], [110, 480, 1000], fs=360)
    (array([0]), array([0]))
    """
    dt = tolerance_samples(fs, tolerance_s)
    ref = as_positions(ref_samples, "ref_samples")
    test = as_positions(test_samples, "test_samples")
    ref_order = np.argsort(ref, kind="stable")
    test_order = np.argsort(test, kind="stable")
    ri, ti = _walk(ref[ref_order].tolist(), test[test_order].tolist(), dt)
    return (
        ref_order[np.asarray(ri, dtype=np.int64)].astype(np.int64),
        test_order[np.asarray(ti, dtype=np.int64)].astype(np.int64),
    )


class TruthMatcher:
    """Ground truth for a live stream: reference beats as they arrive, and the reference label
    of each detected beat as it is labelled (``edge-ecg stream --simulate`` or ``--replay``).

    :meth:`add` takes a reference beat (its stream sample index and class letter; in time
    order); :meth:`match` returns the class of the reference beat nearest to a detected beat
    at stream sample ``s`` (at ``fs`` Hz) within ``tolerance_s`` seconds (inclusive;
    :data:`MATCH_WINDOW_S` by default, EC57's window), or None. Only the last ``memory``
    reference beats are kept, so memory stays bounded on an endless stream. Unlike
    :func:`match_beats` a reference beat may serve two detections: this is a live view's
    agreement figure, not an EC57 score.
    """

    def __init__(self, tolerance_s: float = MATCH_WINDOW_S, memory: int = 512):
        self.tolerance_s = float(tolerance_s)
        self._truth: deque = deque(maxlen=int(memory))

    def __len__(self) -> int:
        """Reference beats kept (at most ``memory``)."""
        return len(self._truth)

    def add(self, sample: int, label: str) -> None:
        """One reference beat at stream sample ``sample`` with class ``label``."""
        self._truth.append((int(sample), label))

    def match(self, s: int, fs: float) -> str | None:
        """The reference class nearest to stream sample ``s`` within the tolerance, or None."""
        tol = self.tolerance_s * fs
        best, best_d = None, tol + 1
        for ts, label in reversed(self._truth):  # ascending in time: look back from the newest
            d = abs(ts - s)
            if d < best_d:
                best, best_d = label, d
            if ts < s - tol:
                break
        return best if best_d <= tol else None
