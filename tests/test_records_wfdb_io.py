"""The numpy-only WFDB reader (edge_ecg.records.wfdb_io) against the wfdb package itself.

Synthetic records are written with ``wfdb.wrsamp``/``wfdb.wrann`` where wfdb can write the
format, and byte by byte here where it cannot (formats 8, 61, 160, 310, 311, byte offsets);
either way ``wfdb.rdrecord``/``wfdb.rdann`` reading the same files is the reference. The
real-data tests compare every MIT-BIH and nstdb record. The last test runs a replay stream
in a subprocess and checks that neither wfdb nor pandas (nor TensorFlow) was imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import CLI_WRAPPER, imported_heavy_modules, synthetic_ecg, write_record

from edge_ecg.errors import DataError
from edge_ecg.records import wfdb_io
from edge_ecg.records.aami import AAMI_MAP
from edge_ecg.records.load import load_record, read_beats, read_header, read_signal

ROOT = Path(__file__).resolve().parents[1]


def assert_same_signal(path: Path, channels=None):
    """Digital and physical samples of ``path`` equal wfdb's, NaN for NaN, to the bit."""
    header = wfdb_io.read_header(path)
    channels = list(range(header.n_sig)) if channels is None else channels
    ref = wfdb.rdrecord(str(path), channels=channels)
    ref_digital = wfdb.rdrecord(str(path), channels=channels, physical=False).d_signal
    ours = wfdb_io.read_signal_physical(header, path.parent, channels)
    assert ours.dtype == np.float64 and ours.shape == ref.p_signal.shape
    assert np.array_equal(ours, ref.p_signal, equal_nan=True)
    digital = wfdb_io.read_signal_digital(header, path.parent, channels)
    assert np.array_equal(digital, ref_digital)
    as_float32 = wfdb_io.read_signal_physical(header, path.parent, channels, dtype=np.float32)
    assert as_float32.tobytes() == ref.p_signal.astype(np.float32).tobytes()
    return header, ours


def assert_same_annotations(path: Path, extension: str):
    ref = wfdb.rdann(str(path), extension)
    ours = wfdb_io.read_annotations(path, extension)
    assert ours.sample.dtype == np.int64 and np.array_equal(ours.sample, ref.sample)
    assert ours.symbol == list(ref.symbol)
    assert ours.aux_note == list(ref.aux_note)
    for field in ("subtype", "chan", "num"):
        assert np.array_equal(getattr(ours, field), getattr(ref, field)), field
    return ours


# --------------------------------------------------------------------------- headers


def test_header_fields_and_defaults():
    text = """# a comment before the record line
rec 3 500/1000(12) 1234 10:11:12 01/02/2003
rec.dat 212 200(1024)/mV 12 1000 995 -22131 0 MLII lead, with spaces
rec.dat 212 0 11 -5
# a comment between signal lines
rec2.dat 16+24 -12.5e1/uV
"""
    h = wfdb_io.parse_header(text)
    assert (h.record_name, h.n_sig, h.fs, h.sig_len) == ("rec", 3, 500.0, 1234)
    assert (h.counter_freq, h.base_counter, h.base_time, h.base_date) == (1000.0, 12.0, "10:11:12", "01/02/2003")
    assert h.file_name == ("rec.dat", "rec.dat", "rec2.dat") and h.fmt == ("212", "212", "16")
    assert h.adc_gain == (200.0, 200.0, -125.0) and h.gain == h.adc_gain  # a gain of 0 means 200
    assert h.baseline == (1024, -5, 0)  # no baseline: the ADC zero, else 0
    assert h.adc_zero == (1000, -5, 0) and h.units == ("mV", "mV", "uV")
    assert h.init_value == (995, None, None) and h.checksum == (-22131, None, None)
    assert h.byte_offset == (0, 0, 24) and h.samps_per_frame == (1, 1, 1) and h.skew == (0, 0, 0)
    assert h.sig_name == ("MLII lead, with spaces", "", "")
    assert h.comments == ("a comment before the record line", "a comment between signal lines")


def test_minimal_header_defaults_like_wfdb(tmp_path):
    (tmp_path / "m.hea").write_text("m 1\nm.dat 16\n")
    (tmp_path / "m.dat").write_bytes(np.arange(7, dtype="<i2").tobytes())
    h = wfdb_io.read_header(tmp_path / "m")
    ref = wfdb.rdheader(str(tmp_path / "m"))
    assert h.fs == ref.fs == 250 and h.sig_len is None and ref.sig_len is None
    assert h.adc_gain == tuple(ref.adc_gain) and h.baseline == tuple(ref.baseline) and h.units == tuple(ref.units)
    _, signal = assert_same_signal(tmp_path / "m")  # length inferred from the file size
    assert len(signal) == 7


