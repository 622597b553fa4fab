"""QRSDetector / ecg_peaks: detection, chunk-exactness, resets, units, delay, real records."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic_ecg

from edge_ecg.errors import DataError
from edge_ecg.evaluate import match_beats
from edge_ecg.signal import QRSDetector, ecg_peaks, ecg_resample


def feed(det: QRSDetector, x: np.ndarray, sizes) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Feed ``x`` in chunks of the given sizes; return beats and (beat, last sample fed) pairs."""
    out, when, i = [], [], 0
    for n in sizes:
        if i >= len(x):
            break
        beats = det.process(x[i : i + n])
        i += n
        out.append(beats)
        when += [(int(b), min(i, len(x)) - 1) for b in beats]
    return np.concatenate(out) if out else np.zeros(0, np.int64), when


def random_sizes(n: int, seed: int, lo: int = 1, hi: int = 500) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(lo, hi + 1, size=n // lo + 1)
    return sizes.tolist()


def mixed_ecg(fs: float = 360.0, seed: int = 0, n: int = 60, symbols: bool = False):
    syms = (["N"] * 6 + ["V", "N", "A", "N"]) * (n // 10)
    x, beats, _ = synthetic_ecg(len(syms), fs=fs, seed=seed, classes=syms)
    return (x, beats, np.array(syms)) if symbols else (x, beats)


@pytest.mark.parametrize("fs", [100.0, 180.0, 250.0, 360.0, 500.0])
def test_finds_every_synthetic_beat_at_its_r_peak(fs):
    x, truth, syms = mixed_ecg(fs, symbols=True)
    found = ecg_peaks(x, fs)
    assert found.dtype == np.int64
    assert np.all(np.diff(found) > 0)
    ri, ti = match_beats(truth, found, fs)
    assert len(ri) == len(truth) == len(found)
    # the R peak itself, not a filter-delayed position: narrow beats within a sample,
    # wide (V) ones within 12 ms
    err = np.abs(found[ti] - truth[ri])
    assert np.max(err[syms[ri] != "V"]) <= 1
    assert np.max(err) <= 1 + 0.012 * fs


@pytest.mark.slow  # ~2 s on a loaded 2-core machine: three random chunkings and sample by sample
def test_random_chunks_give_exactly_the_same_beats():
    x, _ = mixed_ecg(seed=3)
    x = x + 0.05 * np.random.default_rng(3).standard_normal(x.size)  # noise: many candidates
    whole = QRSDetector(360).process(x)
    for seed in range(3):
        chunked, _ = feed(QRSDetector(360), x, random_sizes(x.size, seed))
        np.testing.assert_array_equal(chunked, whole)
    ones, _ = feed(QRSDetector(360), x, [1] * 20000 + [x.size])  # sample by sample, then the rest
    np.testing.assert_array_equal(ones, whole)


def test_adc_counts_give_the_same_beats():
    x, _ = mixed_ecg(fs=250.0, seed=1)
    mv = ecg_peaks(x, 250)
    adc = np.round(x * 1000 + 2048).astype(np.int16)
    np.testing.assert_array_equal(ecg_peaks(adc, 250), mv)
    np.testing.assert_array_equal(ecg_peaks(-5.0 + 0.01 * x, 250), mv)


def test_every_beat_is_reported_within_max_delay():
    x, truth = mixed_ecg(seed=2)
    # a 2.4 s pause, then a small beat that only search-back can find
    fs = 360
    cut = truth[30] + int(0.4 * fs)
    pause = np.full(int(2.4 * fs), x[cut])
    x = np.concatenate([x[:cut], pause, x[cut:]])
    det = QRSDetector(fs)
    beats, when = feed(det, x, [7] * (x.size // 7 + 1))
    assert len(beats) >= len(truth) - 1
    lags = [last - r for r, last in when]
    assert max(lags) <= det.max_delay
    assert np.median(lags) < 0.5 * fs  # normal beats come within ~0.4 s


def test_reset_after_a_gap_relearns_and_no_beat_spans_it():
    fs = 360.0
    a, truth_a = mixed_ecg(seed=4, n=30)
    b, truth_b = mixed_ecg(seed=5, n=30)
    b = 3.0 * b + 1.0  # another electrode: other gain and offset
    det = QRSDetector(fs)
    first, _ = feed(det, a, [100] * (a.size // 100 + 1))
    det.reset()
    second, when = feed(det, b, [100] * (b.size // 100 + 1))
    assert np.all(first < a.size)
    assert np.all(second >= a.size)  # indices go on counting across the reset
    # nothing is decided before the new learning phase (2 s) is over
    assert min(last for _, last in when) >= 2 * fs - 1  # (chunk-local sample index)
    ri, _ = match_beats(truth_b + a.size, second, fs)
    assert len(ri) == len(truth_b) == len(second)
    ri, _ = match_beats(truth_a, first, fs)
    assert len(ri) >= len(truth_a) - 1  # the last beat may still be pending at the reset


def test_recovers_after_the_amplitude_drops():
    fs = 360
    x, truth, _ = synthetic_ecg(140, seed=6)
    drop = x.size // 3
    x[drop:] *= 0.2  # e.g. an electrode moved: 5x smaller from here on
    found = ecg_peaks(x, fs)
    ri, _ = match_beats(truth, found, fs)
    hit = np.zeros(truth.size, bool)
    hit[ri] = True
    assert hit[truth < drop].all()
    settling = (truth >= drop) & (truth < drop + 30 * fs)
    assert hit[settling].mean() >= 0.5  # search-back finds at least every other beat
    assert hit[truth >= drop + 30 * fs].all()  # the thresholds have sunk to the new level


def test_tall_t_waves_are_not_beats():
    fs = 360.0
    x, truth = mixed_ecg(seed=7, n=40)
    t = np.arange(x.size) / fs
    for r in truth / fs:  # T waves as tall as the R wave but slow
        x += 0.9 * np.exp(-0.5 * ((t - r - 0.3) / 0.06) ** 2)
    found = ecg_peaks(x, fs)
    ri, ti = match_beats(truth, found, fs)
    assert len(ri) == len(truth) == len(found)


def test_non_finite_samples_do_not_poison_the_detector():
    x, truth = mixed_ecg(seed=8, n=40)
    x[5000:5010] = np.nan
    x[9000] = np.inf
    found = ecg_peaks(x, 360)
    ri, _ = match_beats(truth, found, 360)
    assert len(ri) >= len(truth) - 1


def test_memory_stays_bounded():
    x, _ = mixed_ecg(seed=9, n=60)
    det = QRSDetector(360)
    for i in range(0, x.size, 997):
        det.process(x[i : i + 997])
        assert det._h_mwi.size <= det._hist_len
        assert len(det._recent) <= det._recent.maxlen and len(det._rr) <= 8


def test_bad_input_is_a_one_line_error():
    with pytest.raises(DataError, match="sampling rate"):
        QRSDetector(50)
    with pytest.raises(DataError, match="1-D"):
        QRSDetector(360).process(np.zeros((10, 2)))
    with pytest.raises(DataError, match="1-D"):
        ecg_peaks(np.zeros((10, 2)), 360)
    assert QRSDetector(360).process([]).size == 0
    assert ecg_peaks(np.zeros(0), 360).size == 0
    assert ecg_peaks(np.zeros(5000), 360).size == 0  # a flat line has no beats


# ---------------------------------------------------------------- real records


def _score(rec, found) -> tuple[float, float]:
    ref = rec.beat_samples
    in_vf = np.zeros(ref.size, bool)
    for a, b in rec.excluded:
        in_vf |= (ref >= a) & (ref <= b)
    ri, _ = match_beats(ref[~in_vf], found, rec.fs)
    return len(ri) / (~in_vf).sum(), len(ri) / len(found)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["100", "119", "208"])
def test_mitdb_records_at_360_and_180_hz(mitdb_dir, name):
    from edge_ecg.records import load_record

    rec = load_record(mitdb_dir, name)
    se, ppv = _score(rec, ecg_peaks(rec.signal, rec.fs))
    assert se >= 0.99 and ppv >= 0.99
    x180 = ecg_resample(rec.signal, rec.fs, 180.0)
    found = np.round(ecg_peaks(x180, 180.0) * rec.fs / 180.0).astype(np.int64)
    se, ppv = _score(rec, found)
    assert se >= 0.99 and ppv >= 0.99


@pytest.mark.realdata
def test_mitdb_record_in_random_chunks_is_exact(mitdb_dir):
    from edge_ecg.records import load_record

    x = load_record(mitdb_dir, "203", annotations=False).signal[: 360 * 300]
    whole = QRSDetector(360).process(x)
    chunked, _ = feed(QRSDetector(360), x, random_sizes(x.size, 11))
    np.testing.assert_array_equal(chunked, whole)


def test_the_detectors_median_is_numpys():
    from edge_ecg.signal.detect import _median

    rng = np.random.default_rng(2)
    for n in list(range(1, 40)) + [90, 91]:
        for a in (rng.normal(size=n), np.round(rng.normal(size=n), 1), np.full(n, 0.25)):
            assert _median(a) == float(np.median(a))
