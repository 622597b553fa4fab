"""Changing an ECG's sampling rate (e.g. 360 Hz records to a 180 Hz model)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps

from edge_ecg.errors import DataError


def resample_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """``(up, down)`` integers with ``fs_in * up / down == fs_out`` (to 1e-6 relative)."""
    if fs_in <= 0 or fs_out <= 0:
        raise DataError(f"sampling rates must be positive (got {fs_in} Hz -> {fs_out} Hz)")
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    if abs(float(ratio) - fs_out / fs_in) > 1e-6 * fs_out / fs_in:
        raise DataError(f"cannot resample {fs_in} Hz to {fs_out} Hz with a rational ratio")
    return ratio.numerator, ratio.denominator


def ecg_resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample ``signal`` (1-D) from ``fs_in`` to ``fs_out`` Hz with a polyphase FIR.

    Zero-phase (``scipy.signal.resample_poly``, edges extended along the signal's own line so
    an ADC offset does not ring), so sample ``i`` at ``fs_in`` stays at
    ``i * fs_out / fs_in``. Returns float64 of length ``ceil(n * fs_out / fs_in)``.
    """
    x = np.asarray(signal, dtype=np.float64)
    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return x.copy()
    return sps.resample_poly(x, up, down, padtype="line")