def test_multi_segment_and_unsupported_formats_are_flagged():
    with pytest.raises(wfdb_io.UnsupportedWfdb, match="segments"):
        wfdb_io.parse_header("multi/2 1 360 20\nseg1 10\nseg2 10\n")
    for spec in ("516", "16x2", "16:3"):
        h = wfdb_io.parse_header(f"r 1 360 10\nr.dat {spec} 200 16 0 0 0 0 I\n")
        with pytest.raises(wfdb_io.UnsupportedWfdb):
            wfdb_io.read_signal_digital(h, ".", [0])


@pytest.mark.parametrize("text, problem", [
    ("this is not a header\n", "number of signals"),
    ("", "no record line"),
    ("r 2 360 10\nr.dat 212 200 11 0\n", "says 2 signals but 1"),
    ("r 1 fast 10\nr.dat 16\n", "sampling frequency"),
    ("r 1 360 10\nr.dat 16 gain 16\n", "gain"),
    ("r 1 360 10\nr.dat two\n", "format"),
])
def test_malformed_headers_say_what_is_wrong(text, problem):
    with pytest.raises(wfdb_io.WfdbFormatError, match=problem):
        wfdb_io.parse_header(text)


# --------------------------------------------------------------------------- signals written by wfdb


def _signals(n: int, n_sig: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, n_sig))
    if n > 3:
        x[3, 0] = np.nan  # invalid samples: written as the format's invalid value, read back as NaN
        x[-1, n_sig - 1] = np.nan
    return x


@pytest.mark.parametrize("fmt", ["16", "212", "24", "32"])
@pytest.mark.parametrize("n_sig, n", [(1, 11), (3, 11), (2, 10), (3, 1)])
def test_wrsamp_records_read_like_wfdb(tmp_path, fmt, n_sig, n):
    x = _signals(n, n_sig)
    gains, baselines = [100.0, 37.5, 20.0][:n_sig], [3, -200, 0][:n_sig]
    wfdb.wrsamp("r", fs=250, units=["mV"] * n_sig, sig_name=[f"s{i}" for i in range(n_sig)], p_signal=x,
                fmt=[fmt] * n_sig, adc_gain=gains, baseline=baselines, write_dir=str(tmp_path))
    header, ours = assert_same_signal(tmp_path / "r")
    assert header.baseline == tuple(baselines) and header.fmt == (fmt,) * n_sig
    if n > 3:
        assert np.isnan(ours[3, 0]) and np.isnan(ours[-1, n_sig - 1])
    for ch in range(n_sig):  # one channel at a time reads the same values
        assert_same_signal(tmp_path / "r", [ch])
    assert_same_signal(tmp_path / "r", list(reversed(range(n_sig))))


def test_format_80_with_invalid_samples(tmp_path):
    d = np.array([[-127, 5], [0, -128], [127, 3], [-128, 0], [1, 1]], dtype=np.int64)
    wfdb.wrsamp("r", fs=360, units=["mV", "mV"], sig_name=["a", "b"], d_signal=d, fmt=["80", "80"],
                adc_gain=[10.0, 4.0], baseline=[-3, 7], write_dir=str(tmp_path))
    _, ours = assert_same_signal(tmp_path / "r")
    assert np.isnan(ours[3, 0]) and np.isnan(ours[1, 1])


# --------------------------------------------------------------------------- signals written byte by byte


def _write(folder: Path, name: str, header: str, payload: bytes) -> Path:
    (folder / f"{name}.hea").write_text(header)
    (folder / f"{name}.dat").write_bytes(payload)
    return folder / name


def _pack_10bit(values: np.ndarray, fmt: str) -> bytes:
    """Three 10-bit samples per little-endian 32-bit word (see wfdb_io._read_310_311)."""
    v = np.concatenate([values, np.zeros(-len(values) % 3, dtype=values.dtype)]).astype(np.int64) & 0x3FF
    a, b, c = v[0::3], v[1::3], v[2::3]
    if fmt == "311":
        words = a | (b << 10) | (c << 20)
    else:
        words = (a << 1) | ((c & 0x1F) << 11) | (b << 17) | ((c >> 5) << 27)
    return words.astype("<u4").tobytes()


