"""Causal band-pass cleaning of an ECG, in one call or chunk by chunk."""

from __future__ import annotations

import numpy as np

from edge_ecg.signal.dsp import SosFilter, butter_sos


def clean_sos(fs: float, highpass_hz: float = 0.5, lowpass_hz: float = 40.0, order: int = 2) -> np.ndarray:
    """Second-order sections of the Butterworth band-pass used by :func:`ecg_clean`."""
    return butter_sos(order, (highpass_hz, lowpass_hz), fs, "bandpass")


class StreamFilter(SosFilter):
    """A causal IIR filter whose state is carried from one chunk to the next.

    ``StreamFilter(sos).process(x)`` over consecutive chunks equals one call over their
    concatenation, bit for bit. The state starts at the steady state for the first sample
    seen, so a DC offset (ADC counts) does not ring at start-up; :meth:`reset` after a gap.
    """


def ecg_clean(signal: np.ndarray, fs: float, highpass_hz: float = 0.5, lowpass_hz: float = 40.0) -> np.ndarray:
    """Remove baseline wander and high-frequency noise, causally.

    ``signal`` is 1-D (mV or ADC counts; the output keeps the unit), ``fs`` in Hz. A 2nd-order
    Butterworth band-pass (``highpass_hz``..``lowpass_hz``) applied forward only, exactly as
    :class:`StreamFilter` does on a live stream. Returns float64 of the same shape.
    """
    return StreamFilter(clean_sos(fs, highpass_hz, lowpass_hz)).process(signal)
