"""What the live runner emits: one :class:`BeatEvent` per detected beat, and a JSONL writer.

An event log (``edge-ecg stream --jsonl``) is one JSON object per line: first a header
``{"header": {...}}`` (the model, its window and the stream's settings, as
:func:`event_log_header` makes it), then one :meth:`BeatEvent.to_dict` per beat.
:func:`read_events` reads one back.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from edge_ecg.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class BeatEvent:
    """One detected beat.

    ``time_s`` is the R peak's time in seconds of stream time (device samples since the
    start, counting samples known to be lost); ``sample`` the same as a device sample index
    (at ``fs``, the device rate); ``model_sample`` the R index at the model's rate as the
    pipeline counts it. ``label`` is a class letter, or ``None`` when the beat was not
    classified (``skipped`` says why: ``"quality"`` for a flat, saturated or lead-off
    signal). ``probs`` maps class letter to probability. ``latency_ms`` is the wall-clock
    time from the arrival of the R-peak sample to the label (milliseconds). ``hr_bpm`` is
    the instantaneous heart rate from the preceding RR interval (None for the first beat
    of a segment). ``glitches`` counts the serial glitches replaced inside the beat's window
    (see :class:`edge_ecg.signal.impulse.ImpulseRejector`). ``truth`` is the true class when the source knows it (``--simulate``).
    ``adapted`` (with ``--adapt``) says the label came from a state adapted to the wearer.
    """

    time_s: float
    sample: int
    model_sample: int
    label: str | None
    probs: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None
    hr_bpm: float | None = None
    skipped: str | None = None
    truth: str | None = None
    glitches: int = 0
    adapted: bool | None = None

    def to_dict(self) -> dict:
        """JSON-able dict with rounded numbers (one JSONL line)."""
        out = {
            "time_s": round(self.time_s, 4),
            "sample": int(self.sample),
            "model_sample": int(self.model_sample),
            "label": self.label,
            "probs": {k: round(float(v), 4) for k, v in self.probs.items()},
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "hr_bpm": None if self.hr_bpm is None else round(self.hr_bpm, 1),
        }
        if self.skipped:
            out["skipped"] = self.skipped
        if self.truth is not None:
            out["truth"] = self.truth
        if self.glitches:
            out["glitches"] = int(self.glitches)
        if self.adapted is not None:
            out["adapted"] = self.adapted
        return out


class JsonlWriter:
    """Appends one JSON object per line to ``path`` (created, or truncated, on open).

    Lines are flushed every ``flush_every`` events so a ``tail -f`` sees them promptly and a
    crash loses little. ``header``: a dict written first, as the line ``{"header": header}``.
    A write that fails during the run (a full disk) never raises: the file is cut back to its
    last complete flushed line, writing stops, and :attr:`error` says so in one line
    (``option`` names the file there).
    """

    def __init__(self, path: str | Path, flush_every: int = 16, header: dict | None = None, option: str = "--jsonl"):
        self.path = Path(path)
        self.option = option
        try:
            self._fh = self.path.open("wb")
        except OSError as exc:
            raise DataError(f"{self.path}: cannot write events ({exc.strerror or exc})") from None
        self.flush_every = max(1, int(flush_every))
        self.count = 0  # events written (or, after an error, offered)
        self.error: str | None = None
        self._bytes = 0  # bytes handed to the file
        self._good = (0, 0)  # (bytes, events) known to be on disk: at the last successful flush
        if header is not None:
            self._put({"header": header})

    def _put(self, record: dict) -> None:
        if self.error is not None:
            return
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            self._fh.write(line)
            self._bytes += len(line)
        except OSError as exc:
            self._fail(exc)

    def write(self, record: dict) -> None:
        """Write one JSON-able dict as a line."""
        self._put(record)
        self.count += 1
        if self.count % self.flush_every == 0:
            self.flush()

    def flush(self) -> None:
        """Push the lines to the file (a failure is kept in :attr:`error`, not raised)."""
        if self.error is not None or self._fh.closed:
            return
        try:
            self._fh.flush()
        except OSError as exc:
            self._fail(exc)
            return
        self._good = (self._bytes, self.count)

    def _fail(self, exc: OSError) -> None:
        """Stop writing: cut the file back to its last complete flushed line."""
        from edge_ecg.outputs import disk_error

        good_bytes, good_events = self._good
        self.error = disk_error(self.option, self.path, exc, f"the file keeps the first {good_events} events; "
                                                              f"events after them were not written")
        log.error("%s", self.error)
        try:
            self._fh.close()
        except OSError:
            pass  # the buffer that did not fit: dropped
        try:
            os.truncate(self.path, good_bytes)
        except OSError:
            pass

    def write_event(self, event: BeatEvent) -> None:
        """Write one :class:`BeatEvent` (its :meth:`BeatEvent.to_dict`)."""
        self.write(event.to_dict())

    def close(self) -> None:
        """Flush and close the file (idempotent; a failure is kept in :attr:`error`)."""
        if not self._fh.closed:
            self.flush()
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_jsonl(path: str | Path) -> list[dict]:
    """All JSON objects of a JSONL file (blank lines skipped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def event_log_header(classifier, config, about: dict | None = None) -> dict:
    """The header of an event log: ``about`` (e.g. the model file and runtime), the
    classifier's window (:class:`~edge_ecg.config.WindowConfig`) and the stream's
    :class:`~edge_ecg.config.StreamConfig` ``config``, as JSON-able dicts."""
    from edge_ecg.config import to_dict

    return {**(about or {}), "window": to_dict(classifier.window), "stream_config": to_dict(config)}


def read_events(path: str | Path) -> tuple[dict | None, list[dict]]:
    """An event log's header (None for a log without one) and its beat events, as dicts."""
    objects = read_jsonl(path)
    if objects and "header" in objects[0]:
        return objects[0]["header"], objects[1:]
    return None, objects