@pytest.mark.parametrize("fmt", ["310", "311"])
@pytest.mark.parametrize("n_sig, n", [(1, 11), (1, 10), (3, 7), (2, 5)])
def test_formats_310_and_311(tmp_path, fmt, n_sig, n):
    rng = np.random.default_rng(n)
    values = rng.integers(-511, 512, n * n_sig)
    values[2] = -512  # the invalid value
    lines = "".join(f"r.dat {fmt} 50({i * 7 - 3}) 10 0 0 0 0 s{i}\n" for i in range(n_sig))
    path = _write(tmp_path, "r", f"r {n_sig} 360 {n}\n{lines}", _pack_10bit(values, fmt))
    _, ours = assert_same_signal(path)
    assert np.isnan(ours.reshape(-1)[2])
    assert np.array_equal(wfdb_io.read_signal_digital(wfdb_io.read_header(path), tmp_path,
                                                      range(n_sig)).reshape(-1)[[0, 1, 3]], values[[0, 1, 3]])


@pytest.mark.parametrize("fmt, dtype, shift", [("61", ">i2", 0), ("160", "<u2", 32768), ("16", "<i2", 0),
                                               ("32", "<i4", 0)])
def test_byte_offsets_and_other_aligned_formats(tmp_path, fmt, dtype, shift):
    rng = np.random.default_rng(1)
    values = rng.integers(-30000, 30000, (9, 2))
    values[4, 1] = -32768 if fmt != "32" else -(2**31)
    payload = b"\xff" * 24 + (values + shift).astype(dtype).tobytes()
    header = f"r 2 360 9\nr.dat {fmt}+24 200(12)/mV 16 0 0 0 0 a\nr.dat {fmt}+24 100/mV 16 5 0 0 0 b\n"
    path = _write(tmp_path, "r", header, payload)
    _, ours = assert_same_signal(path)
    assert np.isnan(ours[4, 1]) and ours[0, 0] == (values[0, 0] - 12) / 200.0


def test_format_8_is_first_differences(tmp_path):
    diffs = np.array([[3, -2], [4, 0], [-128, 127], [1, -1], [0, 5], [7, 7], [-7, 2]], dtype=np.int8)
    header = "r 2 360 7\nr.dat 8 200(-10) 8 0 -20 0 0 a\nr.dat 8 100 8 0 55 0 0 b\n"
    path = _write(tmp_path, "r", header, diffs.tobytes())
    _, ours = assert_same_signal(path)
    digital = wfdb_io.read_signal_digital(wfdb_io.read_header(path), tmp_path, [0, 1])
    assert np.array_equal(digital, np.cumsum(diffs.astype(int), axis=0) + [-20, 55])
    assert np.isfinite(ours).all()  # format 8 has no invalid value


def test_signals_in_two_files(tmp_path):
    a = np.array([1, -2, 3, -4, 5], dtype="<i2")
    b = np.array([[10, 20], [30, 40], [50, 60], [70, 80], [90, 100]], dtype="<i4")
    (tmp_path / "a.dat").write_bytes(a.tobytes())
    (tmp_path / "b.dat").write_bytes(b.tobytes())
    (tmp_path / "r.hea").write_text("r 3 360 5\na.dat 16 200 16 0 0 0 0 x\nb.dat 32 10 32 0 0 0 0 y\n"
                                    "b.dat 32 10 32 0 0 0 0 z\n")
    assert_same_signal(tmp_path / "r")
    assert_same_signal(tmp_path / "r", [2, 0])
    (tmp_path / "a.dat").unlink()  # a file holding no chosen signal is not opened
    h = wfdb_io.read_header(tmp_path / "r")
    assert np.array_equal(wfdb_io.read_signal_digital(h, tmp_path, [2, 1]), b[:, ::-1])


def test_truncated_signal_file(tmp_path):
    path = _write(tmp_path, "r", "r 1 360 10\nr.dat 212 200 12 0 0 0 0 a\n", bytes(14))
    with pytest.raises(wfdb_io.WfdbFormatError, match="truncated \\(14 bytes, the header needs 15\\)"):
        wfdb_io.read_signal_digital(wfdb_io.read_header(path), tmp_path, [0])


# --------------------------------------------------------------------------- annotations


