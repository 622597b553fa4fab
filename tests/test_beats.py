import numpy as np
import pytest

from edge_ecg.beats import RRTracker, beat_windows, build_beatset, normalise_window, record_beats, rr_features
from edge_ecg.beats.dataset import BeatSet, beatset_cache_path
from edge_ecg.beats.rr import DEFAULT_RR_S
from edge_ecg.config import RR_FEATURES, WindowConfig
from edge_ecg.records import load_record
from edge_ecg.signal import ecg_clean


def test_rr_features_hand_computed():
    fs = 100.0
    r = np.array([0, 80, 160, 200, 300])  # RR: 0.8, 0.8, 0.4 (premature), 1.0 (pause)
    f = rr_features(r, fs)
    assert f.shape == (5, 8) and f.dtype == np.float32
    np.testing.assert_allclose(f[0], [DEFAULT_RR_S] * 3 + [1, 1, 1, 0, 0])
    np.testing.assert_allclose(f[1, :3], [0.8, 0.8, 0.8])
    # beat 3: pre 0.4, prev 0.8, local mean(0.8, 0.8, 0.4); the rhythm before it was regular
    local = (0.8 + 0.8 + 0.4) / 3
    np.testing.assert_allclose(f[3], [0.4, 0.8, local, 0.4 / local, 0.8 / local, 0.4 / local, 0.0, 0.0],
                               rtol=1e-6, atol=1e-7)
    assert f[3, 3] < 0.7  # a premature beat stands out against the patient's own rhythm
    # beat 4: the intervals before its own are 0.8, 0.8, 0.4: RMSSD sqrt((0 + 0.4**2) / 2) over mean 2/3
    np.testing.assert_allclose(f[4, 6], np.sqrt(0.16 / 2) / (2 / 3), rtol=1e-6)
    # ... and their median |difference| (0, 0.4 -> 0.2) over their median (0.8)
    np.testing.assert_allclose(f[4, 7], 0.2 / 0.8, rtol=1e-6)


def test_robust_irregularity_tells_pauses_and_runs_from_fibrillation():
    """The median-based irregularity stays low in a regular rhythm broken by a pause and a run of
    early beats (as in MIT-BIH 232), where RMSSD / mean does not; it stays high in an AF-like rhythm."""
    fs = 100.0
    names = ("rr_irregularity", "rr_irregularity_median")
    rr_sinus = [1.2] * 12 + [3.0] + [1.2] * 3 + [0.6, 0.6] + [1.2] * 3  # slow sinus, a pause, two early beats
    rr_af = np.random.default_rng(3).uniform(0.45, 1.05, 22)
    sinus = rr_features(np.cumsum(np.round(np.array(rr_sinus) * fs)).astype(int), fs, names)[-1]
    af = rr_features(np.cumsum(np.round(rr_af * fs)).astype(int), fs, names)[-1]
    assert sinus[0] > 0.5 and sinus[1] < 0.05
    assert af[1] > 0.1 > 2 * sinus[1]


def test_rr_features_are_past_only():
    r = np.cumsum(np.full(30, 72))
    full = rr_features(r, 90.0)
    changed = r.copy()
    changed[20:] += 40  # change the future of beat 19
    np.testing.assert_array_equal(full[:20], rr_features(changed, 90.0)[:20])


def test_tracker_matches_batch_and_reset_forgets():
    r = np.cumsum(np.random.default_rng(0).integers(60, 120, 50))
    t = RRTracker(100.0, ("pre_rr", "pre_rr_ratio"))
    streamed = np.array([t.push(int(s)) for s in r])
    np.testing.assert_array_equal(streamed, rr_features(r, 100.0, ("pre_rr", "pre_rr_ratio")))
    t.reset()
    np.testing.assert_allclose(t.push(10_000), [DEFAULT_RR_S, 1.0])


def test_long_ratio_uses_last_five_minutes_only():
    fs = 10.0
    slow = np.arange(0, 400 * 10, 10)  # 1.0 s RR for 400 s
    fast = slow[-1] + np.arange(1, 100) * 5  # then 0.5 s RR
    f = rr_features(np.concatenate([slow, fast]), fs)
    # after 99 fast beats (~50 s), the last 300 s hold ~250 slow and 99 fast intervals
    expected_long = (250 * 1.0 + 99 * 0.5) / 349
    assert f[-1, 5] == pytest.approx(0.5 / expected_long, rel=0.01)


def test_normalise_ignores_gain_and_offset():
    x = np.random.default_rng(1).standard_normal((3, 200))
    for method in ("robust", "zscore"):
        a = normalise_window(x, method)
        b = normalise_window(1000.0 * x + 2048.0, method)
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert not normalise_window(np.full((1, 50), 7.0)).any()


def test_windows_centre_on_the_r_peak_and_pad_edges():
    w = WindowConfig(fs=100.0, pre_s=0.5, post_s=0.3, highpass_hz=0.5, lowpass_hz=40.0)
    sig = np.zeros(1000)
    sig[[5, 500, 995]] = 1.0
    X = beat_windows(sig, np.array([5, 500, 995]), w)
    assert X.shape == (3, w.length)
    assert (X.argmax(axis=1) == w.pre).all()


