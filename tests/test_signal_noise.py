import numpy as np
import pytest

from edge_ecg.errors import DataError
from edge_ecg.signal.noise import TRAIN_MINUTES, add_noise, load_noise, noise_power, qrs_amplitude

from conftest import synthetic_ecg


def test_qrs_amplitude_and_noise_power_by_hand():
    fs = 100.0
    x = np.zeros(1000)
    beats = np.arange(50, 950, 80)
    x[beats] = 2.0
    x[beats + 2] = -0.5
    assert qrs_amplitude(x, fs, beats) == pytest.approx(2.5)
    sine = np.sin(2 * np.pi * 5 * np.arange(2000) / fs)
    assert noise_power(sine, fs) == pytest.approx(0.5, rel=1e-3)  # a unit sinusoid's power


@pytest.mark.parametrize("snr_db", [24.0, 6.0, 0.0, -6.0])
def test_add_noise_hits_the_requested_snr(snr_db):
    fs = 360.0
    x, beats, _ = synthetic_ecg(120, fs=fs)
    noise = np.random.default_rng(3).standard_normal(len(x) // 3)  # shorter: repeated
    noisy = add_noise(x, fs, beats, noise, snr_db)
    added = noisy - x
    s = qrs_amplitude(x, fs, beats) ** 2 / 8
    measured = 10 * np.log10(s / noise_power(added, fs))
    assert measured == pytest.approx(snr_db, abs=0.1)
    assert abs(added.mean()) < 1e-9


def test_flat_noise_is_an_error():
    x, beats, _ = synthetic_ecg(20)
    with pytest.raises(DataError, match="flat"):
        add_noise(x, 360.0, beats, np.ones(1000), 6.0)


@pytest.mark.realdata
def test_train_and_test_parts_do_not_overlap(nstdb_dir):
    train = load_noise(nstdb_dir, "em", "train")
    test = load_noise(nstdb_dir, "em", "test")
    assert len(train) == int(TRAIN_MINUTES * 60 * 360)
    assert len(train) + len(test) == 650000
    assert len(load_noise(nstdb_dir, "ma", "test", fs=180.0)) == pytest.approx(len(test) / 2, abs=1)
    with pytest.raises(DataError, match="unknown noise type"):
        load_noise(nstdb_dir, "xx")


# --------------------------------------------------------------------------- the augmentation's noise bank


def _wfdb_reference_bank(nstdb_dir, window, cfg):
    """The noise bank as augmentation read it before it used :func:`load_noise`: wfdb's float64
    physical signal, every channel, the first ``noise_minutes``, resampled and cleaned."""
    import wfdb

    from edge_ecg.signal.filter import ecg_clean
    from edge_ecg.signal.resample import ecg_resample

    tracks = {}
    for name in cfg.noise_types:
        header = wfdb.rdheader(str(nstdb_dir / name))
        keep = int(round(cfg.noise_minutes * 60.0 * header.fs))
        rec = wfdb.rdrecord(str(nstdb_dir / name), sampto=min(keep, header.sig_len))
        chans = []
        for c in range(rec.p_signal.shape[1]):
            x = np.nan_to_num(rec.p_signal[:, c].astype(np.float64))
            x = ecg_resample(x, float(header.fs), window.fs, window.resample_width)
            chans.append(ecg_clean(x, window.fs, window.highpass_hz, window.lowpass_hz).astype(np.float32))
        tracks[name] = chans
    return tracks


def _write_nstdb_like(folder, minutes=0.5, fs=360):
    """em, ma, bw: two channels of random-walk noise in format 212 (as nstdb) with a gap of invalid samples."""
    import wfdb

    folder.mkdir()
    rng = np.random.default_rng(7)
    n = int(minutes * 60 * fs)
    for i, name in enumerate(("em", "ma", "bw")):
        d = np.cumsum(rng.integers(-9, 10, (n, 2)), axis=0)
        d = np.clip(d - d.mean(axis=0).astype(int), -2000, 2000).astype(np.int64)
        d[100:110, 1] = -2048  # WFDB's invalid sample for format 212
        wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["noise1", "noise2"], d_signal=d, fmt=["212", "212"],
                    adc_gain=[200.0 + 3 * i, 200.0], baseline=[7, -3], write_dir=str(folder))
    return folder


@pytest.mark.parametrize("fs,minutes", [(360.0, 0.3), (250.0, 0.5)])
def test_noise_bank_is_bit_identical_to_wfdbs_reading(tmp_path, fs, minutes):
    from edge_ecg.config import AugmentConfig, WindowConfig
    from edge_ecg.beats.augment import load_noise_bank

    folder = _write_nstdb_like(tmp_path / "nstdb")
    window, cfg = WindowConfig(fs=fs), AugmentConfig(noise_minutes=minutes)
    bank = load_noise_bank(folder, window, cfg)
    ref = _wfdb_reference_bank(folder, window, cfg)
    assert set(bank.tracks) == set(ref) == set(cfg.noise_types)
    for name in ref:
        assert len(bank.tracks[name]) == len(ref[name]) == 2
        for got, want in zip(bank.tracks[name], ref[name]):
            assert got.dtype == np.float32 and len(got) == round(minutes * 60 * fs)
            np.testing.assert_array_equal(got, want)


@pytest.mark.realdata
def test_noise_bank_of_real_nstdb_is_bit_identical_to_wfdbs_reading(nstdb_dir):
    from edge_ecg.config import AugmentConfig, WindowConfig
    from edge_ecg.beats.augment import load_noise_bank

    window, cfg = WindowConfig(), AugmentConfig(noise_minutes=2.0)
    bank, ref = load_noise_bank(nstdb_dir, window, cfg), _wfdb_reference_bank(nstdb_dir, window, cfg)
    for name in ref:
        for got, want in zip(bank.tracks[name], ref[name]):
            np.testing.assert_array_equal(got, want)