def test_annotations_with_every_field_like_wfdb(tmp_path):
    sample = np.array([0, 5, 1023, 1024, 3000, 3000, 70000, 70001, 10_000_000, 10_000_400])
    symbol = ["+", "N", "V", "N", "~", "A", "[", "]", '"', "|"]
    aux = ["(N", "", "", "odd", "", "", "", "", "a note of even len", ""]
    wfdb.wrann("r", "tst", sample, symbol=symbol, subtype=np.array([0, 1, -3, 0, 5, 0, 0, 0, 0, 2]),
               chan=np.array([0, 0, 1, 1, 3, 3, 0, 0, 0, 255]), num=np.array([0, 0, 0, 2, 2, 127, 127, 0, 0, 1]),
               aux_note=aux, fs=360, write_dir=str(tmp_path))
    ann = assert_same_annotations(tmp_path / "r", "tst")
    assert np.array_equal(ann.sample, sample) and ann.symbol == symbol and ann.aux_note == aux
    assert ann.chan[-1] == 255 and ann.num[5] == 127 and ann.subtype[2] == -3


def test_annotations_of_the_synthetic_records(tiny_db):
    for name in ("900", "901"):
        assert_same_annotations(tiny_db / name, "atr")


def test_custom_labels_are_left_to_wfdb(tmp_path):
    wfdb.wrann("r", "atr", np.array([10, 20]), symbol=["N", "#"], write_dir=str(tmp_path),
               custom_labels=[(42, "#", "a custom beat")])
    with pytest.raises(wfdb_io.UnsupportedWfdb, match="its own annotation labels"):
        wfdb_io.read_annotations(tmp_path / "r", "atr")
    samples, symbols, classes, _ = read_beats(tmp_path, "r")  # load.py falls back to wfdb
    assert samples.tolist() == [10] and symbols.tolist() == ["N"] and classes.tolist() == ["N"]


def test_truncated_annotation_files(tmp_path, tiny_db):
    data = (tiny_db / "900.atr").read_bytes()
    (tmp_path / "a.atr").write_bytes(data[:-1])
    with pytest.raises(wfdb_io.WfdbFormatError, match="odd size"):
        wfdb_io.read_annotations(tmp_path / "a", "atr")
    skip = (59 << 10).to_bytes(2, "little")
    (tmp_path / "b.atr").write_bytes(skip + b"\x00\x00")
    with pytest.raises(wfdb_io.WfdbFormatError, match="truncated"):
        wfdb_io.read_annotations(tmp_path / "b", "atr")
    (tiny_db / "901.atr").write_bytes(skip + b"\x00\x00")
    with pytest.raises(DataError, match="901.atr: not a readable WFDB annotation file \\(.*truncated"):
        read_beats(tiny_db, "901")


# --------------------------------------------------------------------------- load.py on top


def test_load_record_equals_the_wfdb_reading(tiny_db):
    rec = load_record(tiny_db, "900", lead="V1")
    ref = wfdb.rdrecord(str(tiny_db / "900"), channels=[1])
    assert rec.signal.tobytes() == ref.p_signal[:, 0].astype(np.float32).tobytes()
    assert rec.fs == 360.0 and rec.leads == ("MLII", "V1")
    header = read_header(tiny_db, "900")
    assert isinstance(header, wfdb_io.Header) and header.sig_len == len(rec.signal)


def test_nan_samples_become_zero_in_read_signal(tmp_path):
    x = _signals(20, 1)
    wfdb.wrsamp("r", fs=360, units=["mV"], sig_name=["MLII"], p_signal=x, fmt=["16"], adc_gain=[200.0],
                baseline=[0], write_dir=str(tmp_path))
    sig, fs, lead = read_signal(tmp_path, "r")
    assert sig.dtype == np.float32 and sig[3] == 0.0 and sig[-1] == 0.0 and np.isfinite(sig).all()
    assert (fs, lead) == (360.0, "MLII")


def test_unsupported_record_falls_back_to_wfdb(tmp_path):
    # two samples per frame: wfdb averages them; the numpy reader does not implement it
    path = _write(tmp_path, "mf", "mf 1 360 5\nmf.dat 16x2 100 16 0 0 0 0 MLII\n",
                  np.arange(10, dtype="<i2").tobytes())
    with pytest.raises(wfdb_io.UnsupportedWfdb):
        wfdb_io.read_signal_digital(wfdb_io.read_header(path), tmp_path, [0])
    sig, fs, lead = read_signal(tmp_path, "mf")
    ref = wfdb.rdrecord(str(path)).p_signal[:, 0].astype(np.float32)
    assert len(sig) == 5 and np.array_equal(sig, ref) and (fs, lead) == (360.0, "MLII")


