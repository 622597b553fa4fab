"""S beats inside runs: the beats a classifier that reads single beats finds hardest.

An S beat "in a run" follows another early beat: its ``prev_rr_ratio`` (the interval
before the previous beat, over the mean of the last 10 intervals; :mod:`edge_ecg.beats.rr`)
computed from the **reference** beats is below :data:`IN_RUN_PREV_RR_RATIO`
(:func:`edge_ecg.beats.rr.in_run_mask`, where training finds them too). In MIT-BIH
DS2 about half of the S beats are such (record 232's APC runs, SVT), in DS1 one in seven.
Issue 28 scores them on their own line so that a model cannot look good by ignoring them.

:func:`s_run_lengths` gives every reference S beat the length of the run of consecutive S
beats it belongs to (1 = alone), for tables by run length (alone / 2-9 / 10 and more).
All inputs are reference beats of one record: R-peak sample indices at ``fs`` Hz and their
AAMI classes (``"N"``, ``"S"``, ...). Pure numpy.
"""

from __future__ import annotations

import numpy as np

from edge_ecg.beats.rr import IN_RUN_PREV_RR_RATIO, in_run_mask  # defined with the RR features

#: Run-length bands of :func:`in_run_counts` (inclusive lower bounds; the last is open).
RUN_BANDS: tuple[tuple[str, int, int | None], ...] = (("alone", 1, 1), ("run_2_9", 2, 9), ("run_10_plus", 10, None))


def s_run_lengths(beat_classes) -> np.ndarray:
    """Int ``(n,)``: for each S beat, the length of its run of consecutive S beats; 0 for others."""
    is_s = np.asarray(beat_classes) == "S"
    out = np.zeros(is_s.size, dtype=np.int64)
    i = 0
    while i < is_s.size:
        if not is_s[i]:
            i += 1
            continue
        j = i
        while j < is_s.size and is_s[j]:
            j += 1
        out[i:j] = j - i
        i = j
    return out


def in_run_counts(beat_samples, beat_classes, labels, fs: float) -> dict:
    """How many reference S beats of each kind a classifier labelled S, at the reference beats.

    ``labels`` are the classifier's labels of the reference beats (same order and length).
    Returns ``{"in_run": [n, labelled S], "not_in_run": [...], "alone": [...], "run_2_9": [...],
    "run_10_plus": [...]}`` (counts; sensitivity is the second over the first).
    """
    classes = np.asarray(beat_classes)
    called_s = np.asarray(labels) == "S"
    if called_s.size != classes.size:
        raise ValueError(f"{called_s.size} labels for {classes.size} reference beats")
    is_s = classes == "S"
    in_run = in_run_mask(beat_samples, classes, fs)
    lengths = s_run_lengths(classes)
    out = {"in_run": in_run, "not_in_run": is_s & ~in_run}
    for name, lo, hi in RUN_BANDS:
        out[name] = is_s & (lengths >= lo) & (lengths <= (hi if hi is not None else lengths.max(initial=0)))
    return {k: [int(m.sum()), int((m & called_s).sum())] for k, m in out.items()}


def add_counts(counts: list[dict]) -> dict:
    """The sum of several :func:`in_run_counts` results."""
    total: dict = {}
    for c in counts:
        for k, (n, s) in c.items():
            a, b = total.get(k, (0, 0))
            total[k] = [a + n, b + s]
    return total


def sensitivity(pair) -> float | None:
    """``labelled / n`` of one ``[n, labelled]`` count, None when there is no such beat."""
    n, s = pair
    return s / n if n else None
