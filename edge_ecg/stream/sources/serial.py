"""A serial board that may be unplugged: :class:`SerialSource` (open, read, reconnect with
back-off, resume with a gap) and what it says about bytes it cannot use (:class:`FormatGuard`).

The formats are its subclasses: :class:`~edge_ecg.stream.sources.ascii.SerialAsciiSource` and
:class:`~edge_ecg.stream.sources.binary.SerialBinarySource`.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from edge_ecg.errors import DeviceError
from edge_ecg.stream.sources.base import Chunk, Source

log = logging.getLogger(__name__)

#: Seconds of bytes without a usable sample before the source says what the bytes look like.
FORMAT_CHECK_S = 3.0
#: Seconds without any byte before a live view stops showing the last heart rate.
SILENCE_S = 2.0


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
