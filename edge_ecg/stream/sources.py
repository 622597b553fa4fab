"""Where live samples come from: a serial board, a WFDB record replayed, or the simulator.

Every source yields :class:`Chunk` objects from :meth:`chunks`: a block of consecutive
samples of one lead with its rate, arrival time and anything the pipeline must know (a gap
before it, samples flagged unusable by the device, ground truth when known). The pipeline
never needs to know which source it is reading.

- :class:`ReplaySource`: a WFDB record at ``speed`` times real time (0: as fast as possible).
- :class:`SimulatedSource`: :class:`~edge_ecg.stream.simulate.EcgSimulator`, paced likewise.
- :class:`SerialAsciiSource`: text, one sample (or a row of values) per line, as
  ``Serial.println(analogRead(A0))`` prints. Garbage and half lines are skipped and counted.
- :class:`SerialBinarySource`: the framed protocol of :mod:`edge_ecg.stream.protocol`.

Serial sources survive the board being unplugged: they log it, retry opening the port with
exponential back-off, and resume with a gap (the pipeline re-arms its detector).
:class:`ThreadedReader` runs a source in its own thread behind a bounded queue, so a
consumer slower than the device drops (and counts) samples instead of growing memory.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_ecg.errors import ConfigError, DeviceError

log = logging.getLogger(__name__)

#: Longest text line accepted from an ASCII device (bytes); longer is garbage.
MAX_LINE = 256
#: Unreadable ASCII lines in a row that are repaired (the last good value held, like a glitch);
#: a longer run is a stretch without signal, flagged unusable.
MAX_HELD_LINES = 2
#: Largest magnitude an ASCII value may have (ADC counts or mV); beyond is garbage (digits run together).
MAX_VALUE = 1e7
#: Sampling rates a device (or an emulated board) may have, Hz: one range for every command.
DEVICE_FS_RANGE = (50.0, 4000.0)
#: Seconds of bytes without a usable sample before the source says what the bytes look like.
FORMAT_CHECK_S = 3.0
#: Seconds without any byte before a live view stops showing the last heart rate.
SILENCE_S = 2.0


def check_device_fs(fs: float, option: str = "--fs") -> float:
    """``fs`` (Hz) if it is a plausible ECG sampling rate (:data:`DEVICE_FS_RANGE`), else a one-line
    :class:`ConfigError` naming ``option``."""
    lo, hi = DEVICE_FS_RANGE
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number of Hz, got {fs!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{option} {value:g} Hz is not a plausible ECG sampling rate ({lo:g}-{hi:g} Hz)")
    return value


def guess_format(data: bytes) -> str | None:
    """What raw serial bytes look like: ``"binary"`` (edge-ecg protocol frames), ``"ascii"``
    (text lines of numbers) or None (neither: noise, or a wrong baud rate)."""
    from edge_ecg.stream.protocol import MARKER

    if not data:
        return None
    if data.count(MARKER) >= 2:
        return "binary"
    text = sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13))
    if text >= 0.95 * len(data) and b"\n" in data and any(48 <= b <= 57 for b in data):
        return "ascii"
    return None


class FormatGuard:
    """Notices a serial stream that gives no usable samples, and says what its bytes look like.

    ``fmt`` is the ``--format`` in use; after ``check_s`` seconds in which bytes came but
    usable samples did not outnumber the lines or bytes thrown away, :attr:`hint` is one
    line ("these bytes look like binary frames: try --format binary", the reverse, or a wrong
    baud rate), logged once as a warning. Usable samples clear it.
    """

    def __init__(self, path: str, fmt: str, check_s: float = FORMAT_CHECK_S):
        self.path, self.fmt, self.check_s = path, fmt, float(check_s)
        self.hint: str | None = None
        self._warned: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Start a new observation window (after a (re)connection)."""
        self._t0: float | None = None
        self._good = self._bad = 0
        self._tail = b""

    def update(self, data: bytes, good: int, bad: int, now: float) -> None:
        """``data`` just read gave ``good`` usable samples and ``bad`` lines/bytes thrown away."""
        if self._t0 is None:
            self._t0 = now
        self._good += good
        self._bad += bad
        self._tail = (self._tail + data)[-1024:]
        if good and self._good > self._bad:
            self.hint = None
            self.reset()
            return
        elapsed = now - self._t0
        if elapsed < self.check_s or self._good > self._bad:
            return
        other = {"ascii": "binary", "binary": "ascii"}[self.fmt]
        seen = guess_format(self._tail)
        what = f"no usable samples in {elapsed:.0f} s with --format {self.fmt}"
        if seen == other:
            kind = "binary frames" if other == "binary" else "text lines"
            self.hint = f"{what}: these bytes look like {kind}: try --format {other}"
        else:
            self.hint = f"{what}: the bytes look like neither text lines nor binary frames (a wrong --baud?)"
        if self.hint.split(":", 1)[1] not in self._warned:
            self._warned.add(self.hint.split(":", 1)[1])
            log.warning("%s: %s", self.path, self.hint)


