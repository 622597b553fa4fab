"""An emulated ECG board: a source replayed in real time through the firmware's encoder.

:class:`Emulator` turns a :mod:`~firmware_harness.sources` signal into what a board would
send: samples converted to ADC counts (``round(mV * gain + offset)``, clipped to
``adc_bits``), framed by the compiled C core (:mod:`firmware_harness.ccore`; the Python
encoder of :mod:`edge_ecg.stream.protocol` when no C compiler exists) or printed as ASCII
lines the way a hobby sketch does, then damaged by :class:`Faults`. :meth:`Emulator.run`
writes it to any file descriptor at the board's pace; :func:`open_pty` gives the
pseudo-terminal that ``edge-ecg emulate`` serves, so ``edge-ecg stream --device <path>``
reads it like a USB board.
"""

from __future__ import annotations

import contextlib

import fcntl
import logging
import os
import select
import struct
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from edge_ecg.errors import ConfigError
from edge_ecg.stream import protocol as P
from edge_ecg.stream.sources import check_device_fs

log = logging.getLogger(__name__)

FORMATS = ("binary", "ascii")
ENCODERS = ("auto", "c", "python")
#: The longest burst of random bytes one --garbage event inserts.
GARBAGE_BURST_MAX = 32


@dataclass
class Faults:
    """What goes wrong between the board and the reader.

    ``drop_bytes``: probability that each byte is lost. ``flip_bits``: probability that each
    bit is inverted (a bit error rate). ``garbage``: probability, per write (one frame, or one
    frame's worth of ASCII lines), that a burst of 1-32 random bytes is inserted before it.
    ``stall_every_s``/``stall_for_s``: after every ``stall_every_s`` seconds of output the
    link goes silent for ``stall_for_s`` seconds and what the board sent meanwhile is lost,
    as if unplugged (the board keeps counting, so the reader sees a sequence gap).
    ``clock_ppm``: the board's sampling clock runs this many ppm fast (negative: slow) while
    its header still announces the nominal rate. ``lead_off_every_s``/``lead_off_for_s``:
    electrodes come off the same way (samples at the ADC's top rail, the lead-off flag set,
    ``!`` lines in ASCII). ``glitch_every_s``: every that many seconds one sample is corrupted
    the way a serial line does it: in ASCII a fragment ``5`` merges with the line (``512``
    is read as ``5512``); in binary the board sends one wild value (half the ADC's range away,
    a valid frame). ``seed`` makes all of it repeatable.
    """

    drop_bytes: float = 0.0
    flip_bits: float = 0.0
    garbage: float = 0.0
    stall_every_s: float = 0.0
    stall_for_s: float = 0.0
    clock_ppm: float = 0.0
    lead_off_every_s: float = 0.0
    lead_off_for_s: float = 0.0
    glitch_every_s: float = 0.0
    seed: int | None = None

    def check(self) -> None:
        """Raise :class:`ConfigError` for a probability outside 0..1 or a negative duration."""
        for name in ("drop_bytes", "flip_bits", "garbage"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} is a probability: 0..1 (got {value})")
        for name in ("stall_every_s", "stall_for_s", "lead_off_every_s", "lead_off_for_s", "glitch_every_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 seconds (got {getattr(self, name)})")
        if abs(self.clock_ppm) >= 1e5:
            raise ConfigError(f"--clock-ppm {self.clock_ppm} is not a clock error (keep it below 100000)")


def _in_window(t: float, every: float, duration: float) -> bool:
    """True when ``t`` falls in the ``duration`` that follows each ``every`` seconds of normal running."""
    if every <= 0 or duration <= 0:
        return False
    return (t % (every + duration)) >= every


