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
