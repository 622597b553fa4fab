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

Before all of these, with probability ``run_prob`` (0 by default: nothing drawn), an N or S
beat's context before its R peak becomes a synthetic run (:func:`tile_context`): its last
real cycle (from just before the previous beat to just before this one: the previous QRS-T
and this beat's P wave) repeated back to the window's start, so an S beat looks like one
inside a run of S beats at its own coupling interval; :func:`run_rr` makes its RR features
say the same (``prev_rr_ratio`` = ``pre_rr_ratio``). Issue 28: the S beats the shipped model
misses are those inside runs, which the training data barely has.

:func:`draw_augmentation` makes all of these draws for an epoch up front (a few numbers per
window) and :func:`apply_augmentation` applies them to any batch of windows, so windows streamed
from disk batch by batch are augmented exactly as the whole epoch at once would be.

:func:`augment_rr` recomputes the past-only RR features from R positions perturbed as a QRS
detector perturbs them (jitter, missed beats, spurious beats), so that a model does not learn
decision boundaries finer than the detector on the device can feed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ecg.beats.rr import beats_by_record, rr_features
from edge_ecg.beats.windows import normalise_window
from edge_ecg.config import AugmentConfig, WindowConfig
from edge_ecg.errors import DataError
from edge_ecg.signal.filter import ecg_clean
from edge_ecg.signal.noise import NOISE_TYPES

#: nstdb noise records by AugmentConfig.noise_types name.
NOISE_RECORDS: tuple[str, ...] = NOISE_TYPES


@dataclass
class NoiseBank:
    """Cleaned noise tracks at ``fs``: ``tracks[name]`` is a list of 1-D float32 arrays (one per channel)."""

    fs: float
    tracks: dict[str, list[np.ndarray]]
    minutes: float

    def pick(self, rng: np.random.Generator, n: int, length: int, types: tuple[str, ...]) -> np.ndarray:
        """Where ``n`` random noise stretches of ``length`` samples from ``types`` start: int64
        ``(n, 3)`` rows ``(index into types, track index, start sample)``."""
        out = np.empty((n, 3), dtype=np.int64)
        for i in range(n):
            t = rng.integers(len(types))
            tracks = self.tracks[types[t]]
            k = rng.integers(len(tracks))
            out[i] = t, k, rng.integers(0, len(tracks[k]) - length)
        return out

    def cut(self, where: np.ndarray, length: int, types: tuple[str, ...]) -> np.ndarray:
        """The stretches ``(len(where), length)`` float32 that :meth:`pick` chose from ``types``."""
        out = np.empty((len(where), length), dtype=np.float32)
        for i, (t, k, start) in enumerate(where):
            out[i] = self.tracks[types[t]][k][start:start + length]
        return out

    def draw(self, rng: np.random.Generator, n: int, length: int, types: tuple[str, ...]) -> np.ndarray:
        """``n`` random noise stretches ``(n, length)`` float32 from the given ``types``."""
        return self.cut(self.pick(rng, n, length, types), length, types)


def load_noise_bank(nstdb_dir: str | Path, window: WindowConfig, cfg: AugmentConfig) -> NoiseBank:
    """The first ``cfg.noise_minutes`` minutes of each nstdb noise record (every channel, read by
    :func:`edge_ecg.signal.noise.load_noise` in float64), cleaned, at ``window.fs``.

    Raises :class:`DataError` when ``nstdb_dir`` lacks one of ``cfg.noise_types``.
    """
    from edge_ecg.records.load import read_header
    from edge_ecg.signal.noise import load_noise

    nstdb_dir = Path(nstdb_dir)
    tracks: dict[str, list[np.ndarray]] = {}
    for name in cfg.noise_types:
        if name not in NOISE_RECORDS:
            raise DataError(f"unknown noise type {name!r}; nstdb has {', '.join(NOISE_RECORDS)}")
        if not (nstdb_dir / f"{name}.hea").is_file():
            raise DataError(f"{nstdb_dir / (name + '.hea')}: nstdb noise record missing (needed for augmentation)")
        chans = []
        for c in range(len(read_header(nstdb_dir, name).sig_name)):
            x = load_noise(nstdb_dir, name, "train", window.fs, channel=c, minutes=cfg.noise_minutes,
                           width=window.resample_width, dtype=np.float64)
            chans.append(ecg_clean(x, window.fs, window.highpass_hz, window.lowpass_hz).astype(np.float32))
        tracks[name] = chans
    return NoiseBank(fs=window.fs, tracks=tracks, minutes=cfg.noise_minutes)


def find_nstdb(mitdb_dir: str | Path | None = None, nstdb: str | Path | None = None) -> Path:
    """The nstdb folder by :func:`edge_ecg.records.locate.find_database`'s rule: ``nstdb`` if
    given, else beside ``mitdb_dir`` (``<mitdb_dir>/../nstdb``), else the usual places."""
    from edge_ecg.records.locate import find_database

    if nstdb is not None:
        return find_database("nstdb", nstdb)
    try:
        return find_database("nstdb", beside=mitdb_dir)
    except DataError:
        raise DataError(
            "no nstdb data for noise augmentation (looked beside the mitdb folder and in the usual places); "
            "run `edge-ecg data fetch --db nstdb`, pass --noise-data DIR, or set augment.noise_prob = 0"
        ) from None


def warp_windows(X: np.ndarray, rng: np.random.Generator, pre: int, rate_jitter: float, shift_max: int) -> np.ndarray:
    """Resample each window ``(n, L)`` by ``1 ± rate_jitter`` about index ``pre`` and shift it by
    up to ``shift_max`` samples; linear interpolation, edges repeated. Returns float32 ``(n, L)``."""
    n = len(X)
    factor = 1.0 + rng.uniform(-rate_jitter, rate_jitter, size=n) if rate_jitter > 0 else np.ones(n)
    shift = rng.integers(-shift_max, shift_max + 1, size=n) if shift_max > 0 else np.zeros(n)
    return warp_rows(X, pre, factor, shift)


def warp_rows(X: np.ndarray, pre: int, factor: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Windows ``X`` ``(n, L)`` resampled by ``factor`` ``(n,)`` about index ``pre`` and shifted by
    ``shift`` ``(n,)`` samples; linear interpolation, edges repeated. Returns float32 ``(n, L)``."""
    n, L = X.shape
    pos = pre + (np.arange(L)[None, :] - pre) * np.asarray(factor, dtype=np.float64)[:, None] + np.asarray(shift)[:, None]
    pos = np.clip(pos, 0, L - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, L - 1)
    frac = (pos - lo).astype(np.float32)
    rows = np.arange(n)[:, None]
    return (X[rows, lo] * (1 - frac) + X[rows, hi] * frac).astype(np.float32)


@dataclass
class AugmentDraws:
    """The random draws of :func:`augment_windows` for ``n`` windows, one row per window.

    ``factor`` float64 ``(n,)`` time-scale about the R peak; ``shift`` int64 ``(n,)`` samples;
    ``noise`` int64 ``(n, 3)`` :meth:`NoiseBank.pick` rows (type -1: no noise) and ``snr_db``
    float64 ``(n,)``; ``wander`` float64 ``(n, 3)`` frequency (Hz), phase (rad), amplitude
    (NaN: no wander); ``scale`` float32 ``(n,)``; ``run`` int64 ``(n,)`` the period (samples)
    of a synthetic run before the R peak, 0 for none (None when ``run_prob`` is 0). About 70 bytes a window, however long the
    window: an epoch's draws for a whole corpus stay small while its windows stream from disk.
    """

    factor: np.ndarray
    shift: np.ndarray
    noise: np.ndarray
    snr_db: np.ndarray
    wander: np.ndarray
    scale: np.ndarray
    run: np.ndarray | None = None  # int64 (n,): synthetic-run period in samples (0: none); None: run_prob off

    def __len__(self) -> int:
        return len(self.scale)


def draw_augmentation(
    n: int, rng: np.random.Generator, cfg: AugmentConfig, window: WindowConfig, noise: NoiseBank | None = None,
    run_period: np.ndarray | None = None,
) -> AugmentDraws:
    """Every random draw :func:`augment_windows` makes for ``n`` windows, in the same order from
    ``rng``; apply them to any rows with :func:`apply_augmentation`. With augmentation off it
    draws nothing (as :func:`augment_windows` does not).

    ``run_period`` int ``(n,)``: each window's synthetic-run period (:func:`run_periods`; 0: the
    beat may not get one); the run draw is made last and only when ``cfg.run_prob > 0``, so
    every other draw is the same with or without it."""
    L = window.length
    if not cfg.enabled:
        return AugmentDraws(np.ones(n), np.zeros(n, dtype=np.int64), np.full((n, 3), -1, dtype=np.int64), np.zeros(n),
                            np.full((n, 3), np.nan), np.ones(n, dtype=np.float32))
    factor = rng.uniform(-cfg.rate_jitter, cfg.rate_jitter, size=n) + 1.0 if cfg.rate_jitter > 0 else np.ones(n)
    shift_max = int(round(cfg.shift_max_s * window.fs))
    shift = rng.integers(-shift_max, shift_max + 1, size=n) if shift_max > 0 else np.zeros(n, dtype=np.int64)
    where = np.full((n, 3), -1, dtype=np.int64)
    snr = np.zeros(n)
    if noise is not None and cfg.noise_prob > 0:
        pick = rng.random(n) < cfg.noise_prob
        k = int(pick.sum())
        if k:
            where[pick] = noise.pick(rng, k, L, tuple(cfg.noise_types))
            snr[pick] = rng.uniform(cfg.snr_db_range[0], cfg.snr_db_range[1], size=k)
    wander = np.full((n, 3), np.nan)
    if cfg.wander_prob > 0:
        pick = rng.random(n) < cfg.wander_prob
        k = int(pick.sum())
        if k:
            wander[pick, 0] = rng.uniform(0.05, 0.5, size=k)
            wander[pick, 1] = rng.uniform(0, 2 * np.pi, size=k)
            wander[pick, 2] = rng.uniform(0, cfg.wander_amplitude, size=k)
    lo, hi = cfg.scale_range
    scale = rng.uniform(lo, hi, size=n).astype(np.float32)
    run = None
    if cfg.run_prob > 0:
        period = np.zeros(n, dtype=np.int64) if run_period is None else np.asarray(run_period, dtype=np.int64)
        run = np.where(rng.random(n) < cfg.run_prob, period, 0)
    return AugmentDraws(factor, np.asarray(shift, dtype=np.int64), where, snr, wander, scale, run)


def apply_augmentation(
    X: np.ndarray, draws: AugmentDraws, rows: np.ndarray, cfg: AugmentConfig, window: WindowConfig,
    noise: NoiseBank | None = None,
) -> np.ndarray:
    """Windows ``X`` ``(m, L)`` augmented with rows ``rows`` ``(m,)`` of ``draws``: float32 ``(m, L)``.

    Every window is transformed on its own, so augmenting a whole epoch at once or batch by
    batch gives the same numbers, bit for bit.
    """
    X = np.asarray(X, dtype=np.float32)
    m, L = X.shape
    if not cfg.enabled or m == 0:
        return X.copy()
    if draws.run is not None:
        period = draws.run[rows]
        pick = period > 0
        if pick.any():
            X = X.copy()
            X[pick] = tile_context(X[pick], window.pre, period[pick], run_onset(window))
    out = warp_rows(X, window.pre, draws.factor[rows], draws.shift[rows])
    where, snr = draws.noise[rows], draws.snr_db[rows]
    pick = where[:, 0] >= 0
    if noise is not None and pick.any():
        nz = noise.cut(where[pick], L, tuple(cfg.noise_types))
        nz -= nz.mean(axis=1, keepdims=True)
        sig = out[pick]
        p_sig = np.mean((sig - sig.mean(axis=1, keepdims=True)) ** 2, axis=1)
        p_noise = np.maximum(np.mean(nz**2, axis=1), 1e-12)
        gain = np.sqrt(p_sig / (p_noise * 10.0 ** (snr[pick] / 10.0)))
        out[pick] = sig + gain[:, None].astype(np.float32) * nz
    wander = draws.wander[rows]
    pick = ~np.isnan(wander[:, 0])
    if pick.any():
        t = np.arange(L)[None, :] / window.fs
        freq, phase, amp = (wander[pick, i:i + 1] for i in range(3))
        out[pick] += (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    out = normalise_window(out, window.normalise)
    out *= draws.scale[rows][:, None]
    return out


def augment_windows(
    X: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    window: WindowConfig,
    noise: NoiseBank | None = None,
) -> np.ndarray:
    """An augmented copy of normalised windows ``X`` ``(n, L)`` float32 (see the module doc).

    Noise is skipped when ``noise`` is None. Deterministic for a given ``rng`` state; the same
    as :func:`draw_augmentation` followed by :func:`apply_augmentation` on all rows.
    """
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    if not cfg.enabled or n == 0:
        return X.copy()
    draws = draw_augmentation(n, rng, cfg, window, noise)
    return apply_augmentation(X, draws, np.arange(n), cfg, window, noise)


#: Where a synthetic run's repeated cycle starts and ends: this long (s) before an R peak, so the
#: cycle holds the previous QRS-T complex and this beat's P wave (:func:`tile_context`).
RUN_ONSET_S = 0.1
#: The shortest and longest RR interval (s) a synthetic run repeats.
RUN_PERIOD_S = (0.25, 2.0)
#: The AAMI classes whose windows may get a synthetic run: S (what is missed in runs) and N
#: (so that a regular run-like context is not by itself a sign of S).
RUN_CLASSES: tuple[str, ...] = ("N", "S")


def run_onset(window: WindowConfig) -> int:
    """Samples before the R peak where a synthetic run's cycle starts (:data:`RUN_ONSET_S`)."""
    return int(round(RUN_ONSET_S * window.fs))


def run_periods(record: np.ndarray, sample: np.ndarray, y: np.ndarray, window: WindowConfig) -> np.ndarray:
    """Each beat's synthetic-run period, int64 ``(n,)`` samples at ``window.fs``: its ``pre_rr``
    (this R peak minus the previous one, in the same record) when the beat is of a class in
    :data:`RUN_CLASSES`, the interval is within :data:`RUN_PERIOD_S` and a whole cycle fits in
    the window before :func:`run_onset`; else 0. ``record``, ``sample``, ``y`` are a beat set's
    arrays (``sample`` ascending within a record, ``y`` indices into CLASSES)."""
    from edge_ecg.config import CLASSES

    sample = np.asarray(sample, dtype=np.int64)
    pre_rr = np.zeros(len(sample), dtype=np.int64)
    for idx in beats_by_record(record, sample):
        pre_rr[idx[1:]] = np.diff(sample[idx])
    lo, hi = (int(round(s * window.fs)) for s in RUN_PERIOD_S)
    ok = np.isin(np.asarray(y), [CLASSES.index(c) for c in RUN_CLASSES])
    ok &= (pre_rr >= lo) & (pre_rr <= min(hi, window.pre - run_onset(window)))
    return np.where(ok, pre_rr, 0)


def tile_context(X: np.ndarray, pre: int, period: np.ndarray, onset: int, fade: int = 4) -> np.ndarray:
    """Windows ``X`` ``(m, L)`` whose context before the R peak (index ``pre``) is a run.

    Row i's last cycle, samples ``[b - period[i], b)`` with ``b = pre - onset`` (just before the
    previous beat to just before this one), is repeated back to the window's start, so every
    earlier beat in the window sits ``period[i]`` samples before the next; the copies' last
    ``fade`` samples are blended linearly into the cycle's first, so no seam makes a step.
    ``period[i]`` must be in ``[fade + 1, b]``. Returns float32 ``(m, L)``; samples from ``b - period``
    on are unchanged.
    """
    X = np.array(X, dtype=np.float32, copy=True)
    b = pre - onset
    for i, p in enumerate(np.asarray(period, dtype=np.int64)):
        if not fade < p <= b:
            raise ValueError(f"a synthetic run's period must be in ({fade}, {b}] samples, got {p}")
        start = b - p
        if start == 0:
            continue
        cycle = X[i, start:b].copy()
        if fade > 0:  # the cycle's end blended into its start, so no copy steps into the next
            w = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
            cycle[-fade:] = (1 - w) * cycle[-fade:] + w * cycle[0]
        X[i, :start] = cycle[(np.arange(start) - start) % p]
    return X


def run_rr(rr: np.ndarray, in_run: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    """RR features ``(n, F)`` (named ``features``) of beats given a synthetic run: where
    ``in_run`` ``(n,)`` is true, the previous interval is as early as this one
    (``prev_rr_ratio`` = ``pre_rr_ratio``, ``prev_rr`` = ``pre_rr`` when both are there).
    Returns ``rr`` itself when nothing changes."""
    pairs = [(features.index(a), features.index(b)) for a, b in (("prev_rr_ratio", "pre_rr_ratio"), ("prev_rr", "pre_rr"))
             if a in features and b in features]
    in_run = np.asarray(in_run, dtype=bool)
    if not pairs or not in_run.any():
        return rr
    out = np.array(rr, dtype=np.float32, copy=True)
    for dst, src in pairs:
        out[in_run, dst] = out[in_run, src]
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
