"""Adding calibrated noise to an ECG, the way the MIT-BIH Noise Stress Test does.

SNR follows WFDB's ``nst`` (Moody, Muldrow, Mark. A noise stress test for arrhythmia
detectors. Computers in Cardiology 11:381-384, 1984): the signal power is that of a
sinusoid with the ECG's typical QRS peak-to-peak amplitude ``A`` (``S = A**2 / 8``), the
noise power is the noise's typical mean-square in 1-second chunks, and
``SNR = 10 log10(S / N)``. "Typical" is a mean with the largest and smallest 5 % of the
measurements left out, so a few odd beats or noise bursts do not set the scale.

nstdb's noise records are split in time: the **first** :data:`TRAIN_MINUTES` minutes are
for training (augmentation), the rest for noise-robustness tests. :func:`load_noise` hands
out one part or the other, never both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_ecg.errors import DataError

#: Minutes at the start of each nstdb noise record reserved for training.
TRAIN_MINUTES = 15.0
#: The noise records of nstdb: electrode motion, muscle artefact, baseline wander.
NOISE_TYPES = ("em", "ma", "bw")


def _trimmed_mean(values: np.ndarray, trim: float = 0.05) -> float:
    v = np.sort(np.asarray(values, dtype=np.float64))
    k = int(len(v) * trim)
    v = v[k: len(v) - k] if len(v) > 2 * k else v
    return float(v.mean()) if len(v) else 0.0


def qrs_amplitude(signal: np.ndarray, fs: float, beat_samples: np.ndarray, half_width_s: float = 0.05) -> float:
    """Typical QRS peak-to-peak amplitude (signal units) within ``±half_width_s`` of each beat."""
    x = np.asarray(signal, dtype=np.float64)
    h = max(1, int(round(half_width_s * fs)))
    beats = np.asarray(beat_samples, dtype=np.int64)
    beats = beats[(beats >= h) & (beats < len(x) - h)]
    if len(beats) == 0:
        raise DataError("cannot measure QRS amplitude: no beats away from the record's edges")
    idx = beats[:, None] + np.arange(-h, h + 1)[None, :]
    seg = x[idx]
    return _trimmed_mean(seg.max(axis=1) - seg.min(axis=1))


def noise_power(noise: np.ndarray, fs: float) -> float:
    """Typical mean-square (signal units²) of ``noise`` in 1-second chunks, each chunk's mean removed."""
    x = np.asarray(noise, dtype=np.float64)
    n = int(fs)
    chunks = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x.reshape(1, -1)
    return _trimmed_mean(chunks.var(axis=1))


def noise_gain(signal: np.ndarray, fs: float, beat_samples: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The factor that brings ``noise`` to ``snr_db`` against ``signal`` (nst's definition)."""
    s = qrs_amplitude(signal, fs, beat_samples) ** 2 / 8.0
    p = noise_power(noise, fs)
    if p <= 0:
        raise DataError("the noise segment is flat: cannot scale it to an SNR")
    return float(np.sqrt(s / (p * 10.0 ** (snr_db / 10.0))))


def add_noise(signal: np.ndarray, fs: float, beat_samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` plus ``noise`` scaled to ``snr_db`` dB; float64, same length as ``signal``.

    ``noise`` is at the same rate ``fs``; it is repeated when shorter than ``signal`` (as
    ``nst`` rewinds its noise record) and its mean is removed so the baseline stays put.
    """
    x = np.asarray(signal, dtype=np.float64)
    nz = np.asarray(noise, dtype=np.float64)
    if len(nz) == 0:
        raise DataError("empty noise segment")
    nz = np.resize(nz, len(x))
    nz = nz - nz.mean()
    return x + noise_gain(x, fs, beat_samples, nz, snr_db) * nz


def load_noise(nstdb_dir: str | Path, kind: str, part: str = "test", fs: float | None = None,
               channel: int = 0, minutes: float = TRAIN_MINUTES, width: int | None = None,
               dtype=np.float32) -> np.ndarray:
    """One nstdb noise channel in mV, float64: ``part="train"`` the first ``minutes`` (at most
    :data:`TRAIN_MINUTES`), ``"test"`` what follows the first :data:`TRAIN_MINUTES`.

    ``kind`` is ``em``, ``ma`` or ``bw``; ``fs`` resamples from nstdb's 360 Hz when given, with
    :func:`~edge_ecg.signal.resample.ecg_resample`'s filter half-length ``width`` (its default when
    None). ``dtype``: the precision the physical values are read at (float64: exact, as
    training's noise bank reads them).
    """
    from edge_ecg.records.load import read_signal
    from edge_ecg.signal.resample import ecg_resample

    if kind not in NOISE_TYPES:
        raise DataError(f"unknown noise type {kind!r}; nstdb has {', '.join(NOISE_TYPES)}")
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    if not 0 < minutes <= TRAIN_MINUTES:
        raise ValueError(f"minutes must be in (0, {TRAIN_MINUTES:g}], not {minutes!r}")
    x, rate, _ = read_signal(nstdb_dir, kind, channel, dtype=dtype)
    cut = int(round((minutes if part == "train" else TRAIN_MINUTES) * 60.0 * rate))
    x = x[:cut] if part == "train" else x[cut:]
    if not fs or fs == rate:
        return x.astype(np.float64)
    return ecg_resample(x, rate, fs) if width is None else ecg_resample(x, rate, fs, width)
