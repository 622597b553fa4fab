"""Reading one WFDB record: the chosen lead in mV and its beats as AAMI classes.

Files are read with :mod:`edge_ecg.records.wfdb_io` (numpy only); the ``wfdb`` package (which
imports pandas) is imported only for a record that reader does not support, such as a
multi-segment record or a compressed signal format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_ecg.errors import DataError
from edge_ecg.records import wfdb_io
from edge_ecg.records.aami import AAMI_MAP
from edge_ecg.records.databases import folder_database
from edge_ecg.records.locate import list_records


@dataclass
class Record:
    """One lead of one record, with its annotated beats.

    ``signal`` is float32 in mV, shape ``(n_samples,)``, at ``fs`` Hz. ``beat_samples`` are
    sample indices of annotated beats (AAMI classes in ``beat_classes``, the original
    MIT-BIH symbols in ``beat_symbols``). ``excluded`` holds ``(start, end)`` sample pairs of
    ventricular flutter/fibrillation episodes, which EC57 does not score.
    """

    name: str
    fs: float
    lead: str
    signal: np.ndarray
    beat_samples: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    beat_symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U1"))
    beat_classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U1"))
    excluded: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    leads: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """Length of the record in seconds."""
        return len(self.signal) / self.fs


def read_header(db_dir: str | Path, name: str):
    """The WFDB header of record ``name`` (a :class:`~edge_ecg.records.wfdb_io.Header`, or for a
    record only ``wfdb`` reads, a ``wfdb.Record``), or a :class:`DataError` naming the file."""
    db_dir = Path(db_dir)
    hea = db_dir / f"{name}.hea"
    if not hea.is_file():
        known = list_records(db_dir) if db_dir.is_dir() else []
        hint = f" (this folder has {len(known)} records, e.g. {', '.join(known[:3])})" if known else ""
        raise DataError(f"record {name!r} not found: {hea} does not exist{hint}")
    try:
        return wfdb_io.read_header(db_dir / name)
    except wfdb_io.UnsupportedWfdb:
        pass
    except (ValueError, OSError) as exc:
        raise DataError(f"{hea}: not a valid WFDB header ({exc})") from None
    import wfdb

    try:
        return wfdb.rdheader(str(db_dir / name))
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on malformed headers
        raise DataError(f"{hea}: not a valid WFDB header ({exc})") from None


def check_signal_files(db_dir: Path, header) -> None:
    """Raise :class:`DataError` if a signal file is missing or shorter than its header says."""
    files: dict[str, float] = {}
    for fname, fmt in zip(header.file_name or [], header.fmt or []):
        files[fname] = files.get(fname, 0.0) + 8 * wfdb_io.BYTES_PER_SAMPLE.get(str(fmt), 2)
    offsets = dict(zip(header.file_name or [], header.byte_offset or [None] * len(files)))
    for fname, bits_per_frame in files.items():
        path = db_dir / fname
        if not path.is_file():
            raise DataError(f"{path}: signal file missing (named in {header.record_name}.hea)")
        if header.sig_len:
            expected = (offsets.get(fname) or 0) + math.ceil(header.sig_len * bits_per_frame / 8)
            size = path.stat().st_size
            if size < expected:
                raise DataError(
                    f"{path}: truncated ({size} bytes, the header needs {expected}); "
                    f"re-download it or run `edge-ecg data verify`"
                )


def read_signal(db_dir: str | Path, name: str, channel: str | int = "MLII",
                dtype=np.float32) -> tuple[np.ndarray, float, str]:
    """One channel of a record as ``(signal_mV (n,) of dtype, fs_Hz, channel_name)``.

    ``channel`` is a signal name (``"MLII"``, ``"noise1"``) or an index. A name that the
    record does not have is a :class:`DataError` listing the ones it has. Physical units are
    computed in float64 and stored as ``dtype`` (float32 by default; float64 keeps them exact).
    """
    db_dir = Path(db_dir)
    header = read_header(db_dir, name)
    names = list(header.sig_name or [])
    if isinstance(channel, int):
        if not 0 <= channel < len(names):
            raise DataError(f"record {name} has {len(names)} signals; channel {channel} does not exist")
        index = channel
    elif channel in names:
        index = names.index(channel)
    else:
        raise DataError(f"record {name} has no lead {channel!r} (it has {', '.join(names)})")
    check_signal_files(db_dir, header)
    sig = None
    if isinstance(header, wfdb_io.Header):
        try:
            sig = wfdb_io.read_signal_physical(header, db_dir, [index], dtype=dtype)[:, 0]
        except wfdb_io.UnsupportedWfdb:
            pass
        except (ValueError, OSError) as exc:
            raise DataError(f"{db_dir / name}: cannot read signal ({exc})") from None
    if sig is None:
        sig = _read_signal_with_wfdb(db_dir, name, index, dtype)
    if not np.all(np.isfinite(sig)):
        sig = np.nan_to_num(sig, nan=0.0)  # WFDB marks invalid samples as NaN
    return sig, float(header.fs), names[index]


def _read_signal_with_wfdb(db_dir: Path, name: str, index: int, dtype=np.float32) -> np.ndarray:
    """Signal ``index`` of a record only the ``wfdb`` package reads, as mV ``(n,)`` of ``dtype``."""
    import wfdb

    try:
        rec = wfdb.rdrecord(str(db_dir / name), channels=[index], physical=True)
    except Exception as exc:
        raise DataError(f"{db_dir / name}: cannot read signal ({exc})") from None
    return np.asarray(rec.p_signal[:, 0], dtype=dtype)


def read_beats(db_dir: str | Path, name: str, extension: str = "atr", symbols: dict[str, str] | None = None):
    """Beat annotations: ``(samples int64, symbols, aami_classes, excluded (k, 2))``.

    Only beat symbols (those in ``symbols``, symbol -> AAMI class; default de Chazal's
    :data:`AAMI_MAP`, a database's own from :mod:`edge_ecg.records.databases`) are kept;
    ``excluded`` holds the ``[`` ... ``]`` ventricular flutter/fibrillation episodes.
    """
    mapping = AAMI_MAP if symbols is None else symbols
    db_dir = Path(db_dir)
    path = db_dir / f"{name}.{extension}"
    if not path.is_file():
        raise DataError(f"{path}: annotation file missing")
    try:
        ann = wfdb_io.read_annotations(db_dir / name, extension)
    except wfdb_io.UnsupportedWfdb:
        ann = _read_annotations_with_wfdb(db_dir, name, extension)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable WFDB annotation file ({exc})") from None
    samples = np.asarray(ann.sample, dtype=np.int64)
    found = np.asarray(ann.symbol, dtype="<U2")
    keep = np.isin(found, list(mapping))
    classes = np.array([mapping[s] for s in found[keep]], dtype="<U1")
    excluded = _episodes(samples, found)
    return samples[keep], found[keep].astype("<U1"), classes, excluded


def _read_annotations_with_wfdb(db_dir: Path, name: str, extension: str):
    """``wfdb.rdann`` for an annotation file only the ``wfdb`` package reads (custom labels)."""
    import wfdb

    try:
        return wfdb.rdann(str(db_dir / name), extension)
    except Exception as exc:
        raise DataError(f"{db_dir / name}.{extension}: not a readable WFDB annotation file ({exc})") from None


def _episodes(samples: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """``(start, end)`` sample pairs of VF/flutter episodes marked ``[`` ... ``]``."""
    out, start = [], None
    for s, sym in zip(samples, symbols):
        if sym == "[":
            start = int(s)
        elif sym == "]" and start is not None:
            out.append((start, int(s)))
            start = None
    if start is not None:
        out.append((start, int(samples[-1]) if len(samples) else start))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def vf_episodes(db_dir: str | Path, records, fs: float) -> dict[str, np.ndarray]:
    """Record name -> its VF/flutter episodes ``(k, 2)`` as sample indices at ``fs`` Hz.

    Records without an episode are left out. EC57 does not score beats inside them.
    """
    out = {}
    for name in records:
        episodes = read_beats(db_dir, name)[3]
        if len(episodes):
            fs_in = float(read_header(db_dir, name).fs)
            out[name] = np.round(episodes.astype(np.float64) * fs / fs_in).astype(np.int64)
    return out


def load_record(db_dir: str | Path, name: str, lead: str | int | None = "MLII", annotations: bool = True,
                database=None) -> Record:
    """Record ``name`` from ``db_dir``: lead ``lead`` in mV and (optionally) its beats.

    ``lead`` is a signal name or index; ``None`` picks it by the database's rule
    (:meth:`edge_ecg.records.databases.Database.choose_lead`). ``database`` (a
    :class:`~edge_ecg.records.databases.Database`; default: the one ``db_dir`` is, by
    :func:`~edge_ecg.records.databases.folder_database`) also gives the beat symbols' AAMI mapping.

    >>> rec = load_record("../shared/data/mitdb", "100")   # doctest: +SKIP
    >>> rec.fs, rec.lead, rec.signal.shape                  # doctest: +SKIP
    (360.0, 'MLII', (650000,))
    """
    db_dir = Path(db_dir)
    if database is None and (lead is None or annotations):
        database = folder_database(db_dir)
    header = read_header(db_dir, name)
    if lead is None:
        lead = database.choose_lead(header.sig_name or (), None, name)
    signal, fs, lead_name = read_signal(db_dir, name, lead)
    rec = Record(name=name, fs=fs, lead=lead_name, signal=signal, leads=tuple(header.sig_name or ()))
    if annotations:
        rec.beat_samples, rec.beat_symbols, rec.beat_classes, rec.excluded = read_beats(
            db_dir, name, database.annotator, database.symbols)
    return rec
