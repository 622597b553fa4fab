"""Past-only RR-interval features, computed beat by beat as a stream would.

For the beat at R peak ``r_i`` (all times in seconds, from sample indices at ``fs``), each feature
is what :data:`edge_ecg.config.RR_DEFINITIONS` says (the one table, also written into converted
models). ``rr_irregularity`` is about 0.02 in sinus rhythm and 0.2 and more in atrial
fibrillation, where an early beat is no sign of an S beat; ``rr_irregularity_median`` is robust
to a few pauses or early beats, so a slow rhythm broken by runs of APCs stays low (MIT-BIH 232:
about 0.05) where atrial fibrillation stays high.

Nothing after ``r_i`` is used, so a streaming detector has every input by the time it
reports the beat. Ratios to the patient's own running average are what lets an
inter-patient model recognise a premature (S) beat. Missing history (the first beats of a
record, or after :meth:`RRTracker.reset`) falls back: ``pre_rr`` to :data:`DEFAULT_RR_S`,
``prev_rr`` to ``pre_rr``, averages to the intervals available, ``rr_irregularity`` to 0
until two earlier intervals exist.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from edge_ecg.config import DEFAULT_RR_S, LOCAL_BEATS, LONG_WINDOW_S, RR_FEATURES


class RRTracker:
    """Streaming RR features: :meth:`push` each R peak in order, get its feature vector.

    ``fs`` is the rate (Hz) of the sample indices pushed; ``features`` names (and orders)
    the output, a subset of :data:`edge_ecg.config.RR_FEATURES`.
    """

    def __init__(self, fs: float, features: tuple[str, ...] = RR_FEATURES):
        unknown = [f for f in features if f not in RR_FEATURES]
        if unknown:
            raise ValueError(f"unknown RR feature {unknown[0]!r}")
        self.fs = float(fs)
        self.features = tuple(features)
        self._wants_rmssd = "rr_irregularity" in self.features
        self._wants_median = "rr_irregularity_median" in self.features
        self.reset()

    def reset(self) -> None:
        """Forget all history (after a gap in the stream)."""
        self._last: int | None = None
        self._prev_rr: float | None = None
        self._local: deque[float] = deque(maxlen=LOCAL_BEATS)
        self._before: deque[float] = deque(maxlen=LOCAL_BEATS)  # intervals before the current one
        self._long: deque[tuple[float, float]] = deque()  # (time_s, rr_s)
        self._long_sum = 0.0

    def push(self, r_sample: int) -> np.ndarray:
        """Features (float32, shape ``(len(features),)``) of the beat at ``r_sample``."""
        t = r_sample / self.fs
        if self._last is None:
            pre = DEFAULT_RR_S
            prev = DEFAULT_RR_S
            local = DEFAULT_RR_S
            long = DEFAULT_RR_S
            irregularity = robust_irregularity = 0.0
        else:
            pre = (r_sample - self._last) / self.fs
            prev = self._prev_rr if self._prev_rr is not None else pre
            self._local.append(pre)
            self._long.append((t, pre))
            self._long_sum += pre
            while self._long and self._long[0][0] < t - LONG_WINDOW_S:
                self._long_sum -= self._long.popleft()[1]
            local = sum(self._local) / len(self._local)
            long = self._long_sum / len(self._long)
            # the irregularities only when asked for (each beat of a stream pays for what it computes)
            irregularity = _rmssd_ratio(self._before) if self._wants_rmssd else 0.0
            robust_irregularity = _median_abs_diff_ratio(self._before) if self._wants_median else 0.0
            self._before.append(pre)
        if self._last is not None:
            self._prev_rr = pre
        self._last = int(r_sample)
        values = {
            "pre_rr": pre,
            "prev_rr": prev,
            "local_rr": local,
            "pre_rr_ratio": pre / local,
            "prev_rr_ratio": prev / local,
            "pre_rr_long_ratio": pre / long,
            "rr_irregularity": irregularity,
            "rr_irregularity_median": robust_irregularity,
        }
        return np.array([values[f] for f in self.features], dtype=np.float32)


def _rmssd_ratio(intervals) -> float:
    """Root mean square of successive differences over the mean, of RR intervals (s); 0 for < 2."""
    if len(intervals) < 2:
        return 0.0
    rr = list(intervals)
    sq = sum((b - a) ** 2 for a, b in zip(rr[:-1], rr[1:])) / (len(rr) - 1)
    return sq ** 0.5 / (sum(rr) / len(rr))


def _median_abs_diff_ratio(intervals) -> float:
    """Median absolute successive difference over the median, of RR intervals (s); 0 for < 2.

    Plain Python on at most :data:`LOCAL_BEATS` values: the same numbers as ``np.median``
    (the middle value, or the mean of the two middle ones), without numpy's per-call cost."""
    if len(intervals) < 2:
        return 0.0
    rr = list(intervals)
    return _median([abs(b - a) for a, b in zip(rr[:-1], rr[1:])]) / _median(rr)


def _median(values: list[float]) -> float:
    """The median of a short list of floats, as ``np.median`` computes it."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def rr_features(beat_samples: np.ndarray, fs: float, features: tuple[str, ...] = RR_FEATURES) -> np.ndarray:
    """RR features of every beat: ``(n, len(features))`` float32, identical to pushing one by one.

    ``beat_samples`` are R-peak sample indices at ``fs`` Hz, ascending.
    """
    tracker = RRTracker(fs, features)
    out = np.empty((len(beat_samples), len(features)), dtype=np.float32)
    for i, s in enumerate(np.asarray(beat_samples, dtype=np.int64)):
        out[i] = tracker.push(int(s))
    return out


def beats_by_record(record: np.ndarray, sample: np.ndarray):
    """Index arrays into a beat set's arrays, one per record, each in time order: ``record``
    ``(n,)`` record ids, ``sample`` int ``(n,)`` R positions (a beat set need not be sorted)."""
    record, sample = np.asarray(record), np.asarray(sample)
    for name in np.unique(record):
        idx = np.flatnonzero(record == name)
        yield idx[np.argsort(sample[idx], kind="stable")]


#: An S beat whose reference ``prev_rr_ratio`` is below this is "in a run" (the beat before it
#: was early too): :func:`in_run_mask`.
IN_RUN_PREV_RR_RATIO = 0.85


def in_run_mask(beat_samples, beat_classes, fs: float, threshold: float = IN_RUN_PREV_RR_RATIO) -> np.ndarray:
    """Boolean ``(n,)``: the S beats inside runs, those whose ``prev_rr_ratio`` is below ``threshold``.

    ``beat_samples``: one record's reference R peaks (ascending sample indices at ``fs`` Hz);
    ``beat_classes``: their AAMI classes (``"N"``, ``"S"``, ...). Issue 28 scores these beats on
    their own line (:mod:`edge_ecg.evaluate.runs`) and training may weigh them up
    (``train.in_run_weight``)."""
    samples = np.asarray(beat_samples, dtype=np.int64)
    classes = np.asarray(beat_classes)
    if samples.size == 0:
        return np.zeros(0, dtype=bool)
    prev_ratio = rr_features(samples, fs, ("prev_rr_ratio",))[:, 0]
    return (classes == "S") & (prev_ratio < threshold)
