"""S beats inside runs (issue 28): which reference S beats count as "in a run", and the counts."""

import numpy as np
import pytest

from edge_ecg.evaluate import in_run_counts, in_run_mask, s_run_lengths
from edge_ecg.evaluate.runs import add_counts, sensitivity


def _beats(rr_s, classes, fs=100.0):
    samples = np.cumsum(np.round(np.asarray(rr_s) * fs)).astype(np.int64)
    return samples, np.asarray(classes)


def test_run_lengths_of_s_beats():
    classes = list("NSNSSNSSSSSSSSSSSN")
    lengths = s_run_lengths(classes)
    assert lengths.tolist() == [0, 1, 0, 2, 2, 0] + [11] * 11 + [0]


def test_only_s_beats_after_an_early_beat_are_in_a_run():
    # sinus at 1.0 s; an isolated APC (0.6 s); later a run of three APCs at 0.5 s
    rr = [1.0] * 12 + [0.6, 1.3] + [1.0] * 10 + [0.5, 0.5, 0.5, 1.4] + [1.0] * 5
    classes = ["N"] * 12 + ["S", "N"] + ["N"] * 10 + ["S", "S", "S", "N"] + ["N"] * 5
    samples, classes = _beats(rr, classes)
    mask = in_run_mask(samples, classes, 100.0)
    s_idx = np.flatnonzero(classes == "S")
    # the isolated APC and the first of the run follow a normal interval; the 2nd and 3rd of the run do not
    assert mask[s_idx].tolist() == [False, False, True, True]
    assert not mask[classes != "S"].any()


def test_counts_by_kind_and_sum():
    rr = [1.0] * 12 + [0.5] * 4 + [1.4] + [1.0] * 5
    classes = ["N"] * 12 + ["S"] * 4 + ["N"] * 6
    samples, classes = _beats(rr, classes)
    labels = np.where(classes == "S", "S", "N")
    labels[14] = "N"  # one in-run S beat missed
    c = in_run_counts(samples, classes, labels, 100.0)
    assert c["in_run"] == [3, 2] and c["not_in_run"] == [1, 1]
    assert c["run_2_9"] == [4, 3] and c["alone"] == [0, 0] and c["run_10_plus"] == [0, 0]
    total = add_counts([c, c])
    assert total["in_run"] == [6, 4] and sensitivity(total["in_run"]) == pytest.approx(4 / 6)
    assert sensitivity(total["alone"]) is None
    with pytest.raises(ValueError):
        in_run_counts(samples, classes, labels[:-1], 100.0)
