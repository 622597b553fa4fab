"""Beat matching by EC57/bxb rules: the window edge, closest pairing, the 2002 amendment."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_ecg.errors import ConfigError, DataError
from edge_ecg.evaluate import match_beats, tolerance_samples


def pairs(ref, test, fs=360.0, **kw):
    ri, ti = match_beats(ref, test, fs, **kw)
    return list(zip(ri.tolist(), ti.tolist()))


def test_window_is_54_samples_at_360_hz_and_rounds_half_up():
    assert tolerance_samples(360.0) == 54
    assert tolerance_samples(250.0) == 38  # 37.5 -> 38
    assert tolerance_samples(128.0, 0.1) == 13  # 12.8


@pytest.mark.parametrize("offset", [54, -54])
def test_exactly_at_tolerance_matches(offset):
    assert pairs([1000], [1000 + offset]) == [(0, 0)]


@pytest.mark.parametrize("offset", [55, -55])
def test_one_sample_beyond_tolerance_does_not_match(offset):
    assert pairs([1000], [1000 + offset]) == []


def test_tolerance_argument_is_honoured():
    assert pairs([1000], [1030], tolerance_s=0.05) == []  # 18 samples
    assert pairs([1000], [1018], tolerance_s=0.05) == [(0, 0)]


def test_test_beat_between_two_reference_beats_goes_to_the_closer_one():
    assert pairs([1000, 1060], [1035]) == [(1, 0)]  # 25 from the second, 35 from the first
    assert pairs([1000, 1060], [1025]) == [(0, 0)]
    # a tie is not "closer": bxb leaves the earlier reference beat and pairs the later one
    assert pairs([1000, 1060], [1030]) == [(1, 0)]


def test_coincident_beats_are_handled_by_the_reference_branch():
    # bxb looks at the test beat first only when it is strictly earlier; on equal times the
    # reference branch decides, and a duplicate reference beat takes the tie (cross gap 0)
    assert pairs([100, 100], [100]) == [(1, 0)]
    assert pairs([100], [100, 100]) == [(0, 0)]


def test_reference_beat_between_two_test_beats_goes_to_the_closer_one():
    assert pairs([1035], [1000, 1060]) == [(0, 1)]
    assert pairs([1025], [1000, 1060]) == [(0, 0)]


def test_each_beat_is_used_once():
    # two test beats within the window of one reference beat: only the closer one pairs
    assert pairs([1000], [990, 1005]) == [(0, 1)]
    assert pairs([990, 1005], [1000]) == [(1, 0)]
    ri, ti = match_beats([1000, 1003, 1006], [1001, 1004], 360.0)
    assert len(set(ri.tolist())) == len(ri) and len(set(ti.tolist())) == len(ti) == 2


def test_2002_amendment_reference_earlier():
    # bxb's own example (match window 37 samples): ref 96, 160; test 128, 185.
    # test1-ref1 (32) is not < ref2-test1 (32), but test2 matches ref2 better (25), so the
    # amended rule pairs ref1-test1 and then ref2-test2. The pre-2002 rule paired only one.
    assert pairs([96, 160], [128, 185], tolerance_s=37 / 360) == [(0, 0), (1, 1)]


def test_2002_amendment_test_earlier():
    # the same with roles swapped (bxb's case 1)
    assert pairs([128, 185], [96, 160], tolerance_s=37 / 360) == [(0, 0), (1, 1)]


def test_without_a_better_next_pair_the_cross_pairing_still_blocks():
    # as above but test2 is further from ref2 (40) than test1 is (32): ref1 is missed,
    # test1 pairs with ref2 and test2 is extra
    assert pairs([96, 160], [128, 200], tolerance_s=37 / 360) == [(1, 0)]


def test_unsorted_input_indices_refer_to_the_given_order():
    ref = np.array([3000, 1000, 2000])
    test = np.array([2010, 2990, 1005])
    ri, ti = match_beats(ref, test, 360.0)
    assert ri.dtype == np.int64 and ti.dtype == np.int64
    assert ref[ri].tolist() == [1000, 2000, 3000]
    assert test[ti].tolist() == [1005, 2010, 2990]


def test_empty_inputs_give_empty_pairs():
    for ref, test in (([], []), ([100, 200], []), ([], [100])):
        ri, ti = match_beats(ref, test, 360.0)
        assert ri.shape == ti.shape == (0,)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(DataError, match="1-D"):
        match_beats(np.zeros((2, 2)), [1], 360.0)
    with pytest.raises(DataError, match="NaN"):
        match_beats([1.0, np.nan], [1], 360.0)
    with pytest.raises(DataError, match="numeric"):
        match_beats(["a"], [1], 360.0)
    with pytest.raises(ConfigError, match="fs"):
        match_beats([1], [1], 0)
    with pytest.raises(ConfigError, match="tolerance"):
        match_beats([1], [1], 360.0, tolerance_s=-1)


def test_random_sparse_beats_match_their_unique_nearest_neighbour():
    """Where beats are more than two windows apart, bxb's rule is plain nearest-within-window."""
    rng = np.random.default_rng(7)
    fs, dt = 360.0, 54
    ref = np.cumsum(rng.integers(2 * dt + 60, 500, size=400))
    keep = rng.random(len(ref)) > 0.1
    shift = rng.integers(-80, 81, size=len(ref))  # some beyond the window
    test = np.sort((ref + shift)[keep])
    ri, ti = match_beats(ref, test, fs)
    assert np.all(np.abs(ref[ri] - test[ti]) <= dt)
    assert np.all(np.diff(ri) > 0) and np.all(np.diff(ti) > 0)
    expected = {(int(i), int(np.argmin(np.abs(test - ref[i])))) for i in range(len(ref))
                if np.min(np.abs(test - ref[i])) <= dt}
    assert set(zip(ri.tolist(), ti.tolist())) == expected
    assert 0.5 * len(ref) < len(ri) < len(ref)


