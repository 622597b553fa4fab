"""Beat shards: a corpus's beat windows on disk, one shard per record, read a batch at a time.

A corpus of many databases does not fit in memory as one :class:`~edge_ecg.beats.dataset.BeatSet`
(DS1 alone is 51,021 windows of 451 float32 samples, 92 MB; Icentia11k is thousands of times
that). Here each record's beats are built once and written as a shard::

    <root>/<key>.X.npy       windows (n, L), float32 (or float16), R at index window.pre
    <root>/<key>.index.npz   rr (n, F) float32, y (n,) int64, sample (n,) int64, record id, window

``key`` hashes the window configuration, the record id, its files' sizes and times and
:data:`~edge_ecg.beats.dataset.BUILDER_VERSION`, so a changed record or window makes a new shard
and a corpus that adds a database reuses the shards it already has. The index file is written
last (after the windows, each through a temporary file and a rename): a shard with an index is
complete, an interrupted build leaves nothing that is read back.

:class:`ShardedBeats` keeps only the small per-beat arrays in memory (about 50 bytes a beat:
labels, RR features, R positions, which shard and row) and reads the windows a batch asks for
from memory-mapped ``.npy`` files (``np.load(mmap_mode="r")``), unmapping them again, so what a
training process holds does not grow with the corpus's windows.

>>> src = database_sources("../shared/data/mitdb", ["101", "106"], WindowConfig(), db="mitdb")  # doctest: +SKIP
>>> beats = build_shards(src, WindowConfig())                                                  # doctest: +SKIP
>>> beats.windows([0, 5, 7]).shape                                                             # doctest: +SKIP
(3, 451)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ecg.config import CLASSES, WindowConfig, config_hash, from_dict, to_dict
from edge_ecg.errors import ConfigError, DataError

#: Storage types a shard's windows may have.
SHARD_DTYPES: tuple[str, ...] = ("float32", "float16")


@dataclass(frozen=True)
class RecordSource:
    """One record a corpus is made of: its id (``db/record``), what identifies its files (for the
    shard's key: any JSON-able value that changes when the data does), and how to build its beats."""

    rid: str
    identity: object
    build: Callable[[], "BeatSet"]  # noqa: F821 - edge_ecg.beats.dataset.BeatSet, imported lazily


def database_sources(
    db_dir: str | Path, names: Sequence[str], window: WindowConfig, db: str | None = None, lead: str | None = None,
    database=None,
) -> list[RecordSource]:
    """A :class:`RecordSource` for each record ``names`` of the folder ``db_dir``, read on ``lead``
    (default: ``window.lead`` where a record has it, else the database's default lead, as
    :func:`edge_ecg.beats.dataset.record_lead` says) with the database's AAMI mapping; ids are
    ``db/name``, or ``name`` when ``db`` is None. ``database`` (a
    :class:`~edge_ecg.records.databases.Database`) defaults to the one the folder is."""
    from edge_ecg.beats.dataset import _data_identity
    from edge_ecg.records.databases import folder_database

    db_dir = Path(db_dir).resolve()
    database = database or folder_database(db_dir)

    def builder(name: str, rid: str):
        def build():
            from edge_ecg.beats.dataset import record_beats, record_lead
            from edge_ecg.records.load import load_record

            chosen = record_lead(db_dir, name, window, lead, database)
            beats = record_beats(load_record(db_dir, name, lead=chosen, database=database), window)
            beats.record = np.full(len(beats), rid)
            return beats

        return build

    out = []
    for name in names:
        rid = f"{db}/{name}" if db else str(name)
        ident = [str(db_dir), lead or window.lead, _data_identity(db_dir, [name])]
        if database.name != "mitdb" or lead is not None:  # keys of MIT-BIH's default shards stay as they were
            ident.append({"database": database.name, "lead": lead})
        out.append(RecordSource(rid, ident, builder(name, rid)))
    return out


def shard_root() -> Path:
    """The default shard folder: ``<per-user cache>/shards`` (``$EDGE_ECG_CACHE`` moves it)."""
    from edge_ecg.records.locate import cache_dir

    return cache_dir() / "shards"


def shard_key(source: RecordSource, window: WindowConfig, dtype: str) -> str:
    """The file stem of ``source``'s shard for ``window`` and storage ``dtype``."""
    from edge_ecg.beats.dataset import BUILDER_VERSION

    return config_hash(window, extra={"record": source.rid, "files": source.identity, "dtype": dtype,
                                      "builder": BUILDER_VERSION})


@dataclass
class ShardedBeats:
    """A beat set whose windows stay on disk.

    ``y`` int64 ``(n,)``, ``rr`` float32 ``(n, F)``, ``record`` ``(n,)`` record ids, ``sample``
    int64 ``(n,)`` R positions at ``window.fs`` (as in a BeatSet); ``shard`` int32 ``(n,)`` index
    into ``paths`` (the ``.X.npy`` files) and ``row`` int64 ``(n,)`` the beat's row there.
    """

    y: np.ndarray
    rr: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    shard: np.ndarray
    row: np.ndarray
    paths: list[Path]
    window: WindowConfig

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> "ShardedBeats":
        """The beats selected by a boolean mask or an index array (the files are shared)."""
        return ShardedBeats(self.y[index], self.rr[index], self.record[index], self.sample[index],
                            self.shard[index], self.row[index], self.paths, self.window)

    def records(self, names: Sequence[str]) -> "ShardedBeats":
        """The beats of the named records."""
        return self.subset(np.isin(self.record, list(names)))

    def class_counts(self) -> dict[str, int]:
        """Beats per AAMI class, in :data:`CLASSES` order."""
        counts = np.bincount(self.y, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, counts)}

    def windows(self, index) -> np.ndarray:
        """The windows of beats ``index`` (ints, any order, repeats allowed): float32 ``(m, L)``.

        Each shard a batch touches is memory-mapped, its rows copied out, and unmapped again.
        """
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.window.length), dtype=np.float32)
        shard, row = self.shard[index], self.row[index]
        for s in np.unique(shard):
            pick = np.flatnonzero(shard == s)
            X = np.load(self.paths[s], mmap_mode="r")
            try:
                out[pick] = X[row[pick]]
            finally:
                del X
        return out

    def load(self):
        """All of these beats in memory, as a :class:`~edge_ecg.beats.dataset.BeatSet`."""
        from edge_ecg.beats.dataset import BeatSet

        return BeatSet(self.windows(np.arange(len(self))), self.rr.copy(), self.y.copy(), self.record.copy(),
                       self.sample.copy(), self.window)

    @property
    def index_bytes(self) -> int:
        """Bytes the in-memory per-beat arrays take (the windows excluded)."""
        return sum(a.nbytes for a in (self.y, self.rr, self.record, self.sample, self.shard, self.row))