@dataclass
class Chunk:
    """Consecutive samples of one lead.

    ``samples`` float64 ``(n,)`` in ``units`` (``"mV"`` or ``"adc"`` counts; the pipeline
    does not care which); ``fs`` the device rate in Hz; ``arrival`` the
    :func:`time.perf_counter` time the samples were read. ``gap`` marks a discontinuity
    before this chunk (reconnect, lost frames, dropped samples, rate change) and ``lost``
    how many samples are known to be missing there (0 if unknown). ``bad`` is an optional
    bool ``(n,)`` mask of samples the device flagged unusable (lead-off). ``truth`` lists
    ground-truth beats ``(stream sample index, class letter)`` when the source knows them.
    """

    samples: np.ndarray
    fs: float
    arrival: float
    gap: bool = False
    lost: int = 0
    bad: np.ndarray | None = None
    units: str = "mV"
    gain: float | None = None
    baseline: float = 0.0
    truth: list = field(default_factory=list)
    read_s: float = 0.0  # time spent reading/parsing/generating it (the "read" stage)

    def __len__(self) -> int:
        return int(self.samples.shape[0])


class Source:
    """Base class: iterate :meth:`chunks`; :meth:`stop` ends it from another thread."""

    #: True when samples come at the device's pace (dropping beats waiting on a slow consumer).
    live: bool = False
    name: str = "source"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.counters: dict[str, int] = {}

    def chunks(self) -> Iterator[Chunk]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        """Ask :meth:`chunks` to end soon (thread-safe)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Release any device (idempotent)."""

    def stats(self) -> dict:
        """Counters of what the source skipped, lost or retried."""
        return dict(self.counters)


# --------------------------------------------------------------------------- paced sources


class Pacer:
    """Sleeps so that sample ``k`` is released at ``k / (fs * speed)`` seconds after the start."""

    def __init__(self, speed: float, stop: threading.Event):
        if speed < 0:
            raise ConfigError(f"--speed must be >= 0 (0: as fast as possible), got {speed}")
        self.speed = float(speed)
        self._stop = stop
        self._t0: float | None = None

    def wait(self, end_sample: int, fs: float) -> None:
        """Block until samples up to ``end_sample`` (exclusive) are due."""
        if self.speed == 0:
            return
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + end_sample / (fs * self.speed)
        while now < due and not self._stop.is_set():
            self._stop.wait(min(due - now, 0.1))
            now = time.perf_counter()


def default_chunk_s(speed: float) -> float:
    """Chunk length (s of signal): 10 ms times ``speed`` when paced (small latency), 10 s at full speed."""
    if speed <= 0:
        return 10.0
    return float(min(1.0, max(0.01, 0.01 * speed)))


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


