"""Training-time augmentation of beat windows, with real noise from nstdb.

The noise bank holds the electrode-motion (``em``), muscle (``ma``) and baseline-wander
(``bw``) records of the MIT-BIH Noise Stress Test Database, both channels, **only their
first** ``AugmentConfig.noise_minutes`` **minutes** (the rest is kept unseen for the
noise-robustness tests), resampled to ``window.fs`` and cleaned with the same causal
``ecg_clean`` as the ECG, so the model sees noise as it would arrive after the filter.

:func:`augment_windows` then, per window and with its own random draws:

1. resamples it by a factor ``1 ± rate_jitter`` about the R peak (sample-rate jitter) and
   shifts it by up to ``shift_max_s`` (R-peak detection jitter), linearly interpolated;
2. with probability ``noise_prob`` adds a random stretch of one noise record at a random
   SNR in ``snr_db_range`` (dB, relative to the window's own power);
3. with probability ``wander_prob`` adds a slow sinusoid (0.05-0.5 Hz) as residual
   baseline wander;
4. normalises again with :func:`edge_ecg.beats.windows.normalise_window`, exactly like a
   clean window, then scales the amplitude by a factor in ``scale_range`` (the spread a
   window's normalised amplitude has in practice).

:func:`augment_rr` recomputes the past-only RR features from R positions perturbed as a QRS
detector perturbs them (jitter, missed beats, spurious beats), so that a model does not learn
decision boundaries finer than the detector on the device can feed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ecg.beats.rr import rr_features
from edge_ecg.beats.windows import normalise_window
from edge_ecg.config import AugmentConfig, WindowConfig
from edge_ecg.errors import DataError
from edge_ecg.signal.filter import ecg_clean
from edge_ecg.signal.resample import ecg_resample

#: nstdb noise records by AugmentConfig.noise_types name.
NOISE_RECORDS: tuple[str, ...] = ("em", "ma", "bw")


@dataclass
class NoiseBank:
    """Cleaned noise tracks at ``fs``: ``tracks[name]`` is a list of 1-D float32 arrays (one per channel)."""

    fs: float
    tracks: dict[str, list[np.ndarray]]
    minutes: float

    def draw(self, rng: np.random.Generator, n: int, length: int, types: tuple[str, ...]) -> np.ndarray:
        """``n`` random noise stretches ``(n, length)`` float32 from the given ``types``."""
        out = np.empty((n, length), dtype=np.float32)
        for i in range(n):
            tracks = self.tracks[types[rng.integers(len(types))]]
            track = tracks[rng.integers(len(tracks))]
            start = rng.integers(0, len(track) - length)
            out[i] = track[start:start + length]
        return out


def load_noise_bank(nstdb_dir: str | Path, window: WindowConfig, cfg: AugmentConfig) -> NoiseBank:
    """The first ``cfg.noise_minutes`` minutes of each nstdb noise record, cleaned, at ``window.fs``.

    Raises :class:`DataError` when ``nstdb_dir`` lacks one of ``cfg.noise_types``.
    """
    import wfdb

    nstdb_dir = Path(nstdb_dir)
    tracks: dict[str, list[np.ndarray]] = {}
    for name in cfg.noise_types:
        if name not in NOISE_RECORDS:
            raise DataError(f"unknown noise type {name!r}; nstdb has {', '.join(NOISE_RECORDS)}")
        if not (nstdb_dir / f"{name}.hea").is_file():
            raise DataError(f"{nstdb_dir / (name + '.hea')}: nstdb noise record missing (needed for augmentation)")
        header = wfdb.rdheader(str(nstdb_dir / name))
        keep = int(round(cfg.noise_minutes * 60.0 * header.fs))
        rec = wfdb.rdrecord(str(nstdb_dir / name), sampto=min(keep, header.sig_len))
        chans = []
        for c in range(rec.p_signal.shape[1]):
            x = np.nan_to_num(rec.p_signal[:, c].astype(np.float64))
            x = ecg_resample(x, float(header.fs), window.fs, window.resample_width)
            chans.append(ecg_clean(x, window.fs, window.highpass_hz, window.lowpass_hz).astype(np.float32))
        tracks[name] = chans
    return NoiseBank(fs=window.fs, tracks=tracks, minutes=cfg.noise_minutes)


def find_nstdb(mitdb_dir: str | Path | None = None, nstdb: str | Path | None = None) -> Path:
    """The nstdb folder: ``nstdb`` if given, else ``<mitdb_dir>/../nstdb``, else the usual places."""
    from edge_ecg.records.locate import find_database, is_wfdb_dir

    if nstdb is not None:
        return find_database("nstdb", nstdb)
    if mitdb_dir is not None:
        sibling = Path(mitdb_dir).resolve().parent / "nstdb"
        if is_wfdb_dir(sibling):
            return sibling
    try:
        return find_database("nstdb")
    except DataError:
        raise DataError(
            "no nstdb data for noise augmentation (looked beside the mitdb folder and in the usual places); "
            "run `edge-ecg data fetch --db nstdb`, pass --noise-data DIR, or set augment.noise_prob = 0"
        ) from None


def warp_windows(X: np.ndarray, rng: np.random.Generator, pre: int, rate_jitter: float, shift_max: int) -> np.ndarray:
    """Resample each window ``(n, L)`` by ``1 ± rate_jitter`` about index ``pre`` and shift it by
    up to ``shift_max`` samples; linear interpolation, edges repeated. Returns float32 ``(n, L)``."""
    n, L = X.shape
    factor = 1.0 + rng.uniform(-rate_jitter, rate_jitter, size=(n, 1)) if rate_jitter > 0 else np.ones((n, 1))
    shift = rng.integers(-shift_max, shift_max + 1, size=(n, 1)) if shift_max > 0 else np.zeros((n, 1))
    pos = pre + (np.arange(L)[None, :] - pre) * factor + shift
    pos = np.clip(pos, 0, L - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, L - 1)
    frac = (pos - lo).astype(np.float32)
    rows = np.arange(n)[:, None]
    return (X[rows, lo] * (1 - frac) + X[rows, hi] * frac).astype(np.float32)


def augment_windows(
    X: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    window: WindowConfig,
    noise: NoiseBank | None = None,
) -> np.ndarray:
    """An augmented copy of normalised windows ``X`` ``(n, L)`` float32 (see the module doc).

    Noise is skipped when ``noise`` is None. Deterministic for a given ``rng`` state.
    """
    X = np.asarray(X, dtype=np.float32)
    n, L = X.shape
    if not cfg.enabled or n == 0:
        return X.copy()
    out = warp_windows(X, rng, window.pre, cfg.rate_jitter, int(round(cfg.shift_max_s * window.fs)))
    if noise is not None and cfg.noise_prob > 0:
        pick = rng.random(n) < cfg.noise_prob
        k = int(pick.sum())
        if k:
            nz = noise.draw(rng, k, L, tuple(cfg.noise_types))
            nz -= nz.mean(axis=1, keepdims=True)
            sig = out[pick]
            p_sig = np.mean((sig - sig.mean(axis=1, keepdims=True)) ** 2, axis=1)
            p_noise = np.maximum(np.mean(nz**2, axis=1), 1e-12)
            snr = rng.uniform(cfg.snr_db_range[0], cfg.snr_db_range[1], size=k)
            gain = np.sqrt(p_sig / (p_noise * 10.0 ** (snr / 10.0)))
            out[pick] = sig + gain[:, None].astype(np.float32) * nz
    if cfg.wander_prob > 0:
        pick = rng.random(n) < cfg.wander_prob
        k = int(pick.sum())
        if k:
            t = np.arange(L)[None, :] / window.fs
            freq = rng.uniform(0.05, 0.5, size=(k, 1))
            phase = rng.uniform(0, 2 * np.pi, size=(k, 1))
            amp = rng.uniform(0, cfg.wander_amplitude, size=(k, 1))
            out[pick] += (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    out = normalise_window(out, window.normalise)
    lo, hi = cfg.scale_range
    out *= rng.uniform(lo, hi, size=(n, 1)).astype(np.float32)
    return out


#: No spurious beat is placed closer than this (s) to a real one: a detector's refractory period.
SPURIOUS_GUARD_S = 0.2


def detector_like_beats(
    samples: np.ndarray, rng: np.random.Generator, fs: float, jitter_s: float, miss_prob: float, extra_prob: float,
) -> tuple[np.ndarray, np.ndarray]:
    """R positions as a QRS detector might report the reference ones.

    ``samples``: ascending R-peak indices (samples at ``fs`` Hz). Each moves by a normal
    jitter of ``jitter_s`` seconds, is dropped with probability ``miss_prob``; each interval
    longer than twice :data:`SPURIOUS_GUARD_S` gains a spurious beat with probability
    ``extra_prob``. Returns ``(positions, origin)``: strictly ascending int64 positions and,
    for each, the index into ``samples`` it came from (-1 for a spurious beat).
    """
    samples = np.asarray(samples, dtype=np.int64)
    n = len(samples)
    pos = samples.astype(np.float64)
    if jitter_s > 0:
        pos = pos + rng.normal(0.0, jitter_s * fs, size=n)
    keep = rng.random(n) >= miss_prob if miss_prob > 0 else np.ones(n, dtype=bool)
    origin = np.flatnonzero(keep)
    pos = pos[keep]
    if extra_prob > 0 and n > 1:
        guard = SPURIOUS_GUARD_S * fs
        gaps = np.diff(samples).astype(np.float64)
        pick = np.flatnonzero((rng.random(n - 1) < extra_prob) & (gaps > 2 * guard))
        extra = samples[pick] + guard + rng.random(len(pick)) * (gaps[pick] - 2 * guard)
        pos = np.concatenate([pos, extra])
        origin = np.concatenate([origin, np.full(len(extra), -1)])
    order = np.argsort(pos, kind="stable")
    pos, origin = np.rint(pos[order]).astype(np.int64), origin[order]
    steps = np.arange(len(pos))
    pos = np.maximum.accumulate(pos - steps) + steps  # strictly ascending
    return pos, origin


def augment_rr(
    rr: np.ndarray, record: np.ndarray, sample: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
    window: WindowConfig,
) -> np.ndarray:
    """RR features ``(n, F)`` float32 recomputed from detector-like R positions, record by record.

    ``rr``, ``record`` and ``sample`` are a :class:`edge_ecg.beats.dataset.BeatSet`'s arrays
    (``sample`` at ``window.fs``, ascending within a record). A beat dropped from the history
    keeps its reference features (a detector that misses it would not classify it at all).
    Returns ``rr`` itself when augmentation or all ``rr_*`` settings are off.
    """
    if not cfg.enabled or not (cfg.rr_jitter_s or cfg.rr_miss_prob or cfg.rr_extra_prob) or len(rr) == 0:
        return rr
    out = np.array(rr, dtype=np.float32, copy=True)
    for name in np.unique(record):
        idx = np.flatnonzero(record == name)
        pos, origin = detector_like_beats(sample[idx], rng, window.fs, cfg.rr_jitter_s, cfg.rr_miss_prob,
                                          cfg.rr_extra_prob)
        feats = rr_features(pos, window.fs, window.rr_features)
        real = origin >= 0
        out[idx[origin[real]]] = feats[real]
    return out
