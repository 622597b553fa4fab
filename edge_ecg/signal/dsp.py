"""The few DSP primitives the device side needs, in plain numpy.

``scipy.signal`` pulls ``scipy.stats``, ``optimize``, ``sparse`` and more into memory when
imported (about 100 MB resident), more than everything else a stream run needs together.
The streaming pipeline uses only these, so they live here without scipy:

- :func:`butter_sos`: Butterworth low/high/band-pass design as second-order sections,
  the same filters as ``scipy.signal.butter(..., output="sos")`` (analog prototype,
  pre-warped bilinear transform);
- :func:`sosfilt_zi`: steady-state initial conditions (as ``scipy.signal.sosfilt_zi``);
- :class:`SosFilter`: a causal cascade run as one state-space system in blocks of
  :data:`BLOCK` samples, with state carried between calls;
- :func:`firwin_kaiser`: the windowed-sinc low-pass ``scipy.signal.firwin`` designs;
- :func:`group_delay_at`, :func:`trailing_max`.

:class:`SosFilter` is exact with respect to chunking by construction: block boundaries
sit at fixed sample counts from the start, and every block is computed with the same
fixed-shape products whatever part of it has arrived, so a signal fed in one call, in
random chunks or one sample at a time gives bit-identical output. The training side may
use scipy freely; the numbers agree with scipy's to ~1e-12 (tested).
"""

from __future__ import annotations

import numpy as np

#: Samples per block of :class:`SosFilter` (work per call is ``O(BLOCK**2)``).
BLOCK = 64


# --------------------------------------------------------------------------- design


def _prototype_poles(order: int) -> np.ndarray:
    """Poles of the analog Butterworth low-pass prototype (cut-off 1 rad/s)."""
    k = np.arange(order)
    return np.exp(1j * np.pi * (2 * k + order + 1) / (2 * order))


def butter_sos(order: int, cutoff_hz, fs: float, btype: str = "bandpass") -> np.ndarray:
    """Digital Butterworth filter as second-order sections ``(n_sections, 6)``.

    ``btype`` is ``lowpass``, ``highpass`` (one cut-off in Hz) or ``bandpass`` (a
    ``(low, high)`` pair in Hz); ``fs`` in Hz. Each section is ``[b0, b1, b2, 1, a1, a2]``.
    """
    if order < 1:
        raise ValueError("order must be >= 1")
    edges = np.atleast_1d(np.asarray(cutoff_hz, dtype=np.float64))
    if np.any(edges <= 0) or np.any(edges >= fs / 2):
        raise ValueError(f"cut-offs must lie strictly between 0 and fs/2 = {fs / 2} Hz, got {edges}")
    warped = 2.0 * fs * np.tan(np.pi * edges / fs)  # pre-warp for the bilinear transform
    p = _prototype_poles(order)
    if btype == "lowpass":
        p_a, n_zeros_at_0, gain = p * warped[0], 0, warped[0] ** order
    elif btype == "highpass":
        p_a, n_zeros_at_0, gain = warped[0] / p, order, 1.0
    elif btype == "bandpass":
        if edges.size != 2 or edges[0] >= edges[1]:
            raise ValueError("bandpass needs (low, high) cut-offs with low < high")
        bw, w0 = warped[1] - warped[0], np.sqrt(warped[0] * warped[1])
        half = p * bw / 2.0
        root = np.sqrt(half**2 - w0**2)
        p_a, n_zeros_at_0, gain = np.concatenate([half + root, half - root]), order, bw**order
    else:
        raise ValueError(f"unknown filter type {btype!r}")
    # bilinear transform: s -> 2 fs (z - 1) / (z + 1)
    fs2 = 2.0 * fs
    p_d = (fs2 + p_a) / (fs2 - p_a)
    n_poles = p_a.size
    zeros = np.concatenate([np.ones(n_zeros_at_0), -np.ones(n_poles - n_zeros_at_0)])  # s=0 -> +1, s=inf -> -1
    k = gain * np.real(fs2**n_zeros_at_0 / np.prod(fs2 - p_a))
    if btype == "highpass":
        k = np.real(1.0 / np.prod(-p)) * np.real(fs2**order / np.prod(fs2 - p_a))
    return _zpk_to_sos(zeros, p_d, k)