class SimulatedSource(Source):
    """The built-in synthetic ECG (:class:`~edge_ecg.stream.simulate.EcgSimulator`) as a stream.

    ``speed`` and ``chunk_s`` as for :class:`ReplaySource`; ``duration_s`` ends it (None:
    endless); other keyword arguments go to the simulator.
    """

    name = "simulate"

    def __init__(self, fs: float = 360.0, speed: float = 1.0, chunk_s: float | None = None,
                 duration_s: float | None = None, seed: int = 0, **sim_kwargs):
        super().__init__()
        from edge_ecg.stream.simulate import EcgSimulator

        self.sim = EcgSimulator(fs=fs, seed=seed, **sim_kwargs)
        self.fs = float(fs)
        self.speed = float(speed)
        self.live = self.speed > 0
        self.pacer = Pacer(speed, self._stop)
        self.chunk = max(1, int(round((chunk_s or default_chunk_s(speed)) * self.fs)))
        self.total = None if duration_s is None else int(round(duration_s * self.fs))

    def chunks(self) -> Iterator[Chunk]:
        done = 0
        while not self.stopped and (self.total is None or done < self.total):
            n = self.chunk if self.total is None else min(self.chunk, self.total - done)
            self.pacer.wait(done + n, self.fs)
            t0 = time.perf_counter()
            x, beats = self.sim.generate(n)
            done += n
            now = time.perf_counter()
            yield Chunk(x, self.fs, now, truth=[(b.sample, b.label) for b in beats], read_s=now - t0)


# --------------------------------------------------------------------------- serial sources


