"""QualityMonitor: flat line, saturation and lead-off on synthetic signals (mV and ADC counts)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic_ecg

from edge_ecg.errors import DataError
from edge_ecg.signal import QualityMonitor

FS = 360.0


def ecg(n_beats: int = 30, seed: int = 0) -> np.ndarray:
    x, _, _ = synthetic_ecg(n_beats, fs=FS, seed=seed)
    return x


def to_adc(x_mv: np.ndarray) -> np.ndarray:
    """11-bit ADC counts, 200 counts per mV around 1024, clipped at the rails."""
    return np.clip(np.round(x_mv * 200 + 1024), 0, 2047)


def chunked(mon: QualityMonitor, x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 300))
        out.append(mon.process(x[i : i + n]))
        i += n
    return np.concatenate(out)


@pytest.mark.parametrize("units", ["mV", "adc"])
def test_a_clean_ecg_is_usable(units):
    x = ecg()
    x = to_adc(x) if units == "adc" else x
    mon = QualityMonitor(FS)
    assert not mon.process(x).any()
    assert mon.flags["lead_off"] == 0 and mon.episodes == 0


@pytest.mark.parametrize("units", ["mV", "adc"])
def test_flat_stretch_is_flagged_after_half_a_second(units):
    x = ecg(30)
    a, b = 10 * 360, 13 * 360  # 3 s of electrode off: a nearly constant level
    rng = np.random.default_rng(1)
    x[a:b] = 0.3 + 0.0005 * rng.standard_normal(b - a)
    x = to_adc(x) if units == "adc" else x
    mon = QualityMonitor(FS)
    mask = mon.process(x)
    w = int(0.5 * FS)
    assert mask[a + w : b].all()  # flagged once 0.5 s of it has been seen
    assert not mask[: a].any() and not mask[b + 5 :].any()
    assert mon.flags["flat"] == mask.sum() and mon.flags["saturated"] == 0
    assert mon.episodes == 1


def test_exactly_constant_from_the_start_is_flat():
    mon = QualityMonitor(FS)
    mask = mon.process(np.full(2 * 360, 2048.0))
    assert not mask[:179].any() and mask[179:].all()
    assert mon.flags["flat"] == mask.sum()


def test_a_long_pause_in_the_rhythm_is_not_flat():
    x, _, _ = synthetic_ecg(20, fs=FS, seed=2, rr_s=2.5)  # 24 bpm: 2 s without a QRS
    x += 0.003 * np.random.default_rng(2).standard_normal(x.size)
    assert not QualityMonitor(FS).process(x).any()


@pytest.mark.parametrize("rails", [None, (0.0, 2047.0)])
def test_pinned_at_the_rail_is_saturated(rails):
    x = ecg(30)
    a, b = 8 * 360, 9 * 360
    x[a:b] += 20.0  # a huge step: the ADC clips at its top
    adc = to_adc(x)
    assert (adc[a:b] == 2047).all()
    mon = QualityMonitor(FS, rails=rails)
    mask = mon.process(adc)
    n_sat = int(0.05 * FS)
    assert mask[a + n_sat - 1 : b].all()
    assert not mask[: a].any() and not mask[b + 200 :].any()
    assert mon.flags["saturated"] == b - a - n_sat + 1
    assert mon.flags["lead_off"] == mask.sum()


def test_the_tallest_r_peak_alone_is_not_saturation():
    x = to_adc(ecg(30))
    x[5000:5003] = x.max() + 1  # a few samples at a new maximum
    assert not QualityMonitor(FS).process(x).any()


def test_device_lead_off_flag():
    x = ecg(10)
    mon = QualityMonitor(FS)
    assert mon.process(x[:100], lead_off=True).all()
    flag = np.zeros(100, bool)
    flag[40:60] = True
    np.testing.assert_array_equal(mon.process(x[100:200], lead_off=flag), flag)
    assert mon.flags["device"] == 120 and mon.flags["lead_off"] == 120
    assert mon.episodes == 2
    with pytest.raises(DataError, match="lead_off"):
        mon.process(x[:10], lead_off=np.zeros(3, bool))


def test_mask_does_not_depend_on_chunking():
    x = ecg(40, seed=3)
    x[4000:5500] = 0.2
    x[9000:9400] = x.max()
    adc = to_adc(x)
    whole = QualityMonitor(FS).process(adc)
    assert whole.any()
    for seed in range(3):
        np.testing.assert_array_equal(chunked(QualityMonitor(FS), adc, seed), whole)


def test_non_finite_samples_are_unusable():
    x = ecg(5)
    x[100] = np.nan
    mask = QualityMonitor(FS).process(x)
    assert mask[100] and mask.sum() == 1


def test_bad_input_is_a_one_line_error():
    with pytest.raises(DataError, match="sampling rate"):
        QualityMonitor(0)
    with pytest.raises(DataError, match="rails"):
        QualityMonitor(FS, rails=(5, 1))
    with pytest.raises(DataError, match="1-D"):
        QualityMonitor(FS).process(np.zeros((3, 3)))
    assert QualityMonitor(FS).process([]).size == 0


@pytest.mark.realdata
def test_mitdb_clean_record_unflagged_and_clipped_record_flagged(mitdb_dir):
    from edge_ecg.records import load_record

    clean = load_record(mitdb_dir, "100", annotations=False).signal
    assert not QualityMonitor(360.0).process(clean).any()
    clipped = load_record(mitdb_dir, "116", annotations=False).signal  # clips at -5 mV twice
    mon = QualityMonitor(360.0)
    mon.process(clipped)
    assert mon.flags["saturated"] > 0.5 * 360
