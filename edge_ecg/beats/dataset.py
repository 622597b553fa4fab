"""Beat sets: every annotated beat of a list of records as model inputs, cached on disk.

>>> from edge_ecg.config import WindowConfig
>>> from edge_ecg.records import DS1
>>> ds1 = build_beatset("../shared/data/mitdb", DS1, WindowConfig())   # doctest: +SKIP
>>> ds1.X.shape, ds1.rr.shape, ds1.class_counts()                        # doctest: +SKIP
((51021, 451), (51021, 3), {'N': 45866, 'S': 944, 'V': 3788, 'F': 415, 'Q': 8})

The cache (``<per-user cache>/beats/<key>.npz``) is keyed by the window configuration,
the record list, the data files' sizes and times, and :data:`BUILDER_VERSION`; change any
of them and the set is built again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ecg.config import CLASSES, WindowConfig, config_hash, from_dict, to_dict
from edge_ecg.errors import DataError
from edge_ecg.records.aami import CLASS_INDEX
from edge_ecg.records.load import Record, load_record
from edge_ecg.records.locate import cache_dir
from edge_ecg.beats.rr import rr_features
from edge_ecg.beats.windows import beat_windows
from edge_ecg.signal.filter import ecg_clean
from edge_ecg.signal.resample import ecg_resample

log = logging.getLogger(__name__)

#: Bump when the builder's output changes for the same inputs (invalidates caches).
BUILDER_VERSION = 1


@dataclass
class BeatSet:
    """Model inputs for a set of beats.

    ``X`` float32 ``(n, L)`` normalised windows (R at index ``window.pre``); ``rr`` float32
    ``(n, F)`` past-only RR features; ``y`` int64 ``(n,)`` index into
    :data:`edge_ecg.config.CLASSES`; ``record`` ``(n,)`` record names; ``sample`` int64
    ``(n,)`` R positions at ``window.fs``; ``window`` the :class:`WindowConfig` used.
    """

    X: np.ndarray
    rr: np.ndarray
    y: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    window: WindowConfig

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> "BeatSet":
        """The beats selected by a boolean mask or an index array."""
        return BeatSet(self.X[index], self.rr[index], self.y[index], self.record[index], self.sample[index], self.window)

    def records(self, names: Sequence[str]) -> "BeatSet":
        """The beats of the named records."""
        return self.subset(np.isin(self.record, list(names)))

    def class_counts(self) -> dict[str, int]:
        """Beats per AAMI class, in :data:`CLASSES` order."""
        counts = np.bincount(self.y, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, counts)}

    @staticmethod
    def concatenate(sets: Sequence["BeatSet"]) -> "BeatSet":
        """One set holding all beats of ``sets`` (which share a window configuration)."""
        if not sets:
            raise ValueError("nothing to concatenate")
        return BeatSet(
            *(np.concatenate([getattr(s, f) for s in sets]) for f in ("X", "rr", "y", "record", "sample")),
            window=sets[0].window,
        )


def prepare_signal(rec: Record, window: WindowConfig) -> np.ndarray:
    """A record's lead resampled to ``window.fs`` and cleaned causally: float64 ``(m,)``."""
    x = ecg_resample(rec.signal, rec.fs, window.fs, window.resample_width)
    return ecg_clean(x, window.fs, window.highpass_hz, window.lowpass_hz)


def to_window_rate(samples: np.ndarray, fs_in: float, window: WindowConfig) -> np.ndarray:
    """Sample indices at ``fs_in`` mapped to the nearest index at ``window.fs``."""
    return np.round(np.asarray(samples, dtype=np.float64) * window.fs / fs_in).astype(np.int64)


def record_beats(rec: Record, window: WindowConfig, r_samples: np.ndarray | None = None, labels=None) -> BeatSet:
    """The beats of one loaded record as a :class:`BeatSet`.

    By default the reference annotations are used; pass ``r_samples`` (indices at
    ``rec.fs``) to window beats found by a detector instead, with optional ``labels``
    (class letters; unknown labels become ``N`` and are meant to be ignored).
    """
    if r_samples is None:
        r_samples, labels = rec.beat_samples, rec.beat_classes
    labels = labels if labels is not None else np.full(len(r_samples), "N")
    clean = prepare_signal(rec, window)
    r = to_window_rate(r_samples, rec.fs, window)
    y = np.array([CLASS_INDEX.get(str(c), 0) for c in labels], dtype=np.int64)
    return BeatSet(
        X=beat_windows(clean, r, window),
        rr=rr_features(r, window.fs, window.rr_features),
        y=y,
        record=np.full(len(r), rec.name),
        sample=r,
        window=window,
    )