class FaultInjector:
    """Applies :class:`Faults` to the byte stream; counts every change it makes."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.rng = np.random.default_rng(faults.seed)
        self.bytes_dropped = 0
        self.bits_flipped = 0
        self.garbage_bytes = 0
        self.garbage_bursts = 0
        self.stalled_bytes = 0
        self.stalls = 0
        self._stalled = False

    def apply(self, data: bytes, t: float) -> bytes:
        """``data`` as the reader receives it, for a write at ``t`` seconds of board time."""
        f = self.faults
        stalled = _in_window(t, f.stall_every_s, f.stall_for_s)
        if stalled and not self._stalled:
            self.stalls += 1
        self._stalled = stalled
        if stalled:
            self.stalled_bytes += len(data)
            return b""
        buf = np.frombuffer(data, dtype=np.uint8).copy()
        if f.flip_bits > 0 and buf.size:
            n_flips = self.rng.binomial(8 * buf.size, f.flip_bits)
            if n_flips:
                bits = self.rng.choice(8 * buf.size, size=n_flips, replace=False)
                np.bitwise_xor.at(buf, bits // 8, (1 << (bits % 8)).astype(np.uint8))
                self.bits_flipped += int(n_flips)
        if f.drop_bytes > 0 and buf.size:
            keep = self.rng.random(buf.size) >= f.drop_bytes
            self.bytes_dropped += int(buf.size - keep.sum())
            buf = buf[keep]
        out = buf.tobytes()
        if f.garbage > 0 and self.rng.random() < f.garbage:
            burst = self.rng.integers(0, 256, size=int(self.rng.integers(1, GARBAGE_BURST_MAX + 1)), dtype=np.uint8)
            self.garbage_bursts += 1
            self.garbage_bytes += burst.size
            out = burst.tobytes() + out
        return out

    def stats(self) -> dict:
        """Counters of what was done to the stream."""
        return dict(bytes_dropped=self.bytes_dropped, bits_flipped=self.bits_flipped, garbage_bytes=self.garbage_bytes,
                    garbage_bursts=self.garbage_bursts, stalled_bytes=self.stalled_bytes, stalls=self.stalls)


@dataclass
class EmulatorSettings:
    """How the emulated board is set up.

    ``fs``: nominal sampling rate in Hz (what the header announces). ``gain``: ADC counts per
    mV; ``offset``: ADC count at 0 mV; samples are clipped to ``0 .. 2**adc_bits - 1``.
    ``fmt``: ``"binary"`` (protocol v1 frames) or ``"ascii"`` (one integer per line, CR LF).
    ``speed``: 1.0 real time, 2.0 twice as fast, 0 as fast as the reader takes it.
    ``duration_s``: stop after this much board time (None: when the source ends).
    ``encoder``: ``"auto"`` (the C core if it builds, else Python), ``"c"`` or ``"python"``.
    """

    fs: float = 250.0
    gain: float = 200.0
    offset: int = 1024
    adc_bits: int = 12
    fmt: str = "binary"
    samples_per_frame: int = P.DEFAULT_SAMPLES_PER_FRAME
    speed: float = 1.0
    duration_s: float | None = None
    device_id: int = 0
    firmware_version: int = P.DEFAULT_FIRMWARE_VERSION
    header_every_s: float = 1.0
    encoder: str = "auto"
    faults: Faults = field(default_factory=Faults)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting that cannot work."""
        check_device_fs(self.fs)  # the same range `edge-ecg stream` accepts
        if not self.gain > 0:
            raise ConfigError(f"--gain must be positive ADC counts per mV (got {self.gain})")
        if not 2 <= self.adc_bits <= 15:
            raise ConfigError(f"--adc-bits must be 2..15 (got {self.adc_bits})")
        if not 0 <= self.offset < 2 ** self.adc_bits:
            top = 2 ** self.adc_bits - 1
            raise ConfigError(f"--offset {self.offset} is outside the {self.adc_bits}-bit ADC range 0..{top}")
        if self.fmt not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {self.fmt!r})")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)} (got {self.encoder!r})")
        if not 1 <= self.samples_per_frame <= 32:
            raise ConfigError(f"--samples-per-frame must be 1..32 (got {self.samples_per_frame})")
        if self.speed < 0:
            raise ConfigError(f"--speed must be >= 0 (got {self.speed})")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError(f"--duration must be positive seconds (got {self.duration_s})")
        self.faults.check()

    def header(self) -> P.Header:
        """The protocol header this board announces."""
        return P.header_from_values(self.fs, self.gain, channels=1, baseline=self.offset,
                                    samples_per_frame=self.samples_per_frame, adc_bits=self.adc_bits,
                                    firmware_version=self.firmware_version, device_id=self.device_id)


