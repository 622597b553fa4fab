"""Beat-centred windows, normalised so that ADC gain and offset do not matter."""

from __future__ import annotations

import numpy as np

from edge_ecg.config import WindowConfig

_EPS = 1e-6


def normalise_window(x: np.ndarray, method: str = "robust") -> np.ndarray:
    """Normalise windows along their last axis; returns float32 of the same shape.

    ``robust``: subtract the median, divide by half the 1st-99th percentile range.
    ``zscore``: subtract the mean, divide by the standard deviation. Either way
    ``normalise_window(a * x + b) == normalise_window(x)`` for any gain ``a > 0`` and offset
    ``b``, so mV and raw ADC counts give the same model input. A flat window maps to zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    if method == "robust":
        centre = np.median(x, axis=-1, keepdims=True)
        lo, hi = np.percentile(x, [1.0, 99.0], axis=-1, keepdims=True)
        scale = 0.5 * (hi - lo)
    elif method == "zscore":
        centre = x.mean(axis=-1, keepdims=True)
        scale = x.std(axis=-1, keepdims=True)
    else:
        raise ValueError(f"unknown normalisation {method!r}")
    span = np.abs(centre) + 1.0
    flat = scale <= _EPS * span
    out = (x - centre) / np.where(flat, 1.0, scale)
    return np.where(flat, 0.0, out).astype(np.float32)


def extract_window(clean: np.ndarray, r_sample: int, window: WindowConfig) -> np.ndarray:
    """One normalised window ``(window.length,)`` around ``r_sample`` of ``clean`` (at ``window.fs``).

    The R peak sits at index ``window.pre``; samples beyond either end of ``clean`` repeat
    its edge value.
    """
    return beat_windows(clean, np.array([r_sample]), window)[0]


def beat_windows(clean: np.ndarray, r_samples: np.ndarray, window: WindowConfig) -> np.ndarray:
    """Normalised windows ``(n, window.length)`` float32 around each R peak in ``r_samples``.

    ``clean`` is the output of :func:`edge_ecg.signal.ecg_clean` at ``window.fs`` (1-D);
    ``r_samples`` are sample indices into it.
    """
    clean = np.asarray(clean, dtype=np.float32)
    r = np.asarray(r_samples, dtype=np.int64)
    if r.size == 0:
        return np.zeros((0, window.length), dtype=np.float32)
    padded = np.pad(clean, (window.pre, window.post), mode="edge")
    # R at index s of clean is at s + pre of padded; its window is padded[s : s + length].
    idx = r[:, None] + np.arange(window.length)[None, :]
    idx = np.clip(idx, 0, len(padded) - 1)
    return normalise_window(padded[idx], window.normalise)
