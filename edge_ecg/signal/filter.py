"""Causal band-pass cleaning of an ECG, in one call or chunk by chunk."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps


def clean_sos(fs: float, highpass_hz: float = 0.5, lowpass_hz: float = 40.0, order: int = 2) -> np.ndarray:
    """Second-order sections of the Butterworth band-pass used by :func:`ecg_clean`."""
    return sps.butter(order, [highpass_hz, lowpass_hz], btype="bandpass", fs=fs, output="sos")


class StreamFilter:
    """A causal IIR filter whose state is carried from one chunk to the next.

    ``StreamFilter(sos).process(x)`` over consecutive chunks equals one call over their
    concatenation. The state starts at the steady state for the first sample seen, so a
    DC offset (ADC counts) does not ring at start-up.
    """

    def __init__(self, sos: np.ndarray):
        self.sos = np.asarray(sos, dtype=np.float64)
        self._zi: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the state (after a gap in the stream)."""
        self._zi = None

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Filter ``chunk`` (1-D, any units) and return float64 of the same length."""
        x = np.asarray(chunk, dtype=np.float64)
        if x.size == 0:
            return x
        if self._zi is None:
            self._zi = sps.sosfilt_zi(self.sos) * x[0]
        y, self._zi = sps.sosfilt(self.sos, x, zi=self._zi)
        return y


def ecg_clean(signal: np.ndarray, fs: float, highpass_hz: float = 0.5, lowpass_hz: float = 40.0) -> np.ndarray:
    """Remove baseline wander and high-frequency noise, causally.

    ``signal`` is 1-D (mV or ADC counts; the output keeps the unit), ``fs`` in Hz. A 2nd-order
    Butterworth band-pass (``highpass_hz``..``lowpass_hz``) applied forward only, exactly as
    :class:`StreamFilter` does on a live stream. Returns float64 of the same shape.
    """
    return StreamFilter(clean_sos(fs, highpass_hz, lowpass_hz)).process(signal)