def test_record_beats_and_gain_invariance(tiny_db):
    w = WindowConfig()
    rec = load_record(tiny_db, "900")
    bs = record_beats(rec, w)
    assert isinstance(bs, BeatSet) and len(bs) == len(rec.beat_samples)
    assert bs.X.shape == (len(bs), w.length) and bs.rr.shape == (len(bs), len(w.rr_features))
    assert bs.class_counts() == {"N": 36, "S": 3, "V": 3, "F": 0, "Q": 0}
    rec.signal = rec.signal * 37.0 + 512.0  # same ECG in another ADC's counts
    np.testing.assert_allclose(record_beats(rec, w).X[5:], bs.X[5:], atol=1e-3)  # start-up transient aside
    # windows come from the causally cleaned signal at window.fs
    assert abs(ecg_clean(np.ones(10), 180.0)).max() < 1e-9


def test_build_beatset_caches_by_configuration(tiny_db, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    w = WindowConfig()
    first = build_beatset(tiny_db, ["900", "901"], w, progress=False)
    path = beatset_cache_path(tiny_db, ["900", "901"], w)
    assert path.is_file()
    again = build_beatset(tiny_db, ["900", "901"], w, progress=False)
    np.testing.assert_array_equal(first.X, again.X)
    assert list(np.unique(again.record)) == ["900", "901"]
    assert beatset_cache_path(tiny_db, ["900", "901"], WindowConfig(post_s=0.8)) != path
    assert len(first.records(["901"])) == len(first) // 2


def test_concurrent_builders_do_not_clash(tiny_db, tmp_path, monkeypatch):
    """Two runs building the same cache at once (e.g. two trainings) both succeed."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    with ThreadPoolExecutor(4) as pool:
        sets = list(pool.map(lambda _: build_beatset(tiny_db, ["900", "901"], WindowConfig(), progress=False), range(4)))
    for bs in sets[1:]:
        np.testing.assert_array_equal(bs.X, sets[0].X)
    cache = beatset_cache_path(tiny_db, ["900", "901"], WindowConfig()).parent
    assert not list(cache.glob("*.tmp.npz"))  # no temporary file left behind


@pytest.mark.realdata
def test_ds1_ds2_beatsets_have_the_published_counts(mitdb_dir, tmp_path, monkeypatch):
    from edge_ecg.records import DS1, DS2

    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path))
    bs = build_beatset(mitdb_dir, DS1 + DS2, WindowConfig(), progress=False)
    assert bs.records(DS1).class_counts() == {"N": 45866, "S": 944, "V": 3788, "F": 415, "Q": 8}
    assert bs.records(DS2).class_counts() == {"N": 44259, "S": 1837, "V": 3221, "F": 388, "Q": 7}
    assert np.isfinite(bs.X).all() and np.isfinite(bs.rr).all()


def test_sequences_stay_inside_each_record_and_a_stream_builds_the_same_rows():
    from edge_ecg.beats import BeatHistory, sequence_index

    record = np.array(["a"] * 3 + ["b"] * 5)
    idx = sequence_index(record, 3)
    assert idx.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [3, 3, 3], [3, 3, 4], [3, 4, 5], [4, 5, 6], [5, 6, 7]]
    assert sequence_index(record, 1).ravel().tolist() == list(range(8))
    X = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    rr = np.random.default_rng(1).uniform(0.5, 1.5, (8, 2)).astype(np.float32)
    # beat by beat, in uneven batches, reset at the record boundary: the same rows
    hist = BeatHistory(3)
    parts = [hist.push(X[:2], rr[:2]), hist.push(X[2:3], rr[2:3])]
    hist.reset()
    parts += [hist.push(X[3:4], rr[3:4]), hist.push(X[4:8], rr[4:8])]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), X[idx])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), rr[idx])
    with pytest.raises(ValueError):
        sequence_index(record, 0)


def test_any_choice_of_rr_features_gives_the_same_columns_as_all_of_them():
    """The tracker computes only what it is asked for (the irregularities cost most); a subset is
    exactly those columns of the full set, and the median irregularity is np.median's."""
    from edge_ecg.beats.rr import _median_abs_diff_ratio

    rng = np.random.default_rng(4)
    r = np.cumsum(np.concatenate([rng.integers(60, 120, 40), [300], rng.integers(30, 200, 40)]))
    full = rr_features(r, 100.0, RR_FEATURES)
    for subset in (("pre_rr_ratio",), ("rr_irregularity_median", "pre_rr"), ("rr_irregularity", "prev_rr_ratio"),
                   tuple(reversed(RR_FEATURES))):
        np.testing.assert_array_equal(rr_features(r, 100.0, subset), full[:, [RR_FEATURES.index(f) for f in subset]])
    for n in range(2, 12):
        rr = list(rng.uniform(0.3, 2.0, n))
        a = np.asarray(rr)
        assert _median_abs_diff_ratio(rr) == float(np.median(np.abs(np.diff(a))) / np.median(a))
