"""One record's EC57 matrix (O row/column, VF episodes, learning period) and its statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_ecg.config import CLASSES
from edge_ecg.errors import DataError
from edge_ecg.evaluate import MATRIX_LABELS, RecordScore, class_counts, ec57_stats, score_record

L = {c: i for i, c in enumerate(MATRIX_LABELS)}


def cells(matrix) -> dict:
    """Non-zero cells as {"Nn": count, ...} (reference upper case, test lower case)."""
    m = np.asarray(matrix)
    return {MATRIX_LABELS[i] + MATRIX_LABELS[j].lower(): int(m[i, j]) for i, j in zip(*np.nonzero(m))}


def make(**counts) -> np.ndarray:
    """A 6 x 6 matrix from cells named like ``Nv=3`` (reference N labelled V)."""
    m = np.zeros((6, 6), dtype=np.int64)
    for key, value in counts.items():
        m[L[key[0]], L[key[1].upper()]] = value
    return m


# ------------------------------------------------------------------ score_record


def test_labels_and_unmatched_beats_fill_the_matrix():
    score = score_record([1000, 2000, 3000], ["N", "V", "S"], [1010, 2990, 4000], ["N", "N", "S"], fs=360, name="x")
    assert score.name == "x" and score.matrix.shape == (6, 6) and score.matrix.dtype == np.int64
    # 2000 V has no test beat (missed -> column O); 4000 S has no reference beat (row O)
    assert cells(score.matrix) == {"Nn": 1, "Vo": 1, "Sn": 1, "Os": 1}
    assert score.matrix[L["O"], L["O"]] == 0


def test_labels_may_be_indices_letters_or_mitbih_symbols():
    ref = [1000, 2000, 3000, 4000]
    by_letter = score_record(ref, ["N", "S", "V", "Q"], ref, ["N", "S", "V", "Q"], fs=360).matrix
    by_index = score_record(ref, [0, 1, 2, 4], ref, np.array([0, 1, 2, 4]), fs=360).matrix
    by_symbol = score_record(ref, ["L", "A", "E", "/"], ref, ["R", "a", "V", "f"], fs=360).matrix
    assert np.array_equal(by_letter, by_index) and np.array_equal(by_letter, by_symbol)
    assert cells(by_letter) == {"Nn": 1, "Ss": 1, "Vv": 1, "Qq": 1}


@pytest.mark.parametrize("labels, message", [(["N", "X"], "'X'"), ([0, 7], "index 7"), (["N"], "one label per beat")])
def test_bad_labels_are_one_line_errors(labels, message):
    with pytest.raises(DataError, match=message):
        score_record([1000, 2000], ["N", "N"], [1000, 2000], labels, fs=360)


def test_detection_only_scoring_copies_the_reference_class():
    score = score_record([1000, 2000, 3000], ["N", "V", "S"], [1000, 2005, 5000], None, fs=360)
    assert cells(score.matrix) == {"Nn": 1, "Vv": 1, "So": 1, "On": 1}


def test_vf_episodes_are_not_scored():
    # reference beats 2000 V and 2100 V are inside the episode [1900, 2200]
    ref = [1000, 2000, 2100, 2250, 3000]
    ref_lab = ["N", "V", "V", "N", "N"]
    # test 2050 is inside and matches nothing once the episode's beats are removed: not extra;
    # test 2200 is inside but pairs with reference 2250 outside (50 samples): scored, as bxb does;
    # test 4000 is outside and extra
    test = [1000, 2050, 2200, 3000, 4000]
    test_lab = ["N", "V", "N", "N", "N"]
    excluded = np.array([[1900, 2200]])
    score = score_record(ref, ref_lab, test, test_lab, fs=360, excluded=excluded)
    assert cells(score.matrix) == {"Nn": 3, "On": 1}
    assert (score.n_unscored_ref, score.n_unscored_test) == (2, 1)
    # without the exclusion the V beats count: 2000 V-2050 V, 2100 V missed
    plain = score_record(ref, ref_lab, test, test_lab, fs=360)
    assert cells(plain.matrix) == {"Nn": 3, "Vv": 1, "Vo": 1, "On": 1}


def test_bad_excluded_intervals_are_errors():
    with pytest.raises(DataError, match="k, 2"):
        score_record([1], ["N"], [1], ["N"], fs=360, excluded=[1, 2, 3])
    with pytest.raises(DataError, match="ends before"):
        score_record([1], ["N"], [1], ["N"], fs=360, excluded=[[10, 5]])


def test_learning_period_start():
    fs = 100.0  # window 15 samples; start_s=10 -> sample 1000
    ref = [500, 995, 1500, 2000]
    ref_lab = ["N", "V", "S", "N"]
    test = [505, 900, 1005, 1500, 2500]
    test_lab = ["N", "V", "V", "S", "N"]
    score = score_record(ref, ref_lab, test, test_lab, fs=fs, start_s=10.0)
    # 500-505 and 995-1005 pair reference beats of the learning period: not counted, even
    # though 1005 is after the start; 900 is extra but before the start; 2000 missed; 2500 extra
    assert cells(score.matrix) == {"Ss": 1, "No": 1, "On": 1}
    assert (score.n_unscored_ref, score.n_unscored_test) == (2, 3)
    whole = score_record(ref, ref_lab, test, test_lab, fs=fs)
    assert cells(whole.matrix) == {"Nn": 1, "Vv": 1, "Ss": 1, "No": 1, "Ov": 1, "On": 1}
    with pytest.raises(DataError, match="start_s"):
        score_record(ref, ref_lab, test, test_lab, fs=fs, start_s=-1)


def test_record_score_validates_its_matrix():
    with pytest.raises(DataError, match="6 x 6"):
        RecordScore("a", np.zeros((5, 5), dtype=int))
    with pytest.raises(DataError, match="negative"):
        RecordScore("a", -np.ones((6, 6), dtype=int))


# ------------------------------------------------------------------ statistics


def test_veb_fp_excludes_reference_f_and_q_labelled_v():
    m = make(Vv=5, Fv=5, Qv=5, Ff=10, Qq=10)
    s = ec57_stats(m)
    assert s["V"]["fp"] == 0 and s["V"]["ppv"] == 1.0
    # but a reference N, S or extra beat labelled V is a VEB FP
    s = ec57_stats(make(Vv=5, Nv=1, Sv=2, Ov=3, Nn=10))
    assert s["V"]["fp"] == 6 and s["V"]["ppv"] == pytest.approx(5 / 11)


def test_sveb_fp_excludes_reference_q_labelled_s_only():
    s = ec57_stats(make(Ss=5, Qs=7, Qq=1))
    assert s["S"]["fp"] == 0 and s["S"]["ppv"] == 1.0
    s = ec57_stats(make(Ss=5, Ns=1, Vs=2, Fs=3, Os=4))
    assert s["S"]["fp"] == 10 and s["S"]["ppv"] == pytest.approx(5 / 15)


# A hand-checked matrix (rows reference N S V F Q O; columns n s v f q o).
HAND = np.array(
    [
        [100, 2, 5, 1, 0, 3],
        [4, 20, 1, 0, 0, 2],
        [3, 1, 10, 2, 0, 1],
        [1, 3, 3, 6, 0, 0],
        [0, 7, 2, 0, 1, 0],
        [2, 1, 4, 0, 0, 0],
    ]
)


def test_statistics_of_a_hand_checked_matrix():
    s = ec57_stats(HAND)
    # QRS: matched = 5x5 block = 108+25+16+13+10; missed = column O; extra = row O
    assert (s["n_matched"], s["n_ref"], s["n_test"]) == (172, 178, 179)
    assert s["qrs"]["se"] == pytest.approx(172 / 178) and s["qrs"]["ppv"] == pytest.approx(172 / 179)
    # V: TP Vv; FN Vn+Vs+Vf+Vq+Vo; FP Nv+Sv+Ov; TN rows N,S,F,Q,O x columns n,s,f,q
    assert class_counts(HAND, "V") == {"tp": 10, "fn": 3 + 1 + 2 + 0 + 1, "fp": 5 + 1 + 4, "tn": 103 + 24 + 10 + 8 + 3}
    assert s["V"]["se"] == pytest.approx(10 / 17) and s["V"]["ppv"] == pytest.approx(10 / 20)
    assert s["V"]["fpr"] == pytest.approx(10 / (10 + 148)) and s["V"]["f1"] == pytest.approx(20 / 37)
    # S: FP Ns+Vs+Fs+Os (Qs = 7 is not one); TN rows N,V,F,Q,O x columns n,v,f,q
    assert class_counts(HAND, "S") == {"tp": 20, "fn": 4 + 1 + 0 + 0 + 2, "fp": 2 + 1 + 3 + 1, "tn": 106 + 15 + 10 + 3 + 6}
    assert s["S"]["fpr"] == pytest.approx(7 / (7 + 140))
    # N: plain one-vs-rest, extra beats labelled n are FPs
    assert class_counts(HAND, "N") == {"tp": 100, "fn": 11, "fp": 4 + 3 + 1 + 0 + 2, "tn": 21 + 13 + 12 + 10 + 5}
    assert s["N"]["fpr"] == pytest.approx(10 / 71) and s["N"]["n_ref"] == 111
    assert class_counts(HAND, "F") == {"tp": 6, "fn": 7, "fp": 1 + 0 + 2 + 0 + 0, "tn": 107 + 25 + 14 + 10 + 7}
    # accuracy over matched beats; macro-F1 over N, S, V; F1 = harmonic mean of Se and +P
    assert s["accuracy"] == pytest.approx((100 + 20 + 10 + 6 + 1) / 172)
    assert s["macro_f1"] == pytest.approx(np.mean([200 / 221, 40 / 54, 20 / 37]))
    for cls in CLASSES:
        se, ppv = s[cls]["se"], s[cls]["ppv"]
        assert s[cls]["f1"] == pytest.approx(2 * se * ppv / (se + ppv))


def test_undefined_figures_are_nan_and_absent_classes_score_zero_f1():
    s = ec57_stats(np.zeros((6, 6), dtype=int))
    assert math.isnan(s["qrs"]["se"]) and math.isnan(s["V"]["fpr"]) and math.isnan(s["macro_f1"])
    s = ec57_stats(make(Nn=10, Nv=2))
    assert math.isnan(s["V"]["se"])  # no reference V beat
    assert s["V"]["ppv"] == 0.0 and s["V"]["f1"] == 0.0  # two V calls, none right
    assert math.isnan(s["F"]["f1"])  # neither present nor called
    assert s["macro_f1"] == pytest.approx(np.mean([2 * 10 / (2 * 10 + 2), 0.0]))  # N and V; S undefined


# ------------------------------------------------------------------ real data


@pytest.mark.realdata
@pytest.mark.parametrize("record", ["100", "207", "208"])
def test_reference_against_itself_is_perfect(mitdb_dir, record):
    from edge_ecg.records import load_record

    rec = load_record(mitdb_dir, record)
    score = score_record(rec.beat_samples, rec.beat_classes, rec.beat_samples, rec.beat_classes,
                         fs=rec.fs, excluded=rec.excluded, name=record)
    m = score.matrix
    assert np.array_equal(m, np.diag(np.diag(m)))  # the full diagonal, nothing else
    counts = [int(np.sum(rec.beat_classes == c)) for c in CLASSES]
    assert np.diag(m)[:5].tolist() == counts  # no beat of these records lies inside a [ ] episode
    s = score.stats
    assert s["qrs"]["se"] == s["qrs"]["ppv"] == 1.0
    for cls, n in zip(CLASSES, counts):
        if n:
            assert s[cls]["se"] == s[cls]["ppv"] == s[cls]["f1"] == 1.0 and s[cls]["fpr"] == 0.0


@pytest.mark.realdata
def test_scoring_a_whole_record_with_the_5_minute_start(mitdb_dir):
    from edge_ecg.records import load_record

    rec = load_record(mitdb_dir, "119")
    shifted = rec.beat_samples + 20  # 56 ms late: still inside the window
    score = score_record(rec.beat_samples, rec.beat_classes, shifted, rec.beat_classes, fs=rec.fs, start_s=300)
    scored = int(np.sum(rec.beat_samples >= 300 * rec.fs))
    assert score.matrix.sum() == scored and score.n_unscored_ref == len(rec.beat_samples) - scored
    assert score.stats["V"]["se"] == 1.0
    late = score_record(rec.beat_samples, rec.beat_classes, rec.beat_samples + 60, rec.beat_classes, fs=rec.fs)
    assert late.stats["qrs"]["se"] == 0.0  # 167 ms: outside the window