def make_encoder(header: P.Header, header_every: int, prefer: str = "auto"):
    """The framer for ``header``: ``(encoder, "c" | "python")``.

    ``prefer="auto"`` builds and loads the C core and falls back to the Python encoder
    (logging why) when there is no compiler; ``"c"`` raises instead of falling back.
    """
    if prefer in ("auto", "c"):
        from firmware_harness.ccore import BuildError, CStreamEncoder, load_core

        try:
            return CStreamEncoder(load_core(), header, header_every=header_every), "c"
        except BuildError as exc:
            if prefer == "c":
                raise
            log.warning("%s; using the Python encoder instead", exc)
    return P.StreamEncoder(header, header_every=header_every), "python"


class Emulator:
    """A board replaying ``source`` with ``settings``; :meth:`chunks` is the pure part, :meth:`run` the I/O."""

    def __init__(self, source, settings: EmulatorSettings | None = None):
        self.source = source
        self.settings = settings or EmulatorSettings()
        self.settings.check()
        self.header = self.settings.header()
        self.encoder, self.encoder_name = None, "ascii"
        if self.settings.fmt == "binary":  # build the C core now, not after the reader attached
            every = round(self.settings.header_every_s * self.settings.fs)
            self.encoder, self.encoder_name = make_encoder(self.header, every, self.settings.encoder)
        self.faults = FaultInjector(self.settings.faults)
        self.samples = 0
        self.glitches = 0
        self.writes = 0
        self.bytes_generated = 0
        self.bytes_written = 0
        self.bytes_unread = 0

    @property
    def true_fs(self) -> float:
        """The rate the board really samples at (nominal ``fs`` corrected by ``clock_ppm``), Hz."""
        return self.settings.fs * (1.0 + self.settings.faults.clock_ppm * 1e-6)

    def to_adc(self, mv: np.ndarray) -> np.ndarray:
        """mV -> int16 ADC counts: ``round(mv * gain + offset)`` clipped to ``0 .. 2**adc_bits - 1``."""
        s = self.settings
        counts = np.round(np.asarray(mv, dtype=np.float64) * s.gain + s.offset)
        return np.clip(counts, 0, 2 ** s.adc_bits - 1).astype(np.int16)

    def _samples(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(adc_counts (k,), flags (k,))`` blocks of one frame each, from the source."""
        s, f = self.settings, self.settings.faults
        spf = s.samples_per_frame
        limit = None if s.duration_s is None else int(round(s.duration_s * self.true_fs))
        rail = 2 ** s.adc_bits - 1
        pending = np.zeros(0, dtype=np.int16)
        produced = 0
        chunks = self.source.iter_mv(s.fs, clock_ppm=f.clock_ppm, chunk_s=1.0)
        exhausted = False
        while not exhausted:
            try:
                pending = np.concatenate([pending, self.to_adc(next(chunks))])
            except StopIteration:
                exhausted = True
            if limit is not None and produced + len(pending) >= limit:
                pending = pending[: limit - produced]
                exhausted = True
            n_full = len(pending) if exhausted else len(pending) - len(pending) % spf
            for start in range(0, n_full, spf):
                block = pending[start: start + spf].copy()
                t = (produced + np.arange(len(block))) / self.true_fs
                off = np.array([_in_window(x, f.lead_off_every_s, f.lead_off_for_s) for x in t]) \
                    if f.lead_off_every_s > 0 and f.lead_off_for_s > 0 else np.zeros(len(block), bool)
                block[off] = rail
                produced += len(block)
                yield block, np.where(off, P.FLAG_LEAD_OFF, 0).astype(np.uint8)
            pending = pending[n_full:]

    def chunks(self) -> Iterator[tuple[float, bytes]]:
        """``(t, data)``: what the board writes at ``t`` seconds of board time, faults applied.

        ``t`` is when the last sample in ``data`` was taken (sample ``k`` is taken at
        ``k / true_fs``). One item per data frame (binary) or per frame's worth of lines (ASCII).
        An emulator replays once: make a new one to start again.
        """
        s, encoder = self.settings, self.encoder
        for block, flags in self._samples():
            glitch = self._glitches(len(block))
            self.samples += len(block)
            t = (self.samples - 1) / self.true_fs
            if encoder is None:
                data = "".join("!\r\n" if fl else f"{'5' if g else ''}{v}\r\n"
                               for v, fl, g in zip(block.tolist(), flags, glitch)).encode()
            else:
                if glitch.any():  # a wild value half the ADC's range away, in a valid frame
                    block = np.where(glitch, (block + 2 ** (s.adc_bits - 1)) % 2 ** s.adc_bits, block).astype(np.int16)
                data = encoder.push_block(block, flags)
                if len(block) < s.samples_per_frame:
                    data += encoder.flush()
            if not data:
                continue
            self.bytes_generated += len(data)
            self.writes += 1
            yield t, self.faults.apply(data, t)

    def _glitches(self, n: int) -> np.ndarray:
        """Which of the next ``n`` samples (from :attr:`samples` on) a ``glitch_every_s`` fault corrupts."""
        every = self.settings.faults.glitch_every_s
        if every <= 0:
            return np.zeros(n, dtype=bool)
        idx = self.samples + np.arange(n)
        period = every * self.true_fs
        hit = (np.floor(idx / period) != np.floor((idx - 1) / period)) & (idx > 0)
        self.glitches += int(hit.sum())
        return hit

    def run(self, fd: int, stop: threading.Event | None = None, drain_input: bool = False) -> dict:
        """Write :meth:`chunks` to ``fd`` at the board's pace until the source ends or ``stop`` is set.

        At ``speed > 0`` writes are non-blocking: bytes the reader has no room for are lost
        (counted in ``bytes_unread``), as on a UART nobody reads. At ``speed == 0`` every byte
        waits until the reader takes it. ``drain_input`` reads and discards what the reader
        sends back (a pty master must be drained). Returns :meth:`stats`.
        """
        stop = stop or threading.Event()
        speed = self.settings.speed
        os.set_blocking(fd, False)
        t0 = time.monotonic()
        for t, data in self.chunks():
            if stop.is_set():
                break
            if speed > 0:
                self._wait_until(fd, t0 + t / speed, stop, drain_input)
                if stop.is_set():
                    break
                self._write_some(fd, data)
            else:
                self._write_all(fd, data, stop, drain_input)
        return self.stats()

    def _wait_until(self, fd: int, deadline: float, stop: threading.Event, drain_input: bool) -> None:
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if drain_input:
                readable, _, _ = select.select([fd], [], [], min(left, 0.1))
                if readable:
                    _drain(fd)
            else:
                stop.wait(min(left, 0.1))

    def _write_some(self, fd: int, data: bytes) -> None:
        try:
            n = os.write(fd, data) if data else 0
        except BlockingIOError:
            n = 0
        self.bytes_written += n
        self.bytes_unread += len(data) - n

    def _write_all(self, fd: int, data: bytes, stop: threading.Event, drain_input: bool) -> None:
        view = memoryview(data)
        while view and not stop.is_set():
            readable, writable, _ = select.select([fd] if drain_input else [], [fd], [], 0.1)
            if readable:
                _drain(fd)
            if not writable:
                continue
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                continue
            self.bytes_written += n
            view = view[n:]

    def stats(self) -> dict:
        """What was sent and what the faults did to it."""
        return dict(encoder=self.encoder_name, samples=self.samples, glitches=self.glitches, writes=self.writes,
                    seconds=self.samples / self.true_fs, bytes_generated=self.bytes_generated,
                    bytes_written=self.bytes_written, bytes_unread=self.bytes_unread, **self.faults.stats())


def _drain(fd: int) -> None:
    try:
        os.read(fd, 4096)
    except (BlockingIOError, OSError):
        pass


def open_pty() -> tuple[int, int, str]:
    """A raw pseudo-terminal pair: ``(master_fd, slave_fd, slave_path)``.

    Raw mode matters: a cooked tty would turn CR into LF, swallow 0x11/0x13 as flow control
    and echo bytes back. Keep ``slave_fd`` open while serving so the pty survives a reader
    that closes and reopens it.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.ISTRIP)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    return master, slave, os.ttyname(slave)


