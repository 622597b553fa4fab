"""Text from a serial board, one sample (or a row of values) per line, as
``Serial.println(analogRead(A0))`` prints: :class:`AsciiParser` and :class:`SerialAsciiSource`.
Garbage and half lines are skipped and counted."""

from __future__ import annotations

import logging
import time

import numpy as np

from edge_ecg.errors import ConfigError, DeviceError
from edge_ecg.stream.sources.base import Chunk
from edge_ecg.stream.sources.serial import FormatGuard, SerialSource

log = logging.getLogger(__name__)

#: Longest text line accepted from an ASCII device (bytes); longer is garbage.
MAX_LINE = 256
#: Unreadable ASCII lines in a row that are repaired (the last good value held, like a glitch);
#: a longer run is a stretch without signal, flagged unusable.
MAX_HELD_LINES = 2
#: Largest magnitude an ASCII value may have (ADC counts or mV); beyond is garbage (digits run together).
MAX_VALUE = 1e7


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
