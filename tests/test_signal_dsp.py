"""numpy-only DSP against scipy.signal (the reference) and chunk exactness."""

import numpy as np
import pytest
from scipy import signal as sps

from edge_ecg.signal import dsp

CASES = [
    (2, (0.5, 40.0), 180.0, "bandpass"),
    (2, (5.0, 15.0), 360.0, "bandpass"),
    (3, (1.0, 30.0), 250.0, "bandpass"),
    (4, 40.0, 500.0, "lowpass"),
    (3, 25.0, 125.0, "lowpass"),
    (2, 0.5, 180.0, "highpass"),
    (1, 0.7, 360.0, "highpass"),
]


@pytest.mark.parametrize("order, cutoff, fs, btype", CASES)
def test_butter_matches_scipy(order, cutoff, fs, btype):
    ours = dsp.butter_sos(order, cutoff, fs, btype)
    ref = sps.butter(order, cutoff, btype=btype, fs=fs, output="sos")
    f = np.linspace(0.01, fs / 2 - 0.01, 300)
    _, h_ref = sps.sosfreqz(ref, worN=f, fs=fs)
    np.testing.assert_allclose(dsp.sos_response(ours, f, fs), h_ref, atol=1e-9)
    x = np.random.default_rng(0).standard_normal(3000) + 3.0
    zi_ref = sps.sosfilt_zi(ref) * x[0]
    y_ref, _ = sps.sosfilt(ref, x, zi=zi_ref)
    np.testing.assert_allclose(dsp.SosFilter(ours).process(x), y_ref, atol=1e-9)


def test_sosfilt_zi_matches_scipy():
    sos = sps.butter(2, (0.5, 40.0), btype="bandpass", fs=180.0, output="sos")
    np.testing.assert_allclose(dsp.sosfilt_zi(sos), sps.sosfilt_zi(sos), atol=1e-12)


def test_filter_is_bit_exact_under_any_chunking():
    sos = dsp.butter_sos(2, (0.5, 40.0), 180.0)
    x = np.random.default_rng(1).standard_normal(2000) * 300 + 1024
    whole = dsp.SosFilter(sos).process(x)
    rng = np.random.default_rng(2)
    f = dsp.SosFilter(sos)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 150))
        parts.append(f.process(x[i:i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    g = dsp.SosFilter(sos)
    np.testing.assert_array_equal(np.concatenate([g.process(x[i:i + 1]) for i in range(300)]), whole[:300])


def test_steady_state_start_and_reset():
    f = dsp.SosFilter(dsp.butter_sos(2, (0.5, 40.0), 180.0))
    assert np.abs(f.process(np.full(500, 2048.0))).max() < 1e-6  # a DC offset does not ring
    f.reset()
    assert np.abs(f.process(np.full(10, -7.0))).max() < 1e-9


def test_firwin_and_group_delay_match_scipy():
    np.testing.assert_allclose(dsp.firwin_kaiser(41, 0.5, 5.0), sps.firwin(41, 0.5, window=("kaiser", 5.0)), atol=1e-12)
    sos = sps.butter(2, (0.5, 40.0), btype="bandpass", fs=360.0, output="sos")
    b, a = sps.sos2tf(sos)
    _, gd = sps.group_delay((b, a), w=[15.0], fs=360.0)
    assert dsp.group_delay_at(sos, 15.0, 360.0) == pytest.approx(float(gd[0]), abs=1e-3)


def test_trailing_extremes():
    a = np.array([1.0, 5.0, 2.0, 0.0, 3.0])
    np.testing.assert_array_equal(dsp.trailing_max(a, 2), [1, 5, 5, 2, 3])
    np.testing.assert_array_equal(dsp.trailing_min(a, 3), [1, 1, 1, 0, 0])


@pytest.mark.parametrize("width", [1, 2, 3, 7, 64, 360, 1000])
def test_trailing_max_equals_the_direct_definition(width):
    rng = np.random.default_rng(width)
    for n in (1, 2, 5, 17, 359, 360, 361, 3601):
        a = rng.standard_normal(n).round(1)  # ties too
        direct = np.array([a[max(0, i - width + 1) : i + 1].max() for i in range(n)])
        np.testing.assert_array_equal(dsp.trailing_max(a, width), direct)


def test_bad_designs_are_refused():
    with pytest.raises(ValueError, match="between 0 and fs/2"):
        dsp.butter_sos(2, (0.5, 100.0), 180.0)
    with pytest.raises(ValueError, match="low < high"):
        dsp.butter_sos(2, (40.0, 0.5), 180.0)
