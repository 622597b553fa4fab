"""WFDB headers, signal files and MIT annotation files read with numpy alone.

The ``wfdb`` package imports pandas, which costs a stream process on a Raspberry Pi about
50 MB of memory and a second or more of start-up. The records edge-ecg reads (MIT-BIH and
its siblings on PhysioNet) need only a small part of the WFDB formats, implemented here:

- :func:`read_header`: one ``.hea`` file (single-segment records) as a :class:`Header`;
- :func:`read_signal_digital` / :func:`read_signal_physical`: signal files in formats 8,
  16, 24, 32, 61, 80, 160, 212, 310 and 311, one sample per frame, no skew;
- :func:`read_annotations`: an MIT-format annotation file (``.atr`` and friends).

Anything valid but outside that subset (multi-segment records, compressed formats, several
samples per frame, skewed signals, custom annotation label tables) raises
:class:`UnsupportedWfdb`, for the caller to hand the record to ``wfdb``. A malformed or
truncated file raises :class:`WfdbFormatError` (a ``ValueError``) saying what is wrong.

Values follow ``wfdb`` 4.x (``rdheader``, ``rdrecord(physical=True)``, ``rdann``): a missing
gain or a gain of 0 means 200 ADC units per physical unit, a missing baseline is the ADC
zero, invalid samples (the most negative value a format can store; format 8 has none)
become NaN, and physical values are ``(digital - baseline) / gain`` computed in float64.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np


class UnsupportedWfdb(Exception):
    """A valid WFDB feature this reader does not implement (read the record with ``wfdb``)."""


class WfdbFormatError(ValueError):
    """A header, signal or annotation file that is malformed or shorter than it should be."""


#: Bytes per stored sample of each supported signal format.
BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5,
                    "310": 4 / 3, "311": 4 / 3}

#: The digital value a format uses for "no sample here" (read back as NaN).
INVALID_SAMPLE = {"8": None, "16": -(2**15), "24": -(2**23), "32": -(2**31), "61": -(2**15), "80": -(2**7),
                  "160": -(2**15), "212": -(2**11), "310": -(2**9), "311": -(2**9)}

#: Formats that store at most 16 bits a sample (read into int16); the rest need int32.
_SMALL_FORMATS = {"16", "61", "80", "160", "212", "310", "311"}

DEFAULT_GAIN = 200.0  # ADC units per physical unit, when a header gives none (or 0)
DEFAULT_FS = 250.0    # Hz, when a header gives none
_CHUNK = 1 << 16      # samples converted to physical units at a time

_RECORD_NAME = re.compile(r"^(?P<name>[-\w]+)(?:/(?P<n_seg>\d+))?$")
_FREQUENCY = re.compile(
    r"^(?P<fs>\d*\.?\d*)(?:/(?P<counter>\d*\.?\d*)(?:\((?P<base>-?\d*\.?\d*)\))?)?$")
_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?$")
_GAIN = re.compile(
    r"^(?P<gain>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S+))?$")


@dataclass(frozen=True)
class Header:
    """One single-segment WFDB header.

    Record fields: ``record_name``, ``n_sig``, ``fs`` (Hz, frames per second),
    ``counter_freq``/``base_counter`` (``None`` when absent), ``sig_len`` (samples per
    signal, ``None`` when the header leaves it out), ``base_time``/``base_date`` as written
    (``None`` when absent). Per-signal tuples, one entry per signal line: ``file_name``,
    ``fmt`` (str, e.g. ``"212"``), ``samps_per_frame``, ``skew``, ``byte_offset`` (bytes
    before the first sample, 0 when absent), ``adc_gain`` (ADC units per physical unit,
    e.g. per mV), ``baseline`` (ADC value of 0 physical units), ``units``, ``adc_res``
    (bits, ``None`` when absent), ``adc_zero``, ``init_value`` and ``checksum``
    (``None`` when absent), ``block_size``, ``sig_name`` (the description, ``""`` when
    absent). ``comments`` holds the ``#`` lines without the ``#``.
    """

    record_name: str
    n_sig: int
    fs: float
    sig_len: int | None
    file_name: tuple[str, ...]
    fmt: tuple[str, ...]
    samps_per_frame: tuple[int, ...]
    skew: tuple[int, ...]
    byte_offset: tuple[int, ...]
    adc_gain: tuple[float, ...]
    baseline: tuple[int, ...]
    units: tuple[str, ...]
    adc_res: tuple[int | None, ...]
    adc_zero: tuple[int, ...]
    init_value: tuple[int | None, ...]
    checksum: tuple[int | None, ...]
    block_size: tuple[int, ...]
    sig_name: tuple[str, ...]
    counter_freq: float | None = None
    base_counter: float | None = None
    base_time: str | None = None
    base_date: str | None = None
    comments: tuple[str, ...] = ()

    @property
    def gain(self) -> tuple[float, ...]:
        """ADC units per physical unit (mV for ECG leads), one per signal; same as ``adc_gain``."""
        return self.adc_gain


class Annotations(NamedTuple):
    """An annotation file's annotations, in file order.

    ``sample`` int64 (n,) sample indices; ``symbol`` list of n MIT-BIH label symbols
    (``""`` for a code without one); ``subtype``, ``chan``, ``num`` int64 (n,);
    ``aux_note`` list of n strings (``""`` when none).
    """

    sample: np.ndarray
    symbol: list
    subtype: np.ndarray
    chan: np.ndarray
    num: np.ndarray
    aux_note: list


# ----------------------------------------------------------------------------- header


def read_header(path: str | Path) -> Header:
    """The header ``<path>.hea`` (``path`` is the record path without extension) as a :class:`Header`.

    Raises :class:`UnsupportedWfdb` for a multi-segment header, :class:`WfdbFormatError`
    for a malformed one, ``OSError`` when the file cannot be read.
    """
    text = Path(f"{path}.hea").read_bytes().decode("ascii", errors="ignore")
    return parse_header(text)


def parse_header(text: str) -> Header:
    """A :class:`Header` from the text of a ``.hea`` file (see :func:`read_header`)."""
    lines, comments = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            comments.append(line[1:].strip())
        elif line:
            lines.append(line)
    if not lines:
        raise WfdbFormatError("no record line")
    record = _parse_record_line(lines[0])
    signal_lines = lines[1:]
    if len(signal_lines) != record["n_sig"]:
        raise WfdbFormatError(
            f"the record line says {record['n_sig']} signals but {len(signal_lines)} signal lines follow")
    signals = [_parse_signal_line(line, n) for n, line in enumerate(signal_lines, 2)]
    columns = {key: tuple(s[key] for s in signals) for key in _SIGNAL_KEYS}
    return Header(**record, **columns, comments=tuple(comments))


def _parse_record_line(line: str) -> dict:
    fields = line.split()
    if len(fields) < 2 or len(fields) > 6:
        raise WfdbFormatError(f"record line {line[:60]!r} is not 'name nsig [fs [siglen [time [date]]]]'")
    name = _RECORD_NAME.match(fields[0])
    if name is None:
        raise WfdbFormatError(f"record line: {fields[0]!r} is not a record name")
    if name["n_seg"] is not None:
        raise UnsupportedWfdb(f"record {name['name']} has {name['n_seg']} segments (multi-segment record)")
    out = {"record_name": name["name"], "n_sig": _to_int(fields[1], "number of signals"), "fs": DEFAULT_FS,
           "counter_freq": None, "base_counter": None, "sig_len": None, "base_time": None, "base_date": None}
    if len(fields) > 2:
        freq = _FREQUENCY.match(fields[2])
        if freq is None or freq["fs"] in ("", "."):
            raise WfdbFormatError(f"record line: {fields[2]!r} is not a sampling frequency")
        out["fs"] = float(freq["fs"])
        if freq["counter"]:
            out["counter_freq"] = _to_float(freq["counter"], "counter frequency")
        if freq["base"]:
            out["base_counter"] = _to_float(freq["base"], "base counter value")
    if len(fields) > 3:
        out["sig_len"] = _to_int(fields[3], "number of samples")
    if len(fields) > 4:
        out["base_time"] = fields[4]
    if len(fields) > 5:
        out["base_date"] = fields[5]
    return out


_SIGNAL_KEYS = ("file_name", "fmt", "samps_per_frame", "skew", "byte_offset", "adc_gain", "baseline", "units",
                "adc_res", "adc_zero", "init_value", "checksum", "block_size", "sig_name")


def _parse_signal_line(line: str, line_no: int) -> dict:
    fields = line.split(maxsplit=8)
    if len(fields) < 2:
        raise WfdbFormatError(f"signal line {line_no}: {line[:60]!r} has no format")
    fmt = _FORMAT.match(fields[1])
    if fmt is None:
        raise WfdbFormatError(f"signal line {line_no}: {fields[1]!r} is not 'format[xspf][:skew][+offset]'")
    gain_text = fields[2] if len(fields) > 2 else ""
    gain = _GAIN.match(gain_text)
    if gain is None:
        raise WfdbFormatError(f"signal line {line_no}: {gain_text!r} is not 'gain[(baseline)][/units]'")

    def optional_int(index: int, what: str):
        return _to_int(fields[index], what, signed=True) if len(fields) > index else None

    adc_zero = optional_int(4, "ADC zero")
    adc_gain = float(gain["gain"]) if gain["gain"] else DEFAULT_GAIN
    if gain["baseline"] is not None:
        baseline = int(gain["baseline"])
    else:
        baseline = adc_zero if adc_zero is not None else 0
    return {
        "file_name": fields[0],
        "fmt": fmt["fmt"],
        "samps_per_frame": int(fmt["spf"]) if fmt["spf"] else 1,
        "skew": int(fmt["skew"]) if fmt["skew"] else 0,
        "byte_offset": int(fmt["offset"]) if fmt["offset"] else 0,
        "adc_gain": adc_gain if adc_gain != 0 else DEFAULT_GAIN,
        "baseline": baseline,
        "units": gain["units"] or "mV",
        "adc_res": optional_int(3, "ADC resolution"),
        "adc_zero": adc_zero if adc_zero is not None else 0,
        "init_value": optional_int(5, "initial value"),
        "checksum": optional_int(6, "checksum"),
        "block_size": optional_int(7, "block size") or 0,
        "sig_name": fields[8].strip() if len(fields) > 8 else "",
    }


def _to_int(text: str, what: str, signed: bool = False) -> int:
    if not re.fullmatch(r"-?\d+" if signed else r"\d+", text):
        raise WfdbFormatError(f"{what} {text!r} is not a whole number")
    return int(text)


def _to_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise WfdbFormatError(f"{what} {text!r} is not a number") from None


# ----------------------------------------------------------------------------- signals


def signal_length(header: Header, db_dir: str | Path) -> int:
    """Samples per signal: ``header.sig_len``, or (when the header leaves it out) the size of
    the first signal file divided by its frame size, as ``wfdb`` infers it."""
    if header.sig_len is not None:
        return header.sig_len
    if header.n_sig == 0:
        return 0
    first = header.file_name[0]
    fmt = header.fmt[0]
    if fmt not in BYTES_PER_SAMPLE:
        raise UnsupportedWfdb(f"signal format {fmt} is not supported")
    frame = sum(spf for name, spf in zip(header.file_name, header.samps_per_frame) if name == first)
    size = (Path(db_dir) / first).stat().st_size - header.byte_offset[0]
    return int(size / (BYTES_PER_SAMPLE[fmt] * frame))


def _file_layout(header: Header) -> dict[str, list[int]]:
    """Signal file name -> the signal indices stored in it, in frame order; checks support."""
    files: dict[str, list[int]] = {}
    for index, (name, fmt) in enumerate(zip(header.file_name, header.fmt)):
        if fmt not in BYTES_PER_SAMPLE:
            raise UnsupportedWfdb(f"signal format {fmt} is not supported")
        if name == "~":
            raise UnsupportedWfdb("a signal without a file ('~')")
        if header.samps_per_frame[index] != 1:
            raise UnsupportedWfdb(f"signal {index} has {header.samps_per_frame[index]} samples per frame")
        if header.skew[index]:
            raise UnsupportedWfdb(f"signal {index} is skewed")
        members = files.setdefault(name, [])
        if members and (members[-1] != index - 1 or header.fmt[members[0]] != fmt):
            raise UnsupportedWfdb(f"{name} holds signals of mixed formats or out of order")
        members.append(index)
    return files


def read_signal_digital(header: Header, db_dir: str | Path, channels) -> np.ndarray:
    """Digital samples (ADC units) of signals ``channels`` (indices) as an int array ``(n, len(channels))``.

    int16 when every chosen signal is stored in at most 16 bits, else int32. Only the files
    holding a chosen signal are read, and of a multi-signal format-212/24 file only the
    chosen signals are unpacked. Raises :class:`UnsupportedWfdb`, :class:`WfdbFormatError`
    (a signal file shorter than the header says) or ``OSError``.
    """
    channels = [int(c) for c in channels]
    for c in channels:
        if not 0 <= c < header.n_sig:
            raise IndexError(f"record {header.record_name} has no signal {c}")
    layout = _file_layout(header)
    n = signal_length(header, db_dir)
    small = all(header.fmt[c] in _SMALL_FORMATS for c in channels)
    out = np.empty((n, len(channels)), dtype=np.int16 if small else np.int32)
    for name, members in layout.items():
        wanted = [(pos, members.index(c)) for pos, c in enumerate(channels) if c in members]
        if not wanted:
            continue
        columns = sorted({col for _, col in wanted})
        init = [header.init_value[members[col]] or 0 for col in columns]
        frames = _read_file(Path(db_dir) / name, header.fmt[members[0]], header.byte_offset[members[0]],
                            n, len(members), columns, init)
        for pos, col in wanted:
            out[:, pos] = frames[:, columns.index(col)]
    return out


def read_signal_physical(header: Header, db_dir: str | Path, channels, dtype=np.float64) -> np.ndarray:
    """Signals ``channels`` in physical units (mV for ECG leads) as ``(n, len(channels))`` of ``dtype``.

    Each value is ``(digital - baseline) / adc_gain`` computed in float64, then stored as
    ``dtype``; invalid samples are NaN. With ``dtype=np.float32`` this equals casting the
    float64 result to float32, without holding the float64 signal in memory.
    """
    channels = [int(c) for c in channels]
    digital = read_signal_digital(header, db_dir, channels)
    out = np.empty(digital.shape, dtype=dtype)
    for pos, c in enumerate(channels):
        invalid = INVALID_SAMPLE[header.fmt[c]]
        baseline, gain = header.baseline[c], header.adc_gain[c]
        for lo in range(0, len(digital), _CHUNK):
            d = digital[lo:lo + _CHUNK, pos]
            x = d.astype(np.float64)
            np.subtract(x, baseline, out=x)
            np.divide(x, gain, out=x)
            if invalid is not None:
                x[d == invalid] = np.nan
            out[lo:lo + _CHUNK, pos] = x
    return out


def _read_bytes(path: Path, offset: int, count: int, dtype=np.uint8) -> np.ndarray:
    """``count`` items of ``dtype`` from ``path`` after ``offset`` bytes, or :class:`WfdbFormatError`."""
    data = np.fromfile(path, dtype=dtype, count=count, offset=offset)
    if len(data) < count:
        size = offset + len(data) * np.dtype(dtype).itemsize
        need = offset + count * np.dtype(dtype).itemsize
        raise WfdbFormatError(f"{path}: truncated ({size} bytes, the header needs {need})")
    return data


_ALIGNED = {"8": "<i1", "16": "<i2", "32": "<i4", "61": ">i2", "80": "<u1", "160": "<u2"}


def _read_file(path: Path, fmt: str, offset: int, n: int, n_in_file: int, columns: list[int],
               init: list[int]) -> np.ndarray:
    """Columns ``columns`` of the ``(n, n_in_file)`` digital frames stored in ``path``."""
    if fmt in _ALIGNED:
        frames = _read_bytes(path, offset, n * n_in_file, np.dtype(_ALIGNED[fmt])).reshape(n, n_in_file)
        chosen = frames[:, columns]
        if fmt == "80":
            return (chosen.astype(np.int16) - 128).astype(np.int16)
        if fmt == "160":
            return (chosen.astype(np.int32) - 32768).astype(np.int16)
        if fmt == "8":  # first differences; the header's initial value precedes the first sample
            absolute = np.cumsum(chosen, axis=0, dtype=np.int32)
            absolute += np.asarray(init, dtype=np.int32)
            return absolute
        return chosen.astype(np.int16 if fmt in ("16", "61") else np.int32)
    if fmt == "212":
        return _read_212(path, offset, n, n_in_file, columns)
    if fmt == "24":
        raw = _read_bytes(path, offset, 3 * n * n_in_file).reshape(n, n_in_file, 3)
        out = np.empty((n, len(columns)), dtype=np.int32)
        for j, col in enumerate(columns):
            b = raw[:, col, :]
            out[:, j] = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8)
                         | (b[:, 2].view(np.int8).astype(np.int32) << 16))
        return out
    return _read_310_311(path, fmt, offset, n, n_in_file, columns)


def _read_212(path: Path, offset: int, n: int, n_in_file: int, columns: list[int]) -> np.ndarray:
    """Format 212: two 12-bit two's-complement samples in three bytes (the middle byte holds
    the high nibbles: low nibble for the first sample, high nibble for the second)."""
    n_samples = n * n_in_file
    raw = _read_bytes(path, offset, math.ceil(1.5 * n_samples))
    out = np.empty((n, len(columns)), dtype=np.int16)
    if n_in_file % 2 == 0:  # each frame is whole blocks: unpack only the chosen columns
        blocks = raw.reshape(n, n_in_file // 2, 3)
        for j, col in enumerate(columns):
            b = blocks[:, col // 2, :]
            out[:, j] = _unpack_12bit(b, second=bool(col % 2))
        return out
    if len(raw) % 3:  # an odd sample count ends in a half block
        raw = np.concatenate([raw, np.zeros(3 - len(raw) % 3, dtype=np.uint8)])
    blocks = raw.reshape(-1, 3)
    flat = np.empty(2 * len(blocks), dtype=np.int16)
    flat[0::2] = _unpack_12bit(blocks, second=False)
    flat[1::2] = _unpack_12bit(blocks, second=True)
    return flat[:n_samples].reshape(n, n_in_file)[:, columns]


def _unpack_12bit(blocks: np.ndarray, second: bool) -> np.ndarray:
    """The first or second 12-bit sample of each 3-byte block ``(k, 3)`` as int16."""
    if second:
        value = blocks[:, 2].astype(np.int16) | ((blocks[:, 1] >> 4).astype(np.int16) << 8)
    else:
        value = blocks[:, 0].astype(np.int16) | ((blocks[:, 1] & 0x0F).astype(np.int16) << 8)
    value -= (value & 0x800) << 1  # two's complement of 12 bits
    return value


def _read_310_311(path: Path, fmt: str, offset: int, n: int, n_in_file: int, columns: list[int]) -> np.ndarray:
    """Formats 310/311: three 10-bit two's-complement samples in one little-endian 32-bit word.

    311: bits 0-9, 10-19, 20-29. 310: bits 1-10, 17-26, and the third split over bits
    11-15 (low five bits) and 27-31 (high five bits).
    """
    n_samples = n * n_in_file
    n_bytes = math.ceil(n_samples * 4 / 3)
    if fmt == "310" and n_samples % 3 == 2:  # the second sample of a word reaches into its last byte
        n_bytes += 1
    raw = _read_bytes(path, offset, n_bytes)
    if len(raw) % 4:
        raw = np.concatenate([raw, np.zeros(4 - len(raw) % 4, dtype=np.uint8)])
    words = raw.view("<u4").astype(np.uint32)
    triples = np.empty((len(words), 3), dtype=np.int16)
    if fmt == "311":
        triples[:, 0] = words & 0x3FF
        triples[:, 1] = (words >> 10) & 0x3FF
        triples[:, 2] = (words >> 20) & 0x3FF
    else:
        triples[:, 0] = (words >> 1) & 0x3FF
        triples[:, 1] = (words >> 17) & 0x3FF
        triples[:, 2] = ((words >> 11) & 0x1F) | (((words >> 27) & 0x1F) << 5)
    flat = triples.reshape(-1)[:n_samples]
    flat -= (flat & 0x200) << 1  # two's complement of 10 bits
    return flat.reshape(n, n_in_file)[:, columns]


# ----------------------------------------------------------------------------- annotations

#: MIT annotation codes and their symbols (the standard WFDB label table; 15 and 17 are unused).
ANNOTATION_SYMBOLS = {
    0: " ", 1: "N", 2: "L", 3: "R", 4: "a", 5: "V", 6: "F", 7: "J", 8: "A", 9: "S", 10: "E", 11: "j", 12: "/",
    13: "Q", 14: "~", 16: "|", 18: "s", 19: "T", 20: "*", 21: "D", 22: '"', 23: "=", 24: "p", 25: "B", 26: "^",
    27: "t", 28: "+", 29: "u", 30: "?", 31: "!", 32: "[", 33: "]", 34: "e", 35: "n", 36: "@", 37: "x", 38: "f",
    39: "(", 40: ")", 41: "r",
}

_SKIP, _NUM, _SUB, _CHN, _AUX = 59, 60, 61, 62, 63
_NOTANN, _NOTE = 0, 22


def read_annotations(path: str | Path, extension: str) -> Annotations:
    """The MIT-format annotation file ``<path>.<extension>`` as :class:`Annotations`.

    Each 16-bit little-endian word holds a 6-bit code and a 10-bit field: the time since
    the previous annotation (samples) for a label code, or a value for SKIP (a 32-bit time
    step in the next two words), NUM, SUB, CHN and AUX (a byte count; the text follows,
    padded to whole words). As ``wfdb.rdann`` does, NOTANN (code 0) entries and notes at
    sample 0 (file definitions such as the time resolution) are left out, ``chan`` and
    ``num`` carry over from the previous annotation, ``subtype`` and ``aux_note`` do not.
    Raises :class:`UnsupportedWfdb` for a file that defines its own label codes,
    :class:`WfdbFormatError` for a truncated or malformed one.
    """
    file = Path(f"{path}.{extension}")
    data = file.read_bytes()
    if len(data) % 2:
        raise WfdbFormatError(f"{file}: odd size ({len(data)} bytes), not 16-bit words")
    words = np.frombuffer(data, dtype="<u2").tolist()
    samples, codes, subtypes, chans, nums, notes = [], [], [], [], [], []
    n, i, t, chan, num = len(words), 0, 0, 0, 0
    try:
        while i < n - 1:  # the last word is the end-of-file marker
            step = 0
            while words[i] >> 10 == _SKIP:
                skip = (words[i + 1] << 16) | words[i + 2]  # high half first (PDP-11 order)
                step += skip - (1 << 32) if skip >= 1 << 31 else skip
                i += 3
            code, step = words[i] >> 10, step + (words[i] & 0x3FF)
            i += 1
            t += step
            subtype, note = 0, ""
            while i < n and words[i] >> 10 > _SKIP:
                kind, value = words[i] >> 10, words[i] & 0x3FF
                i += 1
                if kind == _SUB:
                    subtype = _signed_byte(value)
                elif kind == _CHN:
                    chan = value & 0xFF
                elif kind == _NUM:
                    num = _signed_byte(value)
                else:  # AUX: ``value`` bytes of text, padded to whole words
                    n_words = (value + 1) // 2
                    if i + n_words > n:
                        raise IndexError
                    text = np.asarray(words[i:i + n_words], dtype="<u2").tobytes()[:value]
                    note = text.decode("latin-1")
                    i += n_words
            samples.append(t)
            codes.append(code)
            subtypes.append(subtype)
            chans.append(chan)
            nums.append(num)
            notes.append(note)
    except IndexError:
        raise WfdbFormatError(f"{file}: truncated in the middle of an annotation") from None
    keep = [k for k, (s, c) in enumerate(zip(samples, codes)) if c != _NOTANN and not (s == 0 and c == _NOTE)]
    if any(codes[k] == _NOTE and samples[k] == 0 and notes[k].startswith("## annotation type definitions")
           for k in range(len(codes))):
        raise UnsupportedWfdb(f"{file} defines its own annotation labels")
    return Annotations(
        sample=np.asarray([samples[k] for k in keep], dtype=np.int64),
        symbol=[ANNOTATION_SYMBOLS.get(codes[k], "") for k in keep],
        subtype=np.asarray([subtypes[k] for k in keep], dtype=np.int64),
        chan=np.asarray([chans[k] for k in keep], dtype=np.int64),
        num=np.asarray([nums[k] for k in keep], dtype=np.int64),
        aux_note=[notes[k] for k in keep],
    )


def _signed_byte(value: int) -> int:
    """The low byte of ``value`` read as a signed char."""
    value &= 0xFF
    return value - 256 if value >= 128 else value