def unread_bytes(slave_fd: int) -> int:
    """Bytes waiting on the slave side of a pty for the reader."""
    buf = fcntl.ioctl(slave_fd, termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def wait_until_read(slave_fd: int, timeout_s: float = 2.0) -> bool:
    """Wait (at most ``timeout_s``) until the reader has taken every byte; True if it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if unread_bytes(slave_fd) == 0:
            return True
        time.sleep(0.02)
    return unread_bytes(slave_fd) == 0


def wait_until_opened(pid: int, path: str, timeout_s: float = 30.0, settle_s: float = 0.5) -> None:
    """Wait until process ``pid`` holds the terminal ``path`` open (Linux ``/proc``), then ``settle_s``.

    pyserial empties a port's input right after opening it, as it does for a USB board, so
    an emulated board that must not lose its first bytes starts only after this returns.
    Raises TimeoutError when the process never opens it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd")):
                time.sleep(settle_s)
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} did not open {path} within {timeout_s:g} s")


@contextlib.contextmanager
def serving(board: "Emulator", master: int, reader_pid: int, path: str, timeout_s: float = 30.0):
    """Run ``board`` into the pty ``master`` once process ``reader_pid`` has opened ``path``.

    The board writes from a thread; leaving the block stops it. For tests and benchmarks
    that start a reader (``edge-ecg stream --device path``) and must not lose its first bytes.
    """
    wait_until_opened(reader_pid, path, timeout_s)
    stop = threading.Event()
    writer = threading.Thread(target=board.run, args=(master,), kwargs={"stop": stop, "drain_input": True},
                              name="emulated-board", daemon=True)
    writer.start()
    try:
        yield writer
    finally:
        stop.set()
        writer.join(timeout=5)


