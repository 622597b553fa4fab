"""The binary serial protocol between an ECG board and edge-ecg (version 1).

The same bytes are produced by the C encoder in ``firmware_harness/c`` (what a board runs)
and by :func:`encode_header` / :func:`encode_data` / :class:`StreamEncoder` here; both are
tested against the byte vectors in ``firmware_harness/vectors/``. The full specification is
``firmware_harness/PROTOCOL.md``. In short, every frame is (little-endian)::

    offset  size  field
    0       2     start-of-frame marker 0xEC 0x47
    2       1     protocol version (1)
    3       1     frame type: 1 header, 2 data
    4       2     payload length L in bytes (uint16, at most MAX_PAYLOAD)
    6       L     payload
    6+L     2     CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
                  XOR) of bytes 2 .. 6+L-1, stored little-endian

Header payload (20 bytes): ``uint32 fs_millihz, uint32 gain_milli (ADC counts per mV x
1000), int16 baseline (ADC counts at 0 mV), uint8 channels, uint8 samples_per_frame, uint8
adc_bits, uint8 reserved (0), uint16 firmware_version, uint32 device_id``. The device
re-sends it about once a second so a reader that attaches mid-stream can sync.

Data payload: ``uint16 seq (wraps at 65536), uint8 flags (bit 0 lead-off, bit 1 device
buffer overflow: samples were lost before this frame), uint8 n`` then ``n * channels`` int16
ADC counts, interleaved by sample (``s0c0, s0c1, ..., s1c0, ...``).

:class:`FrameDecoder` turns any byte stream, cut anywhere and mixed with garbage, into
:class:`Header` and :class:`DataFrame` objects and counts what it had to throw away.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

import numpy as np

MARKER = b"\xec\x47"
VERSION = 1
TYPE_HEADER = 1
TYPE_DATA = 2
FLAG_LEAD_OFF = 0x01
FLAG_OVERFLOW = 0x02
#: Bytes before the payload: marker (2), version, type, length (2).
PREFIX_SIZE = 6
CRC_SIZE = 2
#: Largest payload a v1 frame may carry; longer claimed lengths are treated as garbage.
MAX_PAYLOAD = 512
#: Data payload bytes before the samples: seq (2), flags, n.
DATA_PREFIX = 4
#: Samples per channel in one data frame unless told otherwise.
DEFAULT_SAMPLES_PER_FRAME = 10
DEFAULT_FIRMWARE_VERSION = 0x0100

_HEADER = struct.Struct("<IIhBBBBHI")
_DATA_PREFIX = struct.Struct("<HBB")
_FRAME_PREFIX = struct.Struct("<2sBBH")


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (poly 0x1021, init 0xFFFF; ``b"123456789"`` -> 0x29B1).

    Pass a previous result as ``crc`` to continue over more bytes.
    """
    return binascii.crc_hqx(bytes(data), crc)


@dataclass(frozen=True)
class Header:
    """What a board says about its samples: rate, gain, baseline, layout, identity.

    ``fs_millihz`` is the sampling rate in mHz (360000 = 360 Hz); ``gain_milli`` is ADC
    counts per mV times 1000; ``baseline`` is the ADC count at 0 mV.
    """

    fs_millihz: int
    gain_milli: int
    baseline: int
    channels: int
    samples_per_frame: int
    adc_bits: int
    firmware_version: int = DEFAULT_FIRMWARE_VERSION
    device_id: int = 0

    @property
    def fs(self) -> float:
        """Sampling rate in Hz."""
        return self.fs_millihz / 1000.0

    @property
    def gain(self) -> float:
        """ADC counts per mV."""
        return self.gain_milli / 1000.0

    def to_mv(self, samples) -> np.ndarray:
        """ADC counts (any shape) -> float32 mV, ``(counts - baseline) / gain``."""
        if self.gain_milli == 0:
            raise ValueError("header gain is 0 counts/mV; cannot convert to mV")
        return ((np.asarray(samples, dtype=np.float64) - self.baseline) / self.gain).astype(np.float32)