def write_shard(beats, root: str | Path, key: str, dtype: str = "float32") -> Path:
    """Write BeatSet ``beats`` (one record) as the shard ``key`` under ``root``; returns its index path.

    The windows are written first, the index last, each to a temporary file then renamed.
    """
    if dtype not in SHARD_DTYPES:
        raise ConfigError(f"shard dtype must be one of {', '.join(SHARD_DTYPES)}, got {dtype!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _atomic(root / f"{key}.X.npy", lambda f: np.save(f, np.asarray(beats.X, dtype=dtype)))
    _atomic(root / f"{key}.index.npz", lambda f: np.savez(
        f, rr=np.asarray(beats.rr, dtype=np.float32), y=np.asarray(beats.y, dtype=np.int64),
        sample=np.asarray(beats.sample, dtype=np.int64), record=np.asarray(beats.record).astype(str),
        window=np.array(json.dumps(to_dict(beats.window))), dtype=np.array(dtype)))
    return root / f"{key}.index.npz"


def _atomic(path: Path, write: Callable) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def build_shards(
    sources: Sequence[RecordSource],
    window: WindowConfig,
    root: str | Path | None = None,
    dtype: str = "float32",
    progress: bool = True,
) -> ShardedBeats:
    """The beats of ``sources`` as a :class:`ShardedBeats`, building each missing shard in turn.

    One record's beats are in memory at a time while building; afterwards only the index.
    ``root`` defaults to :func:`shard_root`. Record ids must be unique (a :class:`DataError`
    names the first repeated one).
    """
    if not sources:
        raise DataError("no records to build beat shards from")
    seen: set[str] = set()
    for s in sources:
        if s.rid in seen:
            raise DataError(f"record {s.rid} is listed twice; name records db/record when databases are mixed")
        seen.add(s.rid)
    root = Path(root) if root is not None else shard_root()
    from tqdm.auto import tqdm

    parts, paths = [], []
    for source in tqdm(sources, desc="beat shards", unit="record", disable=not progress, leave=False):
        key = shard_key(source, window, dtype)
        index = root / f"{key}.index.npz"
        if not index.is_file() or not (root / f"{key}.X.npy").is_file():
            write_shard(source.build(), root, key, dtype)
        parts.append(_read_index(index, window, source.rid))
        paths.append(root / f"{key}.X.npy")
    n = [len(p["y"]) for p in parts]
    return ShardedBeats(
        y=np.concatenate([p["y"] for p in parts]),
        rr=np.concatenate([p["rr"] for p in parts]).astype(np.float32),
        record=np.concatenate([p["record"] for p in parts]),
        sample=np.concatenate([p["sample"] for p in parts]),
        shard=np.repeat(np.arange(len(parts), dtype=np.int32), n),
        row=np.concatenate([np.arange(k, dtype=np.int64) for k in n]),
        paths=paths,
        window=window,
    )


def _read_index(path: Path, window: WindowConfig, rid: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        if from_dict(WindowConfig, json.loads(str(z["window"]))) != window:
            raise DataError(f"{path}: shard of {rid} was built for another window configuration")
        return {k: z[k] for k in ("y", "rr", "record", "sample")}
