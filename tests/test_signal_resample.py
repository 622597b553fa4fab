"""StreamResampler: equals the offline ecg_resample delayed by .delay, whatever the chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import synthetic_ecg

from edge_ecg.errors import DataError
from edge_ecg.signal import StreamResampler, ecg_resample
from edge_ecg.signal.resample import resample_ratio


def stream(resampler: StreamResampler, x: np.ndarray, seed: int, hi: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, hi + 1))
        out.append(resampler.process(x[i : i + n]))
        i += n
    return np.concatenate(out)


def ecg_at(fs: float, seed: int = 0) -> np.ndarray:
    x, _, _ = synthetic_ecg(12, fs=360.0, seed=seed)
    x = x + 2.0  # an offset, as ADC counts have
    return x if fs == 360 else ecg_resample(x, 360.0, fs)


@pytest.mark.parametrize("fs_in", [125.0, 250.0, 360.0, 500.0])
def test_stream_equals_offline_delayed(fs_in):
    x = ecg_at(fs_in)
    offline = ecg_resample(x, fs_in, 180.0)
    rs = StreamResampler(fs_in, 180.0)
    out = stream(rs, x, seed=int(fs_in))
    assert out.size == offline.size == math.ceil(x.size * 180.0 / fs_in)
    d = rs.delay
    assert d > 0
    edge = 2 * d + 5  # the filter's reach at either end
    k = np.arange(edge, offline.size - d - edge)
    np.testing.assert_allclose(out[k + d], offline[k], rtol=0, atol=1e-9)


def test_identity_rate_passes_samples_through():
    x = ecg_at(360.0)
    rs = StreamResampler(360.0, 360.0)
    assert rs.delay == 0
    np.testing.assert_array_equal(stream(rs, x, seed=1), x)


@pytest.mark.parametrize("fs_in", [125.0, 360.0, 1000.0])
def test_single_samples_equal_one_call(fs_in):
    x = ecg_at(fs_in)[:3000]
    whole = StreamResampler(fs_in, 180.0).process(x)
    rs = StreamResampler(fs_in, 180.0)
    ones = np.concatenate([rs.process(x[i : i + 1]) for i in range(x.size)])
    np.testing.assert_array_equal(ones, whole)


def test_outputs_are_emitted_as_soon_as_their_time_has_come():
    rs = StreamResampler(125.0, 180.0)
    emitted = 0
    for n_in in range(1, 400):
        emitted += rs.process(np.zeros(1)).size
        assert emitted == math.ceil(n_in * 180 / 125)


@pytest.mark.parametrize("fs_in", [125.0, 250.0, 500.0])
def test_sample_index_mapping(fs_in):
    """Input sample i lands on output index i * fs_out / fs_in + delay."""
    x = np.zeros(int(4 * fs_in))
    i = int(2 * fs_in) + 3
    x[i - 2 : i + 3] = [0.25, 0.75, 1.0, 0.75, 0.25]  # a smooth bump centred on i
    rs = StreamResampler(fs_in, 180.0)
    out = rs.process(x)
    expected = i * 180.0 / fs_in + rs.delay
    assert abs(int(np.argmax(out)) - expected) <= 0.5 + 1e-9


def test_reset_starts_a_new_signal():
    x = ecg_at(250.0)
    rs = StreamResampler(250.0, 180.0)
    rs.process(x[:777])
    rs.reset()
    np.testing.assert_array_equal(rs.process(x), StreamResampler(250.0, 180.0).process(x))


def test_start_does_not_ring_on_an_offset():
    rs = StreamResampler(360.0, 180.0)
    out = rs.process(np.full(1000, 2048.0))
    np.testing.assert_allclose(out, 2048.0, rtol=1e-9)


def test_offline_resample_is_unchanged():
    x = ecg_at(360.0)
    y = ecg_resample(x, 360.0, 180.0)
    assert y.size == math.ceil(x.size / 2)
    assert resample_ratio(360.0, 180.0) == (1, 2)
    assert resample_ratio(125.0, 180.0) == (36, 25)


def test_bad_input_is_a_one_line_error():
    with pytest.raises(DataError, match="positive"):
        StreamResampler(0, 180)
    with pytest.raises(DataError, match="1-D"):
        StreamResampler(360, 180).process(np.zeros((4, 2)))
    assert StreamResampler(360, 180).process([]).size == 0


def test_width_10_is_scipys_own_design():
    from scipy.signal import resample_poly

    x = ecg_at(360.0)
    for fs_in in (360.0, 250.0):
        xi = x if fs_in == 360 else ecg_at(fs_in)
        up, down = resample_ratio(fs_in, 180.0)
        np.testing.assert_allclose(
            ecg_resample(xi, fs_in, 180.0, width=10), resample_poly(xi, up, down, padtype="line"), atol=1e-9
        )


@pytest.mark.parametrize("width", [1, 2, 3, 10])
def test_look_ahead_is_width_samples_at_the_lower_rate(width):
    rs = StreamResampler(360.0, 180.0, width=width)
    assert rs.delay == width
    x = ecg_at(360.0)
    offline = ecg_resample(x, 360.0, 180.0, width=width)
    out = stream(rs, x, seed=width)
    k = np.arange(3 * width + 5, offline.size - 3 * width - 5)
    np.testing.assert_allclose(out[k + width], offline[k], rtol=0, atol=1e-9)


def test_default_width_keeps_the_ecg_band():
    """Width 2 (11 ms of look-ahead at 180 Hz) passes 0-40 Hz within 0.5 dB, like width 10."""
    t = np.arange(0, 20, 1 / 360.0)
    for f_hz in (5.0, 20.0, 40.0):
        y = ecg_resample(np.sin(2 * np.pi * f_hz * t), 360.0, 180.0)
        gain_db = 20 * np.log10(np.std(y[400:-400]) / np.std(np.sin(2 * np.pi * f_hz * t[400:-400])))
        assert -0.55 < gain_db < 0.1, (f_hz, gain_db)


def test_bad_width_is_a_one_line_error():
    with pytest.raises(DataError, match="width"):
        StreamResampler(360, 180, width=0)
    with pytest.raises(DataError, match="width"):
        ecg_resample(np.zeros(100), 360, 180, width=1.5)