@dataclass
class DataFrame:
    """One data frame: ``samples`` int16 ADC counts, shape ``(n, channels)``.

    ``lost_before`` is the number of frames missing (by sequence number) just before this
    one: 0 when it follows its predecessor (or is the first), ``-1`` when the sequence went
    backwards (the device restarted), so ``if frame.lost_before:`` means "discontinuity".
    """

    seq: int
    flags: int
    samples: np.ndarray
    lost_before: int = 0

    @property
    def lead_off(self) -> bool:
        """True when an electrode was off during any sample of this frame."""
        return bool(self.flags & FLAG_LEAD_OFF)

    @property
    def overflow(self) -> bool:
        """True when the device dropped samples (buffer full) just before this frame."""
        return bool(self.flags & FLAG_OVERFLOW)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    def __len__(self) -> int:
        return int(self.samples.shape[0])


def _frame(frame_type: int, payload: bytes) -> bytes:
    body = struct.pack("<BBH", VERSION, frame_type, len(payload)) + payload
    return MARKER + body + struct.pack("<H", crc16_ccitt(body))


def _check_range(name: str, value: int, low: int, high: int) -> int:
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is outside {low}..{high}")
    return value


def header_from_values(
    fs: float,
    gain: float,
    channels: int = 1,
    baseline: int = 0,
    samples_per_frame: int = DEFAULT_SAMPLES_PER_FRAME,
    adc_bits: int = 12,
    firmware_version: int = DEFAULT_FIRMWARE_VERSION,
    device_id: int = 0,
) -> Header:
    """A :class:`Header` from ``fs`` in Hz and ``gain`` in ADC counts per mV (rounded to 1/1000)."""
    fs_millihz = _check_range("fs (mHz)", round(float(fs) * 1000), 1, 0xFFFFFFFF)
    gain_milli = _check_range("gain (counts/mV x 1000)", round(float(gain) * 1000), 1, 0xFFFFFFFF)
    channels = _check_range("channels", channels, 1, 255)
    spf = _check_range("samples_per_frame", samples_per_frame, 1, 255)
    if DATA_PREFIX + 2 * spf * channels > MAX_PAYLOAD:
        raise ValueError(f"{spf} samples x {channels} channels do not fit a {MAX_PAYLOAD}-byte payload")
    return Header(
        fs_millihz=fs_millihz,
        gain_milli=gain_milli,
        baseline=_check_range("baseline", baseline, -32768, 32767),
        channels=channels,
        samples_per_frame=spf,
        adc_bits=_check_range("adc_bits", adc_bits, 1, 16),
        firmware_version=_check_range("firmware_version", firmware_version, 0, 0xFFFF),
        device_id=_check_range("device_id", device_id, 0, 0xFFFFFFFF),
    )


def encode_header_frame(header: Header) -> bytes:
    """The header frame (28 bytes) for ``header``."""
    payload = _HEADER.pack(
        header.fs_millihz, header.gain_milli, header.baseline, header.channels,
        header.samples_per_frame, header.adc_bits, 0, header.firmware_version, header.device_id,
    )
    return _frame(TYPE_HEADER, payload)


def encode_header(fs: float, gain: float, channels: int = 1, **fields) -> bytes:
    """A header frame: ``fs`` in Hz, ``gain`` in ADC counts per mV, plus any :class:`Header` field.

    >>> len(encode_header(360.0, 200.0, baseline=1024))
    28
    """
    return encode_header_frame(header_from_values(fs, gain, channels, **fields))


def encode_data(seq: int, samples, channels: int = 1, lead_off: bool = False, overflow: bool = False,
                flags: int = 0) -> bytes:
    """A data frame holding ``samples`` (int16 ADC counts).

    ``samples`` is ``(n * channels,)`` interleaved by sample or ``(n, channels)``; ``seq`` is
    taken modulo 65536. ``lead_off``/``overflow`` set flag bits 0/1 (``flags`` adds raw bits).
    Raises ``ValueError`` if a value does not fit int16 or the frame would be too long.
    """
    arr = np.asarray(samples)
    if arr.ndim == 2:
        channels = arr.shape[1]
    channels = _check_range("channels", channels, 1, 255)
    flat = arr.reshape(-1)
    if flat.size == 0 or flat.size % channels:
        raise ValueError(f"{flat.size} samples do not split into {channels} channels (need n >= 1)")
    if not np.issubdtype(flat.dtype, np.integer):
        if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)):
            raise ValueError("samples must be whole ADC counts")
    if flat.size and (flat.min() < -32768 or flat.max() > 32767):
        raise ValueError("samples must fit int16 (-32768..32767)")
    n = flat.size // channels
    if n > 255 or DATA_PREFIX + 2 * flat.size > MAX_PAYLOAD:
        raise ValueError(f"{n} samples x {channels} channels do not fit one data frame")
    flags = int(flags) | (FLAG_LEAD_OFF if lead_off else 0) | (FLAG_OVERFLOW if overflow else 0)
    payload = _DATA_PREFIX.pack(int(seq) & 0xFFFF, flags & 0xFF, n) + flat.astype("<i2").tobytes()
    return _frame(TYPE_DATA, payload)