def _zpk_to_sos(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    """Pair conjugate poles (and real zeros two by two) into sections; gain in the first."""
    upper = poles[poles.imag > 1e-12]
    real = np.sort(poles[np.abs(poles.imag) <= 1e-12].real)
    sections_a = [np.array([1.0, -2.0 * q.real, abs(q) ** 2]) for q in upper[np.argsort(np.abs(upper))]]
    for i in range(0, real.size, 2):
        pair = real[i : i + 2]
        sections_a.append(np.real(np.poly(pair)) if pair.size == 2 else np.array([1.0, -pair[0], 0.0]))
    zs = list(np.sort(zeros.real))
    sos = []
    for a in sections_a:
        first_order = a[2] == 0.0 and len(zs) % 2 == 1
        take = [zs.pop(0)] if first_order else [zs.pop(0), zs.pop(-1)]
        b = np.real(np.poly(take))
        sos.append(np.concatenate([np.pad(b, (0, 3 - b.size)), a]))
    out = np.array(sos)
    out[0, :3] *= gain
    return out


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """Initial state ``(n_sections, 2)`` for a unit step's steady state (times the first sample)."""
    sos = np.asarray(sos, dtype=np.float64)
    zi = np.empty((sos.shape[0], 2))
    scale = 1.0
    for s, (b0, b1, b2, a0, a1, a2) in enumerate(sos):
        b = np.array([b0, b1, b2]) / a0
        a = np.array([1.0, a1 / a0, a2 / a0])
        companion = np.array([[-a[1], 1.0], [-a[2], 0.0]])
        rhs = b[1:] - a[1:] * b[0]
        zi[s] = scale * np.linalg.solve(np.eye(2) - companion, rhs)
        scale *= b.sum() / a.sum()
    return zi


def firwin_kaiser(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """Linear-phase low-pass FIR, Kaiser window, unity gain at DC.

    ``cutoff`` is a fraction of the Nyquist frequency (as ``scipy.signal.firwin`` with its
    default ``fs=2``).
    """
    m = np.arange(numtaps) - (numtaps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


def sos_response(sos: np.ndarray, hz, fs: float) -> np.ndarray:
    """Complex frequency response of ``sos`` at the frequencies ``hz`` (Hz)."""
    z = np.exp(-1j * 2 * np.pi * np.atleast_1d(np.asarray(hz, dtype=np.float64)) / fs)
    h = np.ones_like(z)
    for b0, b1, b2, a0, a1, a2 in np.asarray(sos, dtype=np.float64):
        h *= (b0 + b1 * z + b2 * z**2) / (a0 + a1 * z + a2 * z**2)
    return h


def group_delay_at(sos: np.ndarray, hz: float, fs: float) -> float:
    """Group delay of ``sos`` at ``hz`` Hz, in samples (numerical derivative of the phase)."""
    dw = 1e-4 * fs
    phase = np.unwrap(np.angle(sos_response(sos, [hz - dw, hz + dw], fs)))
    return float(-(phase[1] - phase[0]) / (2 * np.pi * 2 * dw / fs))


def trailing_max(a: np.ndarray, width: int) -> np.ndarray:
    """``out[i] = max(a[i - width + 1 : i + 1])``; samples before ``a[0]`` count as -inf."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0 or width <= 1:
        return a.copy()
    # van Herk / Gil-Werman: O(n) whatever the width. In blocks of `width` samples, `ahead` is the
    # running max from each block's start, `behind` the max from each sample to its block's end;
    # window [i - width + 1, i] spans at most two blocks, so its max is max(behind[i - width + 1], ahead[i]).
    padded = np.concatenate([np.full(width - 1, -np.inf), a])
    n_blocks = -(-padded.size // width)
    blocks = np.full(n_blocks * width, -np.inf)
    blocks[: padded.size] = padded
    blocks = blocks.reshape(n_blocks, width)
    ahead = np.maximum.accumulate(blocks, axis=1).ravel()
    behind = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.maximum(behind[: a.size], ahead[width - 1 : width - 1 + a.size])


def trailing_min(a: np.ndarray, width: int) -> np.ndarray:
    """``out[i] = min(a[i - width + 1 : i + 1])``; samples before ``a[0]`` count as +inf."""
    return -trailing_max(-np.asarray(a, dtype=np.float64), width)


# --------------------------------------------------------------------------- filtering


def _state_space(sos: np.ndarray):
    """``(A, B, C, D)`` of the cascade, the state being each section's DF-II-T pair."""
    sos = np.asarray(sos, dtype=np.float64)
    n = 2 * sos.shape[0]
    A, B = np.zeros((n, n)), np.zeros(n)
    c_in, d_in = np.zeros(n), 1.0  # the current section's input as c_in @ X + d_in * u
    for s, (b0, b1, b2, a0, a1, a2) in enumerate(sos):
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        i = 2 * s
        bs = np.array([b1 - a1 * b0, b2 - a2 * b0])
        A[i : i + 2, i : i + 2] = [[-a1, 1.0], [-a2, 0.0]]
        A[i : i + 2] += np.outer(bs, c_in)
        B[i : i + 2] = bs * d_in
        c_out = b0 * c_in
        c_out[i] += 1.0
        c_in, d_in = c_out, b0 * d_in
    return A, B, c_in, d_in


class SosFilter:
    """A causal IIR cascade with state carried across calls, exact under any chunking.

    ``sos`` as from :func:`butter_sos`. The state starts at the steady state for the first
    sample seen (so an ADC offset does not ring at start-up). :meth:`process` returns
    float64 outputs, one per input sample.
    """

    def __init__(self, sos: np.ndarray):
        self.sos = np.asarray(sos, dtype=np.float64)
        A, B, C, D = _state_space(self.sos)
        n = BLOCK
        powers = [np.eye(A.shape[0])]
        for _ in range(n):
            powers.append(A @ powers[-1])
        h = np.concatenate([[D], [C @ powers[k] @ B for k in range(n - 1)]])
        self._T = np.zeros((n, n))  # y = T u + O x over one block
        for k in range(n):
            self._T[k, : k + 1] = h[k::-1]
        self._O = np.array([C @ powers[k] for k in range(n)])
        self._An = powers[n]  # x_next = An x + R u
        self._R = np.stack([powers[n - 1 - k] @ B for k in range(n)], axis=1)
        self._zi_unit = sosfilt_zi(self.sos).reshape(-1)
        self.reset()

    def reset(self) -> None:
        """Forget the state (after a gap in the stream)."""
        self._x: np.ndarray | None = None  # state at the start of the current block
        self._u = np.zeros(BLOCK)  # the current block's inputs (zeros where not yet arrived)
        self._filled = 0  # inputs in the current block

    def process(self, chunk) -> np.ndarray:
        """Filter the next samples (1-D); float64 of the same length."""
        x = np.asarray(chunk, dtype=np.float64).reshape(-1)
        out = np.empty(x.size)
        if x.size == 0:
            return out
        if self._x is None:
            self._x = self._zi_unit * x[0]
        done = 0
        while done < x.size:
            take = min(BLOCK - self._filled, x.size - done)
            start = self._filled
            self._u[start : start + take] = x[done : done + take]
            self._filled += take
            y = self._T @ self._u + self._O @ self._x
            out[done : done + take] = y[start : start + take]
            done += take
            if self._filled == BLOCK:
                self._x = self._An @ self._x + self._R @ self._u
                self._u = np.zeros(BLOCK)
                self._filled = 0
        return out