def _data_identity(db_dir: Path, records: Sequence[str]) -> list:
    ident = []
    for name in records:
        for ext in ("hea", "dat", "atr"):
            p = db_dir / f"{name}.{ext}"
            st = p.stat() if p.exists() else None
            ident.append([p.name, st.st_size if st else None, int(st.st_mtime) if st else None])
    return ident


def beatset_cache_path(db_dir: str | Path, records: Sequence[str], window: WindowConfig,
                       lead: str | None = None, prefix: str = "") -> Path:
    """Where the cached beat set for these inputs lives (it may not exist yet)."""
    db_dir = Path(db_dir).resolve()
    extra = {"records": list(records), "db": str(db_dir), "files": _data_identity(db_dir, records),
             "builder": BUILDER_VERSION}
    if lead is not None or prefix:  # keys of the default (window lead, plain names) stay as before
        extra.update(lead=lead, prefix=prefix)
    key = config_hash(window, extra=extra)
    return cache_dir() / "beats" / f"{key}.npz"


def record_lead(db_dir: Path, name: str, window: WindowConfig, lead: str | None, database) -> str | int:
    """The lead read from record ``name``: ``lead`` when given (it must exist), else the model's
    own lead ``window.lead`` when the record has it, else the database's default order
    (:meth:`~edge_ecg.records.databases.Database.choose_lead`, the one lead rule)."""
    from edge_ecg.records.load import read_header

    return database.choose_lead(read_header(db_dir, name).sig_name or (), lead, name, model_lead=window.lead)


def build_beatset(
    db_dir: str | Path,
    records: Sequence[str],
    window: WindowConfig | None = None,
    cache: bool = True,
    progress: bool = True,
    lead: str | None = None,
    prefix: str = "",
) -> BeatSet:
    """Every annotated beat of ``records`` in ``db_dir`` as model inputs.

    Each record is read on ``lead`` when given (a record without it is a one-line
    :class:`DataError` naming the leads it has), else on ``window.lead`` when it has that
    lead, else on the database's default lead (:mod:`edge_ecg.records.databases`); beat
    symbols map to AAMI classes by the database's mapping. Signals are resampled to
    ``window.fs``, cleaned, windowed around the reference R peaks and given past-only RR
    features. ``prefix`` (e.g. ``"svdb/"``) is put before every record name in ``record``.
    Built once per configuration, then loaded from the cache.
    """
    window = window or WindowConfig()
    db_dir = Path(db_dir)
    records = list(records)
    if not records:
        raise DataError("no records to build a beat set from")
    from edge_ecg.records.databases import folder_database

    database = folder_database(db_dir)
    path = beatset_cache_path(db_dir, records, window, lead, prefix)
    if cache and path.is_file():
        try:
            return _load(path, window)
        except Exception as exc:  # a damaged cache is rebuilt, not fatal
            log.warning("ignoring unreadable beat cache %s (%s)", path, exc)
    t0 = time.perf_counter()
    parts = []
    from tqdm.auto import tqdm

    for name in tqdm(records, desc=f"building beat windows ({database.name})", unit="record", disable=not progress,
                     leave=False):
        rec = load_record(db_dir, name, lead=record_lead(db_dir, name, window, lead, database), database=database)
        if prefix:
            rec.name = prefix + rec.name
        parts.append(record_beats(rec, window))
    beats = BeatSet.concatenate(parts)
    log.info("built %d beats from %d records in %.1f s", len(beats), len(records), time.perf_counter() - t0)
    if cache:
        _save(path, beats)
    return beats


def build_sets_beatset(record_sets, window: WindowConfig, cache: bool = True, progress: bool = True) -> BeatSet:
    """The beats of several :class:`~edge_ecg.records.sets.RecordSet` s, one beat set, with
    record ids ``db/record`` (each set read on its own lead, by the rule of :func:`build_beatset`)."""
    parts = [build_beatset(rs.folder, rs.records, window, cache=cache, progress=progress, lead=rs.lead,
                           prefix=f"{rs.name}/") for rs in record_sets]
    return BeatSet.concatenate(parts)


def _save(path: Path, beats: BeatSet) -> None:
    """Write the cache atomically; concurrent builders (two runs at once) each use their own
    temporary file and the last rename wins (both wrote the same beats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.npz")
    os.close(fd)
    tmp = Path(name)
    np.savez(
        tmp, X=beats.X, rr=beats.rr, y=beats.y, record=beats.record.astype(f"<U{max(8, beats.record.dtype.itemsize // 4)}"), sample=beats.sample,
        window=np.array(json.dumps(to_dict(beats.window))),
    )
    tmp.replace(path)


def _load(path: Path, window: WindowConfig) -> BeatSet:
    with np.load(path, allow_pickle=False) as z:
        stored = from_dict(WindowConfig, json.loads(str(z["window"])))
        if stored != window:
            raise ValueError("window configuration differs")
        return BeatSet(z["X"], z["rr"], z["y"], z["record"], z["sample"], stored)