class StreamEncoder:
    """Samples in, frames out, exactly as the C ``ecg_framer`` on a board does it.

    Collects ``header.samples_per_frame`` sample sets per data frame; before the first data
    frame, and before any frame once ``header_every`` samples (default: one second's worth)
    went out since the last header, it emits a header frame. Flags of the samples in a frame
    are OR-ed together. ``seq`` starts at ``first_seq`` and wraps at 65536.
    """

    def __init__(self, header: Header, header_every: int | None = None, first_seq: int = 0):
        self.header = header
        self.header_every = round(header.fs) if header_every is None else int(header_every)
        self.seq = int(first_seq) & 0xFFFF
        self._since_header = 0
        self._header_sent = False
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._flags = 0

    def resend_header(self) -> None:
        """Emit a header before the next data frame (e.g. after a settings change)."""
        self._header_sent = False

    def _emit(self) -> bytes:
        out = b""
        if not self._header_sent or (self.header_every > 0 and self._since_header >= self.header_every):
            out += encode_header_frame(self.header)
            self._header_sent = True
            self._since_header = 0
        block = np.concatenate(self._pending)
        out += encode_data(self.seq, block, self.header.channels, flags=self._flags)
        self._since_header += len(block)
        self.seq = (self.seq + 1) & 0xFFFF
        self._pending, self._n_pending, self._flags = [], 0, 0
        return out

    def push(self, values, flags: int = 0) -> bytes:
        """Add one sample set (``channels`` ADC counts); returns the frames it completed (maybe b"")."""
        return self.push_block(np.asarray(values).reshape(1, -1), [flags])

    def push_block(self, samples, flags=None) -> bytes:
        """Add ``samples`` ``(n,)`` or ``(n, channels)`` ADC counts with optional per-sample ``flags`` (n,).

        Returns the bytes of every frame completed (headers included), possibly b"".
        """
        arr = np.asarray(samples, dtype=np.int64)
        arr = arr.reshape(len(arr), -1) if arr.ndim else arr.reshape(1, 1)
        if arr.shape[1] != self.header.channels:
            raise ValueError(f"expected {self.header.channels} values per sample, got {arr.shape[1]}")
        fl = np.zeros(len(arr), dtype=np.int64) if flags is None else np.asarray(flags, dtype=np.int64).reshape(-1)
        if len(fl) != len(arr):
            raise ValueError(f"{len(fl)} flags for {len(arr)} samples")
        out, i, spf = [], 0, self.header.samples_per_frame
        while i < len(arr):
            take = min(spf - self._n_pending, len(arr) - i)
            self._pending.append(arr[i: i + take])
            self._flags |= int(np.bitwise_or.reduce(fl[i: i + take])) & 0xFF
            self._n_pending += take
            i += take
            if self._n_pending >= spf:
                out.append(self._emit())
        return b"".join(out)

    def flush(self) -> bytes:
        """Frame whatever samples are pending (a short last frame); b"" if none."""
        return self._emit() if self._pending else b""


