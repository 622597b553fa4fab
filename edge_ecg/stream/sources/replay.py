"""Replaying a WFDB record as a stream: :class:`ReplaySource`, and finding and opening the record
(:func:`find_replay`, :func:`open_replay`) on the lead the offline builder reads (:func:`replay_lead`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_ecg.errors import ConfigError
from edge_ecg.stream.sources.base import Chunk, Pacer, Source, default_chunk_s


class ReplaySource(Source):
    """A loaded record (see :func:`edge_ecg.records.load_record`) replayed as a stream.

    ``speed`` 1 is real time, 0 as fast as possible; ``chunk_s`` the chunk length in seconds
    of signal (default :func:`default_chunk_s`); ``start_s``/``duration_s`` select a stretch.
    Ground truth comes from the record's annotations (AAMI classes).
    """

    name = "replay"

    def __init__(self, record, speed: float = 1.0, chunk_s: float | None = None, start_s: float = 0.0,
                 duration_s: float | None = None):
        super().__init__()
        self.record = record
        self.fs = float(record.fs)
        self.speed = float(speed)
        self.live = self.speed > 0
        self.pacer = Pacer(speed, self._stop)
        self.chunk = max(1, int(round((chunk_s or default_chunk_s(speed)) * self.fs)))
        n = len(record.signal)
        if start_s > 0 and int(round(start_s * self.fs)) >= n:
            raise ConfigError(f"--start {start_s:g} s is past the end of record {record.name} ({n / self.fs:.0f} s)")
        self.start = min(n, max(0, int(round(start_s * self.fs))))
        self.end = n if duration_s is None else min(n, self.start + int(round(duration_s * self.fs)))
        self.name = f"replay {record.name}"

    def chunks(self) -> Iterator[Chunk]:
        sig = self.record.signal  # float32 mV; each chunk is converted on its own (memory)
        beats = np.asarray(self.record.beat_samples, dtype=np.int64)
        classes = np.asarray(self.record.beat_classes)
        for lo in range(self.start, self.end, self.chunk):
            if self.stopped:
                return
            hi = min(self.end, lo + self.chunk)
            self.pacer.wait(hi - self.start, self.fs)
            a, b = np.searchsorted(beats, [lo, hi])
            truth = [(int(s) - self.start, str(c)) for s, c in zip(beats[a:b], classes[a:b])]
            yield Chunk(np.asarray(sig[lo:hi], dtype=np.float64), self.fs, time.perf_counter(), truth=truth)


def find_replay(spec: str, data: str | Path | None = None) -> tuple[Path, str]:
    """``(folder, record name)`` of the record ``spec`` names: a path ``DIR/NAME`` (a
    ``.hea``/``.dat``/``.atr`` suffix is ignored) or a bare MIT-BIH record name looked up like
    every other command (:func:`edge_ecg.records.locate.find_database`). A missing record is a
    one-line :class:`~edge_ecg.errors.DataError`."""
    from edge_ecg.records.load import read_header

    path = Path(spec)
    if path.suffix in (".hea", ".dat", ".atr"):
        path = path.with_suffix("")
    if len(path.parts) > 1 or path.with_suffix(".hea").is_file():
        folder, name = path.parent, path.name
    else:
        from edge_ecg.records.locate import find_database

        folder, name = find_database("mitdb", data), path.name
    read_header(folder, name)  # a missing record: one clear line
    return folder, name


def replay_lead(spec: str, data: str | Path | None = None, lead: str | int | None = None,
                model_lead: str | None = None) -> str | int:
    """The lead :func:`open_replay` reads (a signal name or index): ``lead`` when given (a
    record without it is a one-line :class:`~edge_ecg.errors.DataError` naming the leads it
    has), else the model's lead ``model_lead`` where the record has it, else the database's
    default (:meth:`~edge_ecg.records.databases.Database.choose_lead`, the rule the offline
    builder and evaluation use)."""
    from edge_ecg.records.databases import folder_database
    from edge_ecg.records.load import read_header

    folder, name = find_replay(spec, data)
    if isinstance(lead, int):
        return lead
    available = read_header(folder, name).sig_name or ()
    return folder_database(folder).choose_lead(available, lead, name, model_lead=model_lead)


def open_replay(spec: str, data: str | Path | None = None, lead: str | int | None = None,
                model_lead: str | None = None):
    """Load the record named by ``spec`` for replay (:func:`find_replay`).

    Returns a :class:`edge_ecg.records.Record` (lead :func:`replay_lead` in mV, with its
    annotations when there is an annotation file). ``lead`` is a signal name or index;
    ``model_lead`` the classifier's ``window.lead``. Without either, the database's default
    lead (MIT-BIH: MLII; svdb: ECG1; see :mod:`edge_ecg.records.databases`).
    """
    from edge_ecg.records.databases import folder_database
    from edge_ecg.records.load import load_record

    folder, name = find_replay(spec, data)
    database = folder_database(folder)
    lead = replay_lead(spec, data, lead, model_lead)
    return load_record(folder, name, lead=lead, database=database,
                       annotations=(folder / f"{name}.{database.annotator}").is_file())