def describe(settings: EmulatorSettings, source_name: str) -> str:
    """One line saying what the emulated board sends."""
    s, f = settings, settings.faults
    faults = [f"{k}={getattr(f, k)}" for k in ("drop_bytes", "flip_bits", "garbage", "clock_ppm") if getattr(f, k)]
    if f.stall_every_s and f.stall_for_s:
        faults.append(f"stall {f.stall_for_s:g} s every {f.stall_every_s:g} s")
    if f.lead_off_every_s and f.lead_off_for_s:
        faults.append(f"lead-off {f.lead_off_for_s:g} s every {f.lead_off_every_s:g} s")
    if f.glitch_every_s:
        faults.append(f"a glitched sample every {f.glitch_every_s:g} s")
    speed = "as fast as read" if s.speed == 0 else f"{s.speed:g}x real time"
    text = (f"{source_name} at {s.fs:g} Hz, {s.gain:g} counts/mV, offset {s.offset}, {s.adc_bits}-bit, "
            f"{s.fmt}, {speed}")
    return text + (f"; faults: {', '.join(faults)}" if faults else "")


__all__ = ["Emulator", "EmulatorSettings", "FaultInjector", "Faults", "describe", "make_encoder", "open_pty",
           "serving", "unread_bytes", "wait_until_opened", "wait_until_read"]