class FrameDecoder:
    """Bytes in, :class:`Header` and :class:`DataFrame` objects out; never raises on bad input.

    Frames may be split across :meth:`feed` calls anywhere. Between frames the decoder
    scans for the marker; a candidate frame is accepted only when its version, type,
    length and CRC all check out, otherwise the decoder steps one byte past the false marker
    and scans again (so a frame hidden behind a corrupted one is still found).

    Counters (attributes, also :meth:`stats`): ``bytes_in``; ``frames`` (data) and
    ``headers`` accepted; ``garbage_bytes`` skipped outside accepted frames; ``crc_errors``;
    ``seq_gaps`` (times the sequence skipped) and ``lost_frames`` (frames skipped, counted
    across the uint16 wrap); ``seq_restarts`` (sequence went backwards); ``header_changes``
    (a header different from the previous one); ``overflow_frames`` (device reported lost
    samples); ``unsupported_frames`` (valid CRC, unknown version or type);
    ``malformed_frames`` (valid CRC, impossible payload).
    """

    _COUNTERS = (
        "bytes_in", "frames", "headers", "garbage_bytes", "crc_errors", "seq_gaps", "lost_frames",
        "seq_restarts", "header_changes", "overflow_frames", "unsupported_frames", "malformed_frames",
    )

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = int(max_payload)
        self.reset()

    def reset(self) -> None:
        """Forget buffered bytes, the last header and sequence number, and zero the counters."""
        self._buf = bytearray()
        self._last_seq: int | None = None
        self.header: Header | None = None
        for name in self._COUNTERS:
            setattr(self, name, 0)

    def stats(self) -> dict:
        """The counters as a dict (see the class docstring)."""
        return {name: getattr(self, name) for name in self._COUNTERS}

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list:
        """Decode ``data`` (any length, any cut); returns the complete frames it finished, in order."""
        buf = self._buf
        buf += data
        self.bytes_in += len(data)
        out: list = []
        pos = 0
        end = len(buf)
        while pos < end:
            start = buf.find(MARKER, pos)
            if start < 0:
                keep = 1 if buf[end - 1] == MARKER[0] else 0
                self.garbage_bytes += end - pos - keep
                pos = end - keep
                break
            self.garbage_bytes += start - pos
            pos = start
            if end - pos < PREFIX_SIZE:
                break
            _, version, ftype, length = _FRAME_PREFIX.unpack_from(buf, pos)
            if not self._plausible(version, ftype, length):
                self.garbage_bytes += 1
                pos += 1
                continue
            total = PREFIX_SIZE + length + CRC_SIZE
            if end - pos < total:
                break
            body = bytes(buf[pos + 2: pos + PREFIX_SIZE + length])
            crc = buf[pos + total - 2] | (buf[pos + total - 1] << 8)
            if crc16_ccitt(body) != crc:
                self.crc_errors += 1
                self.garbage_bytes += 1
                pos += 1
                continue
            frame = self._accept(version, ftype, body[4:])
            if frame is not None:
                out.append(frame)
            pos += total
        del buf[:pos]
        return out

    def _plausible(self, version: int, ftype: int, length: int) -> bool:
        if version == 0 or length > self.max_payload:
            return False
        if version != VERSION:
            return True  # checked by CRC, then counted as unsupported
        if ftype == TYPE_HEADER:
            return length == _HEADER.size
        if ftype == TYPE_DATA:
            return length >= DATA_PREFIX + 2 and length % 2 == 0
        return True

    def _accept(self, version: int, ftype: int, payload: bytes):
        if version != VERSION or ftype not in (TYPE_HEADER, TYPE_DATA):
            self.unsupported_frames += 1
            return None
        if ftype == TYPE_HEADER:
            return self._accept_header(payload)
        return self._accept_data(payload)

    def _accept_header(self, payload: bytes) -> Header | None:
        fs_mhz, gain_milli, baseline, channels, spf, adc_bits, _, fw, dev = _HEADER.unpack(payload)
        if channels == 0 or spf == 0 or fs_mhz == 0:
            self.malformed_frames += 1
            return None
        header = Header(fs_mhz, gain_milli, baseline, channels, spf, adc_bits, fw, dev)
        if self.header is not None and header != self.header:
            self.header_changes += 1
        self.header = header
        self.headers += 1
        return header

    def _accept_data(self, payload: bytes) -> DataFrame | None:
        seq, flags, n = _DATA_PREFIX.unpack_from(payload)
        n_values = (len(payload) - DATA_PREFIX) // 2
        if n == 0 or n_values % n:
            self.malformed_frames += 1
            return None
        channels = n_values // n
        if self.header is not None and channels != self.header.channels:
            self.malformed_frames += 1
            return None
        samples = np.frombuffer(payload, dtype="<i2", count=n_values, offset=DATA_PREFIX)
        samples = samples.astype(np.int16).reshape(n, channels)
        lost = 0
        if self._last_seq is not None:
            skipped = (seq - self._last_seq - 1) & 0xFFFF
            if skipped >= 0x8000:
                self.seq_restarts += 1
                lost = -1
            elif skipped:
                self.seq_gaps += 1
                self.lost_frames += skipped
                lost = skipped
        self._last_seq = seq
        self.frames += 1
        if flags & FLAG_OVERFLOW:
            self.overflow_frames += 1
        return DataFrame(seq=seq, flags=flags, samples=samples, lost_before=lost)