def device_error(path: str, exc: BaseException) -> DeviceError:
    """A one-line :class:`DeviceError` for a serial port that cannot be opened."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    if code == errno.ENOENT or (code is None and not Path(path).exists()):
        return DeviceError(f"{path}: no such device (is the board plugged in? see `ls /dev/ttyUSB* /dev/ttyACM*`)")
    if code in (errno.EACCES, errno.EPERM):
        return DeviceError(
            f"{path}: permission denied (add yourself to the 'dialout' group: "
            f"sudo usermod -aG dialout $USER, then log in again)"
        )
    if code == errno.EBUSY:
        return DeviceError(f"{path}: device busy (another program has the port open)")
    return DeviceError(f"{path}: cannot open serial port ({exc})")


class SerialSource(Source):
    """Common serial-port handling: open, read, reconnect with back-off.

    ``path`` is the device (``/dev/ttyUSB0``, ``COM3``); ``baud`` the bit rate;
    ``backoff_s`` the first retry delay after the device is lost, doubled per failed attempt
    up to ``max_backoff_s``. ``read_timeout_s`` bounds how long one read waits (latency).
    Subclasses turn bytes into chunks in :meth:`parse` and forget partial input in
    :meth:`reset_parser`.
    """

    live = True
    fmt = "ascii"

    def __init__(self, path: str, baud: int = 115200, backoff_s: float = 0.2, max_backoff_s: float = 5.0,
                 read_timeout_s: float = 0.01):
        super().__init__()
        self.path = str(path)
        self.baud = int(baud)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.read_timeout_s = float(read_timeout_s)
        self._ser = None
        self._gap_pending = False
        self.name = f"{self.path} @ {self.baud} baud"
        self.counters = {"bytes": 0, "disconnects": 0, "reconnects": 0}
        self.device = True  # the summary describes a device, not a replay speed
        self.guard = FormatGuard(self.path, self.fmt)
        self.lost_since: float | None = None  # monotonic time the device was lost (None: connected)
        self.disconnected_s = 0.0
        self.last_data: float | None = None  # monotonic time of the last byte
        self.opened_at: float | None = None  # monotonic time the port was (re)opened
        self.closed_at: float | None = None  # monotonic time the port was closed at the end of the run
        self.silent_s = 0.0  # seconds the open port gave no data for more than SILENCE_S
        self.active_s = 0.0  # seconds from first to last samples of the finished connected spells
        self.active_samples = 0  # samples of those spells (their first reads excluded)
        self._spell_t0: float | None = None
        self._spell_last: float | None = None

    # ---- device handling

    def _open_port(self):
        import serial

        return serial.Serial(self.path, self.baud, timeout=self.read_timeout_s)

    def open(self) -> None:
        """Open the port now; a missing device or a permission problem is a :class:`DeviceError`."""
        if self._ser is not None:
            return
        try:
            self._ser = self._open_port()
        except Exception as exc:  # serial.SerialException (an OSError subclass is wrapped)
            raise device_error(self.path, exc) from None
        self.opened_at = time.monotonic()
        log.info("%s: opened at %d baud", self.path, self.baud)
        self.reset_parser(first=True)

    def close(self) -> None:
        if self.stopped and self._ser is not None:
            self.closed_at = time.monotonic()  # the end of the run: its status is frozen here
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # pragma: no cover - closing a dead port
                pass

    def _reconnect(self) -> bool:
        """Retry opening until it works (True) or the source is stopped (False)."""
        self.close()
        self._end_spell()
        self.counters["disconnects"] += 1
        t_lost = self.lost_since = time.monotonic()
        log.warning("%s: device lost, reconnecting (retrying with back-off)", self.path)
        delay = self.backoff_s
        while not self.stopped:
            self._stop.wait(delay)
            if self.stopped:
                return False
            try:
                self._ser = self._open_port()
            except Exception as exc:
                log.debug("%s: reopen failed (%s); next try in %.1f s", self.path, exc, delay)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            self.counters["reconnects"] += 1
            self.disconnected_s += time.monotonic() - t_lost
            self.lost_since = None
            self.opened_at = self.last_data = time.monotonic()
            log.warning("%s: reconnected after %.1f s; resuming", self.path, time.monotonic() - t_lost)
            self._gap_pending = True
            self.reset_parser(first=True)
            self.guard.reset()
            return True
        return False

    def status(self) -> str | None:
        """None while samples flow; else what is wrong, one line: the device is lost, silent,
        or sends bytes that give no samples (see :class:`FormatGuard`)."""
        now = self.closed_at if self.closed_at is not None else time.monotonic()
        if self.lost_since is not None:
            return f"device lost, reconnecting ({now - self.lost_since:.0f} s)"
        if self.guard.hint:
            return self.guard.hint
        last = self.last_data if self.last_data is not None else self.opened_at
        open_now = self._ser is not None or self.closed_at is not None
        if open_now and last is not None and now - last > SILENCE_S:
            return f"no data from {self.path} for {now - last:.0f} s"
        return None

    def _silent_now(self) -> float:
        last = self.last_data if self.last_data is not None else self.opened_at
        now = self.closed_at if self.closed_at is not None else time.monotonic()
        return 0.0 if last is None else now - last

    def serial_stats(self) -> dict:
        """The counters, with the time spent disconnected and the current :meth:`status`."""
        out = dict(self.counters)
        lost = self.disconnected_s + (time.monotonic() - self.lost_since if self.lost_since is not None else 0.0)
        out["disconnected_s"] = round(lost, 2)
        spell = (self._spell_last - self._spell_t0) if self._spell_last is not None else 0.0
        out["active_s"] = round(self.active_s + spell, 3)
        out["active_samples"] = self.active_samples
        status = self.status()
        silent = self.silent_s + (self._silent_now() if status and status.startswith("no data") else 0.0)
        if silent:
            out["silent_s"] = round(silent, 1)
        if status:
            out["status"] = status
        return out

    def chunks(self) -> Iterator[Chunk]:
        self.open()
        while not self.stopped:
            try:
                ser = self._ser
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:  # serial.SerialException, OSError, TypeError on a closed port
                log.debug("%s: read failed (%s)", self.path, exc)
                if not self._reconnect():
                    return
                continue
            if not data:
                continue
            self.counters["bytes"] += len(data)
            self._note_silence(time.monotonic())
            arrival = time.perf_counter()
            thrown = self.thrown_away()
            chunks = self.parse(data, arrival)
            self.guard.update(data, self.good_samples(chunks), self.thrown_away() - thrown, self.last_data)
            self._note_active(sum(len(c) for c in chunks))
            spent = (time.perf_counter() - arrival) / max(1, len(chunks))
            for chunk in chunks:
                chunk.read_s = spent
                if self._gap_pending:
                    chunk.gap = True
                    self._gap_pending = False
                yield chunk

    def _note_active(self, n: int) -> None:
        """``n`` samples just arrived: the connected time runs from a spell's first samples to its
        last ones (start-up and the time it takes to notice a lost device do not count), and the
        samples of a spell's first read (a backlog) are not counted against it."""
        if not n:
            return
        now = time.monotonic()
        if self._spell_t0 is None:
            self._spell_t0 = now
        else:
            self.active_samples += n
            self._spell_last = now

    def _end_spell(self) -> None:
        if self._spell_t0 is not None and self._spell_last is not None:
            self.active_s += self._spell_last - self._spell_t0
        self._spell_t0 = self._spell_last = None

    def _note_silence(self, now: float) -> None:
        """Data came at ``now`` (monotonic s): a wait of more than :data:`SILENCE_S` since the last
        data (or the port's opening) is counted in ``silences`` and ``silent_s``."""
        last = self.last_data if self.last_data is not None else self.opened_at
        if last is not None and now - last > SILENCE_S:
            self.counters["silences"] = self.counters.get("silences", 0) + 1
            self.silent_s += now - last
            log.warning("%s: no data for %.0f s; data again", self.path, now - last)
        self.last_data = now

    def good_samples(self, chunks: list[Chunk]) -> int:
        """How many of the samples in ``chunks`` came from usable input (for :class:`FormatGuard`)."""
        return sum(len(c) for c in chunks)

    # ---- to be provided by subclasses

    def reset_parser(self, first: bool = False) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def thrown_away(self) -> int:  # pragma: no cover - abstract
        """Lines or bytes the parser has thrown away so far."""
        raise NotImplementedError

    def parse(self, data: bytes, arrival: float) -> list[Chunk]:  # pragma: no cover - abstract
        raise NotImplementedError


