"""Training data made in numpy: augmentation (edge_ecg.beats.augment) and class balancing
(edge_ecg.beats.sampling). No TensorFlow: these run in the quick loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_ecg.config import AugmentConfig, WindowConfig
from edge_ecg.errors import ConfigError, DataError

WINDOW = WindowConfig()


# --------------------------------------------------------------------------- augmentation


def _ecg_windows(n=8, seed=0):
    from edge_ecg.beats.windows import normalise_window

    rng = np.random.default_rng(seed)
    t = (np.arange(WINDOW.length) - WINDOW.pre) / WINDOW.fs
    x = np.exp(-0.5 * (t / 0.012) ** 2)[None, :] + 0.3 * np.exp(-0.5 * ((t - 0.25) / 0.05) ** 2)[None, :]
    x = x + 0.01 * rng.standard_normal((n, WINDOW.length))
    return normalise_window(x, WINDOW.normalise)


def test_warp_keeps_the_r_peak_and_shifts_it_by_the_drawn_amount():
    from edge_ecg.beats.augment import warp_windows

    X = _ecg_windows()
    same = warp_windows(X, np.random.default_rng(0), WINDOW.pre, rate_jitter=0.0, shift_max=0)
    np.testing.assert_allclose(same, X, atol=1e-6)
    stretched = warp_windows(X, np.random.default_rng(0), WINDOW.pre, rate_jitter=0.05, shift_max=0)
    assert np.all(np.argmax(stretched, axis=1) == WINDOW.pre)
    assert not np.allclose(stretched, X)
    shifted = warp_windows(X, np.random.default_rng(0), WINDOW.pre, rate_jitter=0.0, shift_max=5)
    offsets = WINDOW.pre - np.argmax(shifted, axis=1)
    assert np.all(np.abs(offsets) <= 5) and len(set(offsets.tolist())) > 1


def test_augment_is_deterministic_renormalised_and_bounded():
    from edge_ecg.beats.windows import normalise_window
    from edge_ecg.beats.augment import NoiseBank, augment_windows

    rng = np.random.default_rng(3)
    bank = NoiseBank(fs=WINDOW.fs, tracks={"em": [rng.standard_normal(20000).astype(np.float32)]}, minutes=1)
    cfg = AugmentConfig(noise_types=("em",), noise_prob=1.0, snr_db_range=(6.0, 6.0), scale_range=(1.0, 1.0),
                        wander_prob=0.0, rate_jitter=0.0, shift_max_s=0.0)
    X = _ecg_windows(64)
    a = augment_windows(X, np.random.default_rng(7), cfg, WINDOW, bank)
    b = augment_windows(X, np.random.default_rng(7), cfg, WINDOW, bank)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(normalise_window(a, WINDOW.normalise), a, atol=1e-4)  # already normalised
    quiet = augment_windows(X, np.random.default_rng(7), dataclasses.replace(cfg, snr_db_range=(60.0, 60.0)), WINDOW, bank)
    assert np.abs(quiet - X).max() < 0.05
    loud_err = np.mean((a - X) ** 2)
    assert loud_err > 100 * np.mean((quiet - X) ** 2)
    off = augment_windows(X, np.random.default_rng(7), dataclasses.replace(cfg, enabled=False), WINDOW, bank)
    np.testing.assert_array_equal(off, X)


def test_detector_like_beats_jitter_drop_and_add_as_configured():
    from edge_ecg.beats.augment import SPURIOUS_GUARD_S, detector_like_beats

    rng = np.random.default_rng(0)
    samples = np.cumsum(rng.integers(120, 170, 20000))
    same, origin = detector_like_beats(samples, rng, 180.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(same, samples)
    np.testing.assert_array_equal(origin, np.arange(len(samples)))

    pos, origin = detector_like_beats(samples, np.random.default_rng(1), 180.0, 0.005, 0.01, 0.02)
    assert np.all(np.diff(pos) > 0)
    real = origin >= 0
    assert 0.007 < 1 - real.sum() / len(samples) < 0.013  # about 1 % missed
    assert 0.015 < (~real).sum() / len(samples) < 0.025  # about 2 % spurious
    moved = pos[real] - samples[origin[real]]
    assert 0.6 < moved.std() < 1.2  # 5 ms at 180 Hz is 0.9 samples
    # a spurious beat keeps the refractory distance from the reference beats around it
    nearest = np.min(np.abs(pos[~real][:, None] - samples[None, :]), axis=1)
    assert nearest.min() >= int(SPURIOUS_GUARD_S * 180.0) - 1


def test_augment_rr_recomputes_features_per_record_and_only_when_asked():
    from edge_ecg.beats.rr import rr_features
    from edge_ecg.beats.augment import augment_rr

    window = WindowConfig(rr_features=("pre_rr_ratio", "prev_rr_ratio", "pre_rr_long_ratio"))
    rng = np.random.default_rng(0)
    a, b = np.cumsum(rng.integers(120, 170, 3000)), np.cumsum(rng.integers(90, 200, 2000))
    sample, record = np.concatenate([a, b]), np.array(["a"] * len(a) + ["b"] * len(b))
    rr = np.concatenate([rr_features(a, window.fs, window.rr_features), rr_features(b, window.fs, window.rr_features)])

    assert augment_rr(rr, record, sample, rng, AugmentConfig(), window) is rr  # off: untouched, no draws
    cfg = AugmentConfig(rr_jitter_s=0.005, rr_miss_prob=0.005, rr_extra_prob=0.005)
    one = augment_rr(rr, record, sample, np.random.default_rng(5), cfg, window)
    two = augment_rr(rr, record, sample, np.random.default_rng(5), cfg, window)
    np.testing.assert_array_equal(one, two)
    assert one.shape == rr.shape and one.dtype == np.float32
    diff = np.abs(one - rr).max(axis=1)
    assert np.median(diff) < 0.02  # most beats move a little...
    assert (diff > 0.1).mean() > 0.002  # ...a few (next to a missed or spurious beat) a lot
    # record b's history starts afresh: its first beat has the default features, not a's last interval
    first_b = len(a)
    np.testing.assert_allclose(one[first_b], rr[first_b])
    assert augment_rr(rr, record, sample, rng, dataclasses.replace(cfg, enabled=False), window) is rr


@pytest.mark.parametrize("bad", [{"rr_jitter_s": -0.01}, {"rr_jitter_s": 0.2}, {"rr_miss_prob": 0.5},
                                 {"rr_extra_prob": -0.1}])
def test_rr_augmentation_settings_are_checked(bad):
    with pytest.raises(ConfigError, match="augment.rr_"):
        AugmentConfig(**bad)


def _write_noise_record(folder, name, fs, minutes_total, marker_after_s):
    import wfdb

    n = int(minutes_total * 60 * fs)
    rng = np.random.default_rng(0)
    sig = 0.05 * rng.standard_normal((n, 2))
    sig[int(marker_after_s * fs):] += 4.0  # the "reserved" part: a large, obvious offset + ramp
    sig[int(marker_after_s * fs):, 0] += np.linspace(0, 3, n - int(marker_after_s * fs))
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["noise1", "noise2"], p_signal=sig, fmt=["212", "212"],
                adc_gain=[200.0, 200.0], baseline=[0, 0], write_dir=str(folder))


def test_noise_bank_reads_only_the_first_minutes(tmp_path):
    from edge_ecg.beats.augment import load_noise_bank

    fs = 90.0
    _write_noise_record(tmp_path, "em", fs, minutes_total=3, marker_after_s=60)
    cfg = AugmentConfig(noise_types=("em",), noise_minutes=1.0)
    bank = load_noise_bank(tmp_path, WINDOW, cfg)
    assert len(bank.tracks["em"]) == 2
    for track in bank.tracks["em"]:
        assert abs(len(track) - 60 * WINDOW.fs) <= 2
        assert np.abs(track).max() < 1.0  # the later, marked part never enters
    with pytest.raises(DataError, match="ma.hea"):
        load_noise_bank(tmp_path, WINDOW, AugmentConfig(noise_types=("ma",)))


def test_real_nstdb_bank_holds_fifteen_minutes(nstdb_dir):
    from edge_ecg.beats.augment import load_noise_bank

    bank = load_noise_bank(nstdb_dir, WINDOW, AugmentConfig())
    assert set(bank.tracks) == {"em", "ma", "bw"}
    for tracks in bank.tracks.values():
        for track in tracks:
            assert len(track) == pytest.approx(15 * 60 * WINDOW.fs, abs=2)


# --------------------------------------------------------------------------- imbalance


def test_class_weights_and_balanced_sampling():
    from edge_ecg.beats.sampling import class_weights, epoch_order

    y = np.array([0] * 900 + [1] * 25 + [2] * 75)
    w = class_weights(y, power=1.0, cap=100.0)
    assert w[3] == 0 and w[4] == 0
    assert w[1] / w[0] == pytest.approx(36.0) and w[2] / w[0] == pytest.approx(12.0)
    assert w[y].mean() == pytest.approx(1.0)
    capped = class_weights(y, power=1.0, cap=10.0)
    assert capped[1] / capped[0] == pytest.approx(10.0)
    order = epoch_order(y, np.random.default_rng(0), "balanced_sampling", w)
    share = np.bincount(y[order], minlength=5)[:3] / len(order)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.05)
    perm = epoch_order(y, np.random.default_rng(0), "class_weight", w)
    assert sorted(perm.tolist()) == list(range(len(y)))


# --------------------------------------------------------------------------- synthetic runs (issue 28)


def _spikes(period: int, n: int = 3) -> np.ndarray:
    """One window with a unit spike at the R peak and at the previous beat, ``period`` before."""
    x = np.zeros((n, WINDOW.length), dtype=np.float32)
    x[:, WINDOW.pre] = 1.0
    x[:, WINDOW.pre - period] = 0.8
    x[:, WINDOW.pre - period - 20] = 0.3  # an earlier sinus P wave, where a run has none
    return x


def test_a_synthetic_run_repeats_the_last_cycle_back_to_the_window_start():
    from edge_ecg.beats.augment import run_onset, tile_context

    onset = run_onset(WINDOW)
    period = np.array([70, 100, 200])
    X = np.concatenate([_spikes(p, 1) for p in period])
    out = tile_context(X, WINDOW.pre, period, onset)
    b = WINDOW.pre - onset
    for row, p in enumerate(period):
        np.testing.assert_array_equal(out[row, b - p:], X[row, b - p:])  # the last cycle and after: untouched
        beats = np.flatnonzero(out[row] > 0.5)
        expected = np.arange(WINDOW.pre - p, -1, -p)[::-1]  # every earlier beat one period before the next
        np.testing.assert_array_equal(beats, np.concatenate([expected, [WINDOW.pre]]))
        assert out[row, WINDOW.pre - p - 20] == 0  # the old context is gone
    assert not np.shares_memory(out, X) and X[0, WINDOW.pre - 140] == 0
    for bad in (4, b + 1):
        with pytest.raises(ValueError, match="period"):
            tile_context(X[:1], WINDOW.pre, np.array([bad]), onset)


def test_a_synthetic_run_has_no_step_at_its_seams():
    from edge_ecg.beats.augment import run_onset, tile_context

    x = np.linspace(0.0, 1.0, WINDOW.length, dtype=np.float32)[None, :]  # a ramp: every seam would step
    out = tile_context(x, WINDOW.pre, np.array([90]), run_onset(WINDOW))
    assert np.abs(np.diff(out[0])).max() < 0.2 * (90 / WINDOW.length)  # the largest jump: a fifth of one cycle's rise


def test_run_periods_are_the_rr_interval_of_n_and_s_beats_that_fit():
    from edge_ecg.beats.augment import run_onset, run_periods

    fs = WINDOW.fs
    sample = np.array([100, 250, 280, 430, 900, 50, 200], dtype=np.int64)  # record a, then record b
    record = np.array(["a"] * 5 + ["b"] * 2)
    y = np.array([0, 1, 1, 2, 0, 0, 1])  # N S S V N | N S
    got = run_periods(record, sample, y, WINDOW)
    longest = WINDOW.pre - run_onset(WINDOW)
    # first beat of a record: no interval; 30 samples (0.17 s) too short; V never; 470 > the window
    assert got.tolist() == [0, 150, 0, 0, 0 if 470 > longest else 470, 0, 150]
    assert int(round(0.25 * fs)) <= 150 <= longest


def test_run_rr_makes_the_previous_interval_as_early_as_this_one():
    from edge_ecg.beats.augment import run_rr

    feats = ("pre_rr_ratio", "prev_rr_ratio", "pre_rr_long_ratio", "pre_rr")
    rr = np.array([[0.7, 1.0, 0.8, 0.5], [1.0, 1.0, 1.0, 0.8]], dtype=np.float32)
    out = run_rr(rr, np.array([True, False]), feats)
    np.testing.assert_array_equal(out, np.array([[0.7, 0.7, 0.8, 0.5], [1.0, 1.0, 1.0, 0.8]], dtype=np.float32))
    assert rr[0, 1] == 1.0  # not changed in place
    assert run_rr(rr, np.array([True, False]), ("pre_rr_ratio", "pre_rr_long_ratio", "x", "y")) is rr


def test_the_run_draw_comes_last_so_every_other_draw_is_unchanged():
    from edge_ecg.beats.augment import apply_augmentation, draw_augmentation, run_onset, tile_context

    cfg = AugmentConfig(noise_prob=0.0, wander_prob=0.5)
    period = np.full(300, 100)
    period[::3] = 0  # not eligible
    plain = draw_augmentation(300, np.random.default_rng(3), cfg, WINDOW, run_period=period)
    runs = draw_augmentation(300, np.random.default_rng(3), dataclasses.replace(cfg, run_prob=0.5), WINDOW,
                             run_period=period)
    assert plain.run is None
    for f in ("factor", "shift", "noise", "snr_db", "scale"):
        np.testing.assert_array_equal(getattr(plain, f), getattr(runs, f))
    np.testing.assert_array_equal(np.isnan(plain.wander), np.isnan(runs.wander))
    picked = runs.run > 0
    assert 0.25 < picked.mean() < 0.42 and not picked[::3].any() and set(runs.run[picked]) == {100}
    X = _ecg_windows(300)
    with_runs = apply_augmentation(X, runs, np.arange(300), cfg, WINDOW)
    without = apply_augmentation(X, plain, np.arange(300), cfg, WINDOW)
    np.testing.assert_array_equal(with_runs[~picked], without[~picked])
    tiled = tile_context(X[picked], WINDOW.pre, runs.run[picked], run_onset(WINDOW))
    np.testing.assert_array_equal(with_runs[picked], apply_augmentation(tiled, plain, np.flatnonzero(picked), cfg, WINDOW))
    with pytest.raises(ConfigError, match="run_prob"):
        AugmentConfig(run_prob=1.5)


def test_in_run_beats_are_found_record_by_record_in_time_order():
    from edge_ecg.beats.rr import in_run_mask
    from edge_ecg.beats.sampling import epoch_order, in_run_beats

    fs = 100.0
    # record a: sinus at 1 s, then a run of three S beats at 0.5 s, then sinus; record b: one APC alone
    a = np.array([0, 100, 200, 300, 400, 450, 500, 550, 650, 750, 850])
    ya = np.array([0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    b = np.array([0, 100, 200, 300, 350, 450, 550])
    yb = np.array([0, 0, 0, 0, 1, 0, 0])
    order = np.random.default_rng(0).permutation(len(a) + len(b))  # a beat set need not be in time order
    record = np.array(["a"] * len(a) + ["b"] * len(b))[order]
    sample, y = np.concatenate([a, b])[order], np.concatenate([ya, yb])[order]
    got = in_run_beats(record, sample, y, fs)
    names = np.asarray(["N", "S"])
    want = np.concatenate([in_run_mask(a, names[ya], fs), in_run_mask(b, names[yb], fs)])[order]
    np.testing.assert_array_equal(got, want)
    assert got.sum() == 2 and set(sample[got]) == {500, 550}  # the run's 2nd and 3rd beats; not its 1st, not b's
    # the weight multiplies their share of a balanced draw
    weights = np.ones(5)
    scale = np.where(got, 10.0, 1.0)
    drawn = np.concatenate([epoch_order(y, np.random.default_rng(s), "balanced_sampling", weights, scale)
                            for s in range(200)])
    share = got[drawn].mean()
    assert abs(share - 20 / 36) < 0.03  # 2 beats weighing 10 each, 16 weighing 1: 20 of 36