def test_matching_a_long_record_is_fast():
    rng = np.random.default_rng(0)
    ref = np.cumsum(rng.integers(150, 400, size=3000))
    test = np.sort(np.r_[ref + rng.integers(-30, 30, size=len(ref)), rng.integers(0, ref[-1], 300)])
    t0 = time.perf_counter()
    for _ in range(5):
        match_beats(ref, test, 360.0)
    per_call = (time.perf_counter() - t0) / 5
    assert per_call < 0.2, f"{per_call:.3f} s per 3000-beat record"


@pytest.mark.realdata
@pytest.mark.parametrize("record", ["208", "203"])
def test_agrees_with_wfdb_compare_annotations_on_real_records(mitdb_dir, record):
    """Cross-check against wfdb-python's matcher with a perturbed test set.

    ``wfdb.processing.compare_annotations`` accepts a pair only when the distance is
    *strictly* below ``window_width``, so 55 samples there is our inclusive 54. It never
    applies bxb's 2002 amendment (irrelevant at these heart rates), and it breaks an exact
    tie differently: when one reference beat is equally far from two test beats it keeps the
    earlier test beat, bxb (and we) the later one. Measured (seed 3): record 208, 2816
    matches each and identical pairs; record 203, 2841 matches each, 2 pairs differ, both
    such ties. So the counts must agree exactly and every differing pair must be a tie.
    """
    wfdb_processing = pytest.importorskip("wfdb.processing")
    from edge_ecg.records import load_record

    rec = load_record(mitdb_dir, record, annotations=True)
    ref = rec.beat_samples
    rng = np.random.default_rng(3)
    keep = rng.random(len(ref)) > 0.03  # 3 % missed
    jitter = np.round(rng.normal(0, 15, len(ref))).astype(np.int64)
    jitter[rng.random(len(ref)) < 0.02] += 70  # 2 % displaced beyond the window
    extra = rng.integers(ref[0], ref[-1], size=len(ref) // 30)  # ~3 % extra detections
    test = np.unique(np.r_[(ref + jitter)[keep], extra])

    ri, ti = match_beats(ref, test, rec.fs)
    comp = wfdb_processing.compare_annotations(ref, test, tolerance_samples(rec.fs) + 1)
    comp.compare()
    ours = dict(zip(ri.tolist(), ti.tolist()))
    theirs = dict(zip(comp.matched_ref_inds.tolist(), comp.matching_sample_nums[comp.matched_ref_inds].tolist()))
    assert len(ours) > 0.9 * len(ref)
    assert len(ours) == comp.tp
    assert set(ours) == set(theirs)  # the same reference beats are found
    for r in ours:
        if ours[r] != theirs[r]:
            assert abs(ref[r] - test[ours[r]]) == abs(ref[r] - test[theirs[r]]), (r, ours[r], theirs[r])
            assert ours[r] > theirs[r]  # bxb keeps the later of two equidistant test beats


def test_truth_matcher_gives_the_nearest_reference_label_within_the_window():
    """A live stream's beats get the label of the nearest reference beat within 150 ms, else None."""
    from edge_ecg.evaluate import MATCH_WINDOW_S, TruthMatcher

    truth = TruthMatcher()
    assert truth.tolerance_s == MATCH_WINDOW_S
    for s, label in [(100, "N"), (400, "V"), (700, "S")]:
        truth.add(s, label)
    fs = 360.0  # the window is 54 samples
    assert truth.match(110, fs) == "N" and truth.match(446, fs) == "V" and truth.match(454, fs) == "V"
    assert truth.match(455, fs) is None and truth.match(560, fs) is None
    assert truth.match(560, fs) is None and truth.match(650, fs) == "S"
    assert truth.match(250, fs) is None  # 150 samples from both neighbours
    small = TruthMatcher(memory=2)
    for s, label in [(100, "N"), (400, "V"), (700, "S")]:
        small.add(s, label)
    assert small.match(100, fs) is None and small.match(700, fs) == "S"  # the oldest is forgotten