class AsciiParser:
    """Text lines to numbers: one value per line, or a row of values split by commas,
    spaces, tabs or semicolons of which column ``column`` (0-based, ``--column``) is taken. ``label:value``
    tokens (the Arduino serial plotter's format) are accepted.

    Every complete line is one sample slot (the board printed it at its sampling instant), so
    time is kept whatever the line holds: a line that does not parse is counted in
    ``bad_lines`` and a lead-off line (``!``, what a board prints while an electrode is off,
    as ``edge-ecg emulate --format ascii`` does) in ``lead_off_lines``; both become a sample
    holding the last good value (see :meth:`feed_slots`). Lead-off samples are flagged
    unusable; so are unreadable lines from the third in a row on (:data:`MAX_HELD_LINES`):
    one or two are repaired, as a glitch is. Slots before the
    first good value since the parser was made are dropped (there is no time to keep yet).
    The first line after a (re)connect is dropped as a probable half line (``partial_lines``);
    a line longer than :data:`MAX_LINE` bytes is garbage (``bad_lines``, no slot: it is
    several lines run together). ``counter_run`` counts consecutive strictly increasing values
    of lines with several values (a ``millis`` column read as ECG).
    """

    def __init__(self, column: int = 0):
        if column < 0:
            raise ConfigError(f"--column must be >= 0 (a 0-based column), got {column}")
        self.column = int(column)
        self.bad_lines = 0
        self.lead_off_lines = 0
        self.partial_lines = 0
        self.lines = 0
        self.bad_slots = 0  # bad lines kept as sample slots
        self._bad_run: list[int] = []  # positions (in this feed's output) of the current run of bad lines
        self._run_len = 0  # length of that run, across feeds
        self.counter_run = 0
        self.last: float | None = None  # the last good value (what a bad slot holds)
        self.reset(first=True)

    def reset(self, first: bool = False) -> None:
        """Forget a partial line; with ``first``, also drop the next line (it may be cut)."""
        self._buf = b""
        self._discarding = False  # inside a line already longer than MAX_LINE
        self._skip_next = first

    def feed(self, data: bytes) -> np.ndarray:
        """Parse ``data`` (any cut); returns the good values of the complete lines (float64)."""
        values, _ = self.feed_slots(data)
        return values[self.parsed]

    def feed_slots(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Parse ``data`` (any cut); returns ``(values (n,) float64, bad (n,) bool)``, one per
        complete line: a bad or lead-off line holds the last good value and is flagged."""
        buf = self._buf + data
        parts = buf.split(b"\n")
        self._buf = parts.pop()
        if self._discarding and parts:  # the end of an over-long line: garbage, not a value
            parts[0], self._discarding = b"", False
        if len(self._buf) > MAX_LINE:
            if not self._discarding:
                self.bad_lines += 1
            self._buf, self._discarding = b"", True
        out, bad, parsed = [], [], []
        self._bad_run = []
        for raw in parts:
            if self._skip_next:
                self._skip_next = False
                self.partial_lines += 1
                continue
            line = raw.strip()
            if not line:
                continue
            if len(line) > MAX_LINE:  # several lines run together: no sample slot of its own
                self.bad_lines += 1
                continue
            self.lines += 1
            if line.startswith(b"!"):
                self.lead_off_lines += 1
                value = None
            else:
                value = self._value(line)
                if value is None:
                    self.bad_lines += 1
            if value is None:
                if self.last is not None:
                    lead_off = line.startswith(b"!")
                    out.append(self.last)
                    bad.append(lead_off)
                    parsed.append(False)
                    if not lead_off:
                        self._hold(bad)
                continue
            self._run_len, self._bad_run = 0, []
            if self.last is not None and value > self.last and self._several:
                self.counter_run += 1
            else:
                self.counter_run = 0
            self.last = value
            out.append(value)
            bad.append(False)
            parsed.append(True)
        self.parsed = np.asarray(parsed, dtype=bool)  # which slots hold a value read from their own line
        return np.asarray(out, dtype=np.float64), np.asarray(bad, dtype=bool)

    def _hold(self, bad: list[bool]) -> None:
        """The unreadable line just added to ``bad`` holds the last value; from the
        (:data:`MAX_HELD_LINES` + 1)-th in a row on, the run is flagged unusable."""
        self.bad_slots += 1
        self._run_len += 1
        self._bad_run.append(len(bad) - 1)
        if self._run_len > MAX_HELD_LINES:
            for i in self._bad_run:
                bad[i] = True

    def _value(self, line: bytes) -> float | None:
        self._several = False
        if len(line) > MAX_LINE:
            return None
        tokens = line.replace(b",", b" ").replace(b";", b" ").replace(b"\t", b" ").split()
        if len(tokens) <= self.column:
            return None
        self._several = len(tokens) > 1
        token = tokens[self.column]
        if b":" in token:
            token = token.rsplit(b":", 1)[1]
        try:
            value = float(token)
        except ValueError:
            return None
        return value if np.isfinite(value) and abs(value) <= MAX_VALUE else None


class SerialAsciiSource(SerialSource):
    """A board printing text lines (see :class:`AsciiParser`) at ``fs`` Hz (which it cannot tell us).

    ``check_rate_s``: after that many seconds of data, the measured line rate (every line is a
    sample slot, bad and lead-off lines too) is compared with ``fs``; more than 25 % off is a
    :class:`DeviceError` (a wrong ``--fs``). A value column that only ever grows for
    ``COUNTER_S`` seconds (a ``millis`` column read as ECG) is logged once and shown as the
    source's status, with the ``--column`` to try.
    """

    #: Seconds of strictly increasing values (in lines of several values) that make a column a counter.
    COUNTER_S = 2.0

    def __init__(self, path: str, fs: float, baud: int = 115200, column: int = 0, check_rate_s: float | None = 3.0,
                 **kwargs):
        if fs is None or not fs > 0:
            raise ConfigError("--fs is required with --format ascii (the board's sampling rate in Hz)")
        self.parser = AsciiParser(column)
        super().__init__(path, baud, **kwargs)
        self.fs = float(fs)
        self.check_rate_s = check_rate_s
        self._rate_t0: float | None = None
        self._rate_n = self._rate_good = self._rate_bad = 0
        self._rate_checked = False
        self._good_in_parse = 0
        self.column_hint: str | None = None

    def reset_parser(self, first: bool = False) -> None:
        self.parser.reset(first)
        self._rate_t0 = None
        self._rate_n = self._rate_good = 0

    def thrown_away(self) -> int:
        return self.parser.bad_lines

    def good_samples(self, chunks: list[Chunk]) -> int:
        return self._good_in_parse

    def status(self) -> str | None:
        return super().status() or self.column_hint

    def stats(self) -> dict:
        out = self.serial_stats()
        out.update(lines=self.parser.lines, bad_lines=self.parser.bad_lines, lead_off_lines=self.parser.lead_off_lines,
                   partial_lines=self.parser.partial_lines)
        return out

    def parse(self, data: bytes, arrival: float) -> list[Chunk]:
        slots_before = self.parser.bad_slots
        values, bad = self.parser.feed_slots(data)
        self._good_in_parse = values.size - (self.parser.bad_slots - slots_before)
        if values.size == 0:
            return []
        self._check_rate(values.size, int(values.size - bad.sum()), arrival)
        self._check_counter()
        return [Chunk(values, self.fs, arrival, units="adc", bad=bad if bad.any() else None)]

    def _check_counter(self) -> None:
        if self.column_hint is None and self.parser.counter_run >= self.COUNTER_S * self.fs:
            c = self.parser.column
            self.column_hint = (f"column {c} only ever grows (a counter such as millis?): "
                                f"give the ECG's column with --column {c + 1 if c == 0 else 0}")
            log.warning("%s: %s", self.path, self.column_hint)

    def _check_rate(self, n: int, good: int, now: float) -> None:
        """``n`` sample slots (lines) arrived at ``now``, ``good`` of them with a value."""
        if self.check_rate_s is None or self._rate_checked:
            return
        if self._rate_t0 is None:
            self._rate_t0 = now  # samples in this first read do not count: they may be a backlog
            self._rate_bad = self.parser.bad_lines
            return
        self._rate_n += n
        self._rate_good += good
        elapsed = now - self._rate_t0
        if elapsed >= self.check_rate_s and self.parser.bad_lines - self._rate_bad > self._rate_good:
            # mostly lines that do not parse: a wrong --format or --baud, not a wrong --fs (FormatGuard says so)
            self._rate_t0, self._rate_n, self._rate_good, self._rate_bad = now, 0, 0, self.parser.bad_lines
            return
        if elapsed >= self.check_rate_s:
            self._rate_checked = True
            rate = self._rate_n / elapsed
            if not 0.75 <= rate / self.fs <= 1.33:
                raise DeviceError(
                    f"{self.path}: the device sends about {rate:.0f} samples/s but --fs is {self.fs:g} Hz; "
                    f"give the board's real sampling rate"
                )


class SerialBinarySource(SerialSource):
    """A board speaking the framed binary protocol (:mod:`edge_ecg.stream.protocol`).

    The header gives rate, gain and channel count; ``column`` picks the channel (0-based,
    ``--column``).
    ``fs``, when given, must agree with the header (a data frame before any header is then
    accepted at that rate; without it, frames before the first header are skipped and
    counted). A sequence gap, a device restart, a reported overflow or a header change is a
    gap for the pipeline; lead-off flags mark samples unusable.
    """

    fmt = "binary"

    def __init__(self, path: str, baud: int = 115200, column: int = 0, fs: float | None = None, **kwargs):
        from edge_ecg.stream.protocol import FrameDecoder

        if column < 0:
            raise ConfigError(f"--column must be >= 0 (a 0-based channel), got {column}")
        self.decoder = FrameDecoder()
        self.column = int(column)
        self.user_fs = None if fs is None else float(fs)
        self.header = None
        super().__init__(path, baud, **kwargs)
        self.counters.update(frames_before_header=0, gaps=0)

    def reset_parser(self, first: bool = False) -> None:
        # keep the decoder's counters; drop its partial frame and sequence memory
        stats = self.decoder.stats() if hasattr(self, "decoder") else {}
        self.decoder.reset()
        for k, v in stats.items():
            setattr(self.decoder, k, v)

    def thrown_away(self) -> int:
        return self.decoder.garbage_bytes + self.counters["frames_before_header"]

    def stats(self) -> dict:
        out = self.serial_stats()
        out.update(self.decoder.stats())
        return out

    def parse(self, data: bytes, arrival: float) -> list[Chunk]:
        from edge_ecg.stream.protocol import Header

        out: list[Chunk] = []
        parts: list[np.ndarray] = []
        bads: list[np.ndarray] = []
        group = {"gap": False, "lost": 0}  # of the frames collected in parts
        gap_next, lost_next = False, 0

        def flush():
            if parts:
                fs = self.header.fs if self.header is not None else self.user_fs
                gain = self.header.gain if self.header is not None else None
                base = self.header.baseline if self.header is not None else 0.0
                out.append(Chunk(np.concatenate(parts), fs, arrival, gap=group["gap"], lost=group["lost"],
                                 bad=np.concatenate(bads), units="adc", gain=gain, baseline=base))
                parts.clear()
                bads.clear()

        for frame in self.decoder.feed(data):
            if isinstance(frame, Header):
                if self.user_fs is not None and abs(frame.fs - self.user_fs) > 1e-6 * self.user_fs:
                    raise DeviceError(
                        f"{self.path}: --fs {self.user_fs:g} does not match the device's header "
                        f"({frame.fs:g} Hz); leave --fs out with --format binary"
                    )
                if self.header is not None and frame.fs != self.header.fs:
                    flush()
                    gap_next = True
                    self.counters["gaps"] += 1
                self.header = frame
                continue
            if self.header is None and self.user_fs is None:
                self.counters["frames_before_header"] += 1
                continue
            if self.column >= frame.channels:
                raise DeviceError(f"{self.path}: --column {self.column} but the device sends {frame.channels} "
                                  f"channel(s)")
            if frame.lost_before or frame.overflow:
                gap_next = True
                lost_next += frame.lost_before * len(frame) if frame.lost_before > 0 else 0
                self.counters["gaps"] += 1
            if gap_next or not parts:
                flush()
                group = {"gap": gap_next, "lost": lost_next}
                gap_next, lost_next = False, 0
            parts.append(frame.samples[:, self.column].astype(np.float64))
            bads.append(np.full(len(frame), frame.lead_off))
        flush()
        return out


# --------------------------------------------------------------------------- threaded reading


class ThreadedReader:
    """Runs ``source.chunks()`` in a thread behind a queue of at most ``max_chunks`` chunks.

    With ``drop`` (for live sources), a full queue drops the newest chunk instead of
    blocking the device reader: the samples are counted in :attr:`dropped_samples` and the
    next delivered chunk carries a gap (the pipeline resets). Without ``drop`` the reader
    waits (replay at full speed: nothing is lost). An exception in the reader (a device
    error) is re-raised by :meth:`get`.
    """

    def __init__(self, source: Source, max_chunks: int = 256, drop: bool | None = None):
        self.source = source
        self.drop = source.live if drop is None else bool(drop)
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_chunks)))
        self.dropped_samples = 0
        self.dropped_chunks = 0
        self._pending_gap = False
        self._pending_lost = 0
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-ecg-reader", daemon=True)

    def start(self) -> "ThreadedReader":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for chunk in self.source.chunks():
                if self._pending_gap:
                    chunk.gap = True
                    chunk.lost += self._pending_lost
                if self.drop:
                    try:
                        self.queue.put_nowait(chunk)
                    except queue.Full:
                        self.dropped_samples += len(chunk)
                        self.dropped_chunks += 1
                        self._pending_gap = True
                        self._pending_lost += len(chunk)
                        continue
                else:
                    while not self.source.stopped:
                        try:
                            self.queue.put(chunk, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                self._pending_gap, self._pending_lost = False, 0
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            self._done.set()

    def get(self, timeout: float = 0.1) -> Chunk | None:
        """The next chunk, or None if none came within ``timeout`` s; raises the reader's error."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            if self._error is not None:
                raise self._error
            return None

    @property
    def finished(self) -> bool:
        """True when the source has ended and every chunk has been taken."""
        if self._error is not None and self.queue.empty():
            raise self._error
        return self._done.is_set() and self.queue.empty()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the source and wait (up to ``timeout`` s) for the thread; closes the source."""
        self.source.stop()
        self._thread.join(timeout)
        self.source.close()