def test_bad_files_are_the_same_one_line_errors(tiny_db, tmp_path):
    (tmp_path / "x.hea").write_text("x 2 360 10\nx.dat 212 200 11 0\n")
    with pytest.raises(DataError, match="x.hea: not a valid WFDB header \\(.*2 signals but 1"):
        load_record(tmp_path, "x")
    (tmp_path / "y.hea").write_text("this is not a header\n")
    with pytest.raises(DataError, match="y.hea: not a valid WFDB header"):
        read_header(tmp_path, "y")
    dat = tiny_db / "900.dat"
    dat.write_bytes(dat.read_bytes()[:-1])  # one byte short
    with pytest.raises(DataError, match="900.dat: truncated .*edge-ecg data verify"):
        load_record(tiny_db, "900")


# --------------------------------------------------------------------------- real data


def _reference_beats(db: Path, name: str):
    """What read_beats returned when it read annotations with wfdb.rdann."""
    ann = wfdb.rdann(str(db / name), "atr")
    symbols = np.asarray(ann.symbol, dtype="<U2")
    keep = np.isin(symbols, list(AAMI_MAP))
    return np.asarray(ann.sample, dtype=np.int64)[keep], symbols[keep].astype("<U1")


def _compare_database(db: Path):
    names = sorted(p.stem for p in db.glob("*.hea"))
    for name in names:
        header = wfdb_io.read_header(db / name)
        ref_header = wfdb.rdheader(str(db / name))
        for field in ("n_sig", "fs", "sig_len", "file_name", "fmt", "adc_gain", "baseline", "units", "adc_zero",
                      "init_value", "checksum", "sig_name"):
            ours, theirs = getattr(header, field), getattr(ref_header, field)
            assert (list(ours) if isinstance(ours, tuple) else ours) == theirs, (name, field)
        ref = wfdb.rdrecord(str(db / name))
        ours = wfdb_io.read_signal_physical(header, db, range(header.n_sig))
        assert np.array_equal(ours, ref.p_signal, equal_nan=True), name
        for ch in range(header.n_sig):
            sig, fs, lead = read_signal(db, name, ch)
            expected = np.nan_to_num(ref.p_signal[:, ch].astype(np.float32), nan=0.0)
            assert sig.tobytes() == expected.tobytes() and fs == float(ref.fs) and lead == ref.sig_name[ch]
        if (db / f"{name}.atr").is_file():
            assert_same_annotations(db / name, "atr")
            samples, symbols, classes, _ = read_beats(db, name)
            ref_samples, ref_symbols = _reference_beats(db, name)
            assert np.array_equal(samples, ref_samples) and np.array_equal(symbols, ref_symbols)
            assert classes.tolist() == [AAMI_MAP[s] for s in ref_symbols]
    return names


@pytest.mark.realdata
def test_every_mitdb_record_reads_like_wfdb(mitdb_dir):
    assert len(_compare_database(mitdb_dir)) == 48
    vf = load_record(mitdb_dir, "207")
    assert len(vf.excluded) == 6  # the [ ... ] episodes, as before


@pytest.mark.realdata
def test_every_nstdb_record_reads_like_wfdb(nstdb_dir):
    names = _compare_database(nstdb_dir)
    assert {"em", "ma", "bw", "118e00", "119e_6"} <= set(names)


# --------------------------------------------------------------------------- a stream without wfdb


def test_replay_stream_imports_neither_wfdb_nor_pandas(tmp_path):
    model = ROOT / "models" / "edge_ecg_int8.tflite"
    if not model.is_file():
        pytest.skip("no int8 model in models/")
    symbols = ["N"] * 12 + ["V", "N"] * 3
    x, samples, syms = synthetic_ecg(len(symbols), seed=3, classes=symbols)
    write_record(tmp_path, "950", x, samples, syms)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-c", CLI_WRAPPER, "stream", "--replay", str(tmp_path / "950"),
                           "--speed", "0", "--model", str(model), "--view", "none"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "replay 950" in proc.stdout and "beats " in proc.stdout
    assert imported_heavy_modules(proc.stdout) == set(), proc.stdout[-500:]
