"""Changing an ECG's sampling rate (e.g. 360 Hz records to a 180 Hz model)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from edge_ecg.errors import DataError
from edge_ecg.signal.dsp import firwin_kaiser

#: Default anti-alias filter half-length, in samples at the lower of the two rates. 2 keeps the
#: pass band flat to within 0.5 dB up to 40 Hz (the cleaning filter's corner) for 360 -> 180 Hz
#: and costs a stream only 11 ms of look-ahead; scipy's ``resample_poly`` uses 10 (56 ms).
RESAMPLE_WIDTH = 2


def resample_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """``(up, down)`` integers with ``fs_in * up / down == fs_out`` (to 1e-6 relative)."""
    if fs_in <= 0 or fs_out <= 0:
        raise DataError(f"sampling rates must be positive (got {fs_in} Hz -> {fs_out} Hz)")
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    if abs(float(ratio) - fs_out / fs_in) > 1e-6 * fs_out / fs_in:
        raise DataError(f"cannot resample {fs_in} Hz to {fs_out} Hz with a rational ratio")
    return ratio.numerator, ratio.denominator


def ecg_resample(signal: np.ndarray, fs_in: float, fs_out: float, width: int = RESAMPLE_WIDTH) -> np.ndarray:
    """Resample ``signal`` (1-D) from ``fs_in`` to ``fs_out`` Hz with a polyphase FIR.

    Zero-phase (``scipy.signal.resample_poly`` with :func:`resample_filter`'s FIR, edges
    extended along the signal's own line so an ADC offset does not ring), so sample ``i`` at
    ``fs_in`` stays at ``i * fs_out / fs_in``. ``width`` is the filter's half-length in samples
    at the lower rate (see :data:`RESAMPLE_WIDTH`; a model records its own in
    ``WindowConfig.resample_width``). Returns float64 of length ``ceil(n * fs_out / fs_in)``.
    """
    x = np.asarray(signal, dtype=np.float64)
    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return x.copy()
    from scipy import signal as sps  # offline only: the stream uses StreamResampler

    h, _ = resample_filter(up, down, width)
    return sps.resample_poly(x, up, down, window=h / up, padtype="line")  # scipy applies the gain ``up``


def resample_filter(up: int, down: int, width: int = RESAMPLE_WIDTH) -> tuple[np.ndarray, int]:
    """``(h, half_len)``: the anti-alias FIR for resampling by ``up``/``down``.

    Kaiser window (beta 5), cut-off at the lower rate's Nyquist frequency, half length
    ``width * max(up, down)`` taps at the ``up``-fold rate, gain ``up``: scipy's
    ``resample_poly`` design with ``width`` in place of its fixed 10. :func:`ecg_resample`
    and :class:`StreamResampler` share it, so offline and streaming outputs agree.
    """
    if int(width) != width or width < 1:
        raise DataError(f"resample width must be a whole number of samples >= 1, got {width}")
    max_rate = max(up, down)
    half_len = int(width) * max_rate
    h = firwin_kaiser(2 * half_len + 1, 1.0 / max_rate, beta=5.0) * up
    return h, half_len


class StreamResampler:
    """Resample a live ECG from ``fs_in`` to ``fs_out`` Hz chunk by chunk, with carried state.

    The output equals :func:`ecg_resample` of the whole signal delayed by :attr:`delay`
    output samples: ``stream_out[k + delay] == ecg_resample(whole)[k]`` (to float rounding)
    for every ``k`` whose filter support lies inside the signal (away from the first and
    last ``half_len / up`` input samples). Before the first sample the input is taken as
    held at its first value (offline extends it along a line), so an ADC offset does not
    ring; the first ``delay`` outputs are that start-up.

    Index mapping: input sample ``i`` (at ``fs_in``) sits at output index
    ``i * fs_out / fs_in + delay``; output index ``k`` sits at input time
    ``(k - delay) * fs_in / fs_out`` samples. After ``n`` input samples, exactly
    ``ceil(n * fs_out / fs_in)`` outputs have been returned (as many as ``ecg_resample``
    would return for those ``n``), so output ``k`` is emitted as soon as input sample
    ``ceil(k * fs_in / fs_out)`` has arrived. ``delay`` is 0 when ``fs_in == fs_out`` and
    ``width`` output samples when downsampling (e.g. 2 samples, 11 ms, for 360 -> 180 Hz
    with the default width; scipy's width 10 would cost 56 ms).
    """

    def __init__(self, fs_in: float, fs_out: float, width: int = RESAMPLE_WIDTH):
        self.fs_in, self.fs_out = float(fs_in), float(fs_out)
        self.up, self.down = resample_ratio(fs_in, fs_out)
        if self.up == self.down:
            self._bank = None
            self._half_len = 0
            self.delay = 0
        else:
            h, self._half_len = resample_filter(self.up, self.down, width)
            # polyphase bank: bank[phase, k] = h[phase + k * up]
            taps = -(-h.size // self.up)
            padded = np.zeros(taps * self.up + self.up)
            padded[: h.size] = h
            self._bank = np.stack([padded[p : p + taps * self.up : self.up] for p in range(self.up)])
            self._taps = taps
            #: Output samples by which the stream lags the zero-phase offline resampling.
            self.delay = -(-self._half_len // self.down)
        self.reset()

    def reset(self) -> None:
        """Start afresh (after a gap): the next chunk is treated as a new signal."""
        self._n_in = 0  # input samples seen
        self._n_out = 0  # outputs emitted
        self._hist = np.zeros(0)  # the last input samples
        self._first: float | None = None

    def process(self, chunk) -> np.ndarray:
        """Resample the next input samples (1-D, any unit); return the outputs now due (float64)."""
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 1:
            raise DataError(f"StreamResampler.process expects a 1-D chunk of samples, got shape {x.shape}")
        if x.size == 0:
            return np.zeros(0)
        if self._bank is None:
            self._n_in += x.size
            return x.copy()
        if self._first is None:
            self._first = float(x[0])
        hist_start = self._n_in - self._hist.size  # absolute index of self._hist[0]
        buf = np.concatenate([self._hist, x])
        self._n_in += x.size
        n_total = -(-self._n_in * self.up // self.down)  # ceil(n * up / down)
        k = np.arange(self._n_out, n_total, dtype=np.int64)
        out = np.zeros(k.size)
        if k.size:
            j = k - self.delay  # zero-phase output index
            t = j * self.down + self._half_len
            i_max = t // self.up  # newest input sample each output needs
            phase = t - i_max * self.up
            lo = min(int(i_max.min()) - self._taps + 1, hist_start)
            if lo < hist_start:  # before the first sample: hold its value
                pad = np.full(hist_start - lo, self._first)
                buf = np.concatenate([pad, buf])
                hist_start = lo
            for s in range(0, k.size, 4096):  # bounded temporary memory
                rows = slice(s, s + 4096)
                gather = (i_max[rows, None] - hist_start) - np.arange(self._taps)[None, :]
                out[rows] = np.einsum("ij,ij->i", buf[gather], self._bank[phase[rows]])
            self._n_out = n_total
        keep = self._taps + self.down // self.up + 2  # what the next output can reach back to
        self._hist = buf[-keep:] if buf.size > keep else buf
        return out
