"""Stream sources: text and binary parsing with faults, pacing, the simulator, the bounded reader, --save."""

from __future__ import annotations

import errno
import threading
import time

import numpy as np
import pytest

from edge_ecg.errors import ConfigError, DataError, DeviceError
from edge_ecg.records.load import Record
from edge_ecg.stream import protocol as P
from edge_ecg.stream.save import INVALID, WfdbStreamWriter
from edge_ecg.stream.simulate import EcgSimulator, simulate_ecg
from edge_ecg.stream.sources import (
    AsciiParser,
    Chunk,
    ReplaySource,
    SerialBinarySource,
    SimulatedSource,
    Source,
    ThreadedReader,
    device_error,
    open_replay,
)


# --------------------------------------------------------------------------- ASCII


def test_ascii_parser_values_columns_garbage_and_half_lines():
    p = AsciiParser(column=1)
    out = p.feed(b"12, 500\n")  # the first line after opening may be cut: dropped
    assert out.size == 0 and p.partial_lines == 1
    out = p.feed(b"1,511\r\n2 512\n3;513\t\nECG:1,ECG2:514\nhello\n\xff\xfe\x00garbage\n4\n5,5")
    np.testing.assert_array_equal(out, [511, 512, 513, 514])
    assert p.bad_lines == 3  # "hello", binary junk, and a line without column 1
    out = p.feed(b"15\n")  # the half line completes
    np.testing.assert_array_equal(out, [515])
    p.feed(b"x" * 1000)  # no newline for too long: garbage, memory stays bounded
    assert len(p._buf) == 0 and p.bad_lines == 4
    p.feed(b"nan\ninf\n")  # "nan" ends the over-long line (the same garbage line); "inf" is bad
    assert p.bad_lines == 5
    with pytest.raises(ConfigError):
        AsciiParser(column=-1)


def test_ascii_parser_reset_drops_the_cut_line():
    p = AsciiParser()
    p.feed(b"junk\n100\n10")
    p.reset(first=True)  # reconnect: "10" was cut, and so may be the next line
    out = p.feed(b"0\n101\n")
    np.testing.assert_array_equal(out, [101])


# --------------------------------------------------------------------------- binary


def frames_for(x_adc, fs=360.0, spf=10, lead_off_frames=(), skip_frames=(), start_seq=0):
    """Header + data frames for int ADC samples; ``skip_frames`` are left out (lost)."""
    out = [P.encode_header(fs, 200.0, baseline=1024, samples_per_frame=spf)]
    for k in range(len(x_adc) // spf):
        if k in skip_frames:
            continue
        out.append(P.encode_data(start_seq + k, x_adc[k * spf:(k + 1) * spf], lead_off=k in lead_off_frames))
    return out


def binary_source(**kw) -> SerialBinarySource:
    return SerialBinarySource("/dev/null-test", **kw)


def test_binary_source_chunks_gaps_crc_and_lead_off():
    x = (np.arange(400) % 50).astype(np.int16)
    frames = frames_for(x, lead_off_frames={3}, skip_frames={20, 21})
    bad = bytearray(frames[11])
    bad[10] ^= 0xFF  # frame 10 fails its CRC -> lost too
    frames[11] = bytes(bad)
    data = b"\x00garbage\xec" + b"".join(frames) + b"tail"
    src = binary_source()
    chunks = []
    for i in range(0, len(data), 37):  # cut anywhere
        chunks += src.parse(data[i:i + 37], time.perf_counter())
    total = sum(len(c) for c in chunks)
    assert total == 400 - 3 * 10
    assert all(c.fs == 360.0 and c.units == "adc" and c.gain == 200.0 for c in chunks)
    gaps = [c for c in chunks if c.gap]
    assert len(gaps) == 2 and sorted(c.lost for c in gaps) == [10, 20]
    st = src.stats()
    assert st["crc_errors"] == 1 and st["seq_gaps"] == 2 and st["garbage_bytes"] >= 8
    flagged = np.concatenate([c.bad for c in chunks])
    assert flagged.sum() == 10  # frame 3's samples
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_array_equal(samples[:100], x[:100])


def test_binary_source_fs_must_match_header_and_column_must_exist():
    data = b"".join(frames_for(np.zeros(20, dtype=np.int16), fs=250.0))
    with pytest.raises(DeviceError, match="does not match the device's header"):
        binary_source(fs=360.0).parse(data, 0.0)
    with pytest.raises(DeviceError, match="sends 1 channel"):
        binary_source(column=1).parse(data, 0.0)
    # frames before any header: skipped and counted, unless --fs is given
    body = P.encode_data(0, np.zeros(10, dtype=np.int16))
    src = binary_source()
    assert src.parse(body, 0.0) == [] and src.stats()["frames_before_header"] == 1
    assert len(binary_source(fs=250.0).parse(body, 0.0)[0]) == 10


def test_binary_rate_change_is_a_gap():
    a = b"".join(frames_for(np.zeros(20, dtype=np.int16), fs=360.0))
    b = b"".join(frames_for(np.zeros(20, dtype=np.int16), fs=250.0, start_seq=2))
    chunks = binary_source().parse(a + b, 0.0)
    assert [c.fs for c in chunks] == [360.0, 250.0]
    assert chunks[1].gap


# --------------------------------------------------------------------------- device errors


@pytest.mark.parametrize("code, text", [(errno.ENOENT, "no such device"), (errno.EACCES, "permission denied"),
                                        (errno.EBUSY, "busy")])
def test_device_errors_are_one_line(code, text):
    exc = OSError(code, "x")
    msg = str(device_error("/dev/ttyUSB9", exc))
    assert text in msg and "\n" not in msg and "/dev/ttyUSB9" in msg


def test_missing_device_raises_device_error(tmp_path):
    from edge_ecg.stream.sources import SerialAsciiSource

    src = SerialAsciiSource(str(tmp_path / "ttyNOPE"), fs=360.0)
    with pytest.raises(DeviceError, match="no such device"):
        src.open()
    with pytest.raises(ConfigError, match="--fs is required"):
        SerialAsciiSource(str(tmp_path / "tty"), fs=None)


# --------------------------------------------------------------------------- replay, simulate


def small_record(seconds=20.0, fs=360.0):
    x, s, labels = simulate_ecg(seconds, fs=fs, seed=1)
    return Record(name="sim", fs=fs, lead="MLII", signal=x.astype(np.float32), beat_samples=s, beat_classes=labels)


def test_replay_speed_paces_and_zero_does_not():
    rec = small_record(4.0)
    t = time.perf_counter()
    n = sum(len(c) for c in ReplaySource(rec, speed=0).chunks())
    assert n == len(rec.signal) and time.perf_counter() - t < 0.5
    t = time.perf_counter()
    chunks = list(ReplaySource(rec, speed=8.0).chunks())  # 4 s at 8x: 0.5 s
    elapsed = time.perf_counter() - t
    assert 0.4 < elapsed < 1.5
    assert max(len(c) for c in chunks) <= int(0.01 * 8 * rec.fs) + 1  # small chunks when paced
    truth = [t for c in chunks for t in c.truth]
    assert [t[0] for t in truth] == rec.beat_samples.tolist()


def test_replay_start_and_duration():
    rec = small_record(20.0)
    chunks = list(ReplaySource(rec, speed=0, start_s=5.0, duration_s=10.0).chunks())
    assert sum(len(c) for c in chunks) == int(10 * rec.fs)
    truth = [t[0] for c in chunks for t in c.truth]
    expected = [s - int(5 * rec.fs) for s in rec.beat_samples if 5 * rec.fs <= s < 15 * rec.fs]
    assert truth == expected


def test_open_replay_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_replay(str(tmp_path / "999"))


def test_open_replay_reads_a_record(tiny_db):
    rec = open_replay(str(tiny_db / "900"))
    assert rec.fs == 360.0 and rec.lead == "MLII" and len(rec.beat_samples) == 42
    rec = open_replay("901", data=tiny_db, lead="V1")
    assert rec.lead == "V1"
    with pytest.raises(DataError, match="record 900 has no lead 'II' \\(it has MLII, V1\\)"):
        open_replay(str(tiny_db / "900.hea"), lead="II")  # asked for by name: one line naming the leads


def test_open_replay_uses_the_database_default_lead(two_databases):
    rec = open_replay(str(two_databases / "svdb" / "800"))  # svdb: ECG1 by default
    assert rec.lead == "ECG1" and rec.fs == 128.0 and len(rec.beat_samples) > 0


def test_simulator_is_chunking_independent_with_truth():
    x, s, labels = simulate_ecg(120.0, fs=250.0, seed=9, s_prob=0.1, v_prob=0.1)
    sim = EcgSimulator(fs=250.0, seed=9, s_prob=0.1, v_prob=0.1)
    parts, beats = [], []
    rng = np.random.default_rng(0)
    while sum(len(p) for p in parts) < len(x):
        a, b = sim.generate(int(rng.integers(1, 700)))
        parts.append(a)
        beats += b
    np.testing.assert_allclose(np.concatenate(parts)[: len(x)], x)
    assert [b.sample for b in beats if b.sample < len(x)] == s.tolist()
    assert set(labels) == {"N", "S", "V"}
    # S and V are premature; V is followed by a compensatory pause
    rr = np.diff(s) / 250.0
    pre = {c: np.median(rr[labels[1:] == c]) for c in "NSV"}
    assert pre["S"] < 0.8 * pre["N"] and pre["V"] < 0.8 * pre["N"]
    after_v = rr[1:][labels[1:-1] == "V"]
    assert np.median(after_v) > 1.2 * pre["N"]


def test_simulated_source_duration_and_speed():
    src = SimulatedSource(fs=360.0, speed=0, duration_s=5.0)
    chunks = list(src.chunks())
    assert sum(len(c) for c in chunks) == 1800
    with pytest.raises(ConfigError):
        SimulatedSource(speed=-1)


# --------------------------------------------------------------------------- bounded reader


class BurstSource(Source):
    """A live source producing ``n`` chunks of 100 samples as fast as it can."""

    live = True

    def __init__(self, n):
        super().__init__()
        self.n = n

    def chunks(self):
        for k in range(self.n):
            if self.stopped:
                return
            yield Chunk(np.full(100, float(k)), 100.0, time.perf_counter())


def test_slow_consumer_drops_and_counts_with_bounded_queue():
    reader = ThreadedReader(BurstSource(500), max_chunks=8).start()
    got = []
    while not reader.finished:
        chunk = reader.get(timeout=0.05)
        if chunk is not None:
            got.append(chunk)
            time.sleep(0.002)  # slower than the producer
        assert reader.queue.qsize() <= 8
    assert reader.dropped_chunks > 0
    assert reader.dropped_samples == 100 * (500 - len(got))
    # a chunk after a drop carries the gap and the number of lost samples
    firsts = [int(c.samples[0]) for c in got]
    for prev, c in zip(firsts, got[1:]):
        jump = int(c.samples[0]) - prev - 1
        assert (jump > 0) == c.gap
        assert c.lost == 100 * jump
    reader.stop()


def test_reader_passes_errors_to_the_consumer():
    class Failing(Source):
        live = True

        def chunks(self):
            yield Chunk(np.zeros(3), 100.0, 0.0)
            raise DeviceError("boom")

    reader = ThreadedReader(Failing()).start()
    assert reader.get(timeout=1.0) is not None
    with pytest.raises(DeviceError, match="boom"):
        for _ in range(50):
            reader.get(timeout=0.05)
    reader.stop()


def test_non_dropping_reader_loses_nothing():
    reader = ThreadedReader(BurstSource(200), max_chunks=4, drop=False).start()
    n = 0
    while not reader.finished:
        if reader.get(timeout=0.05) is not None:
            n += 1
            time.sleep(0.0005)
    assert n == 200 and reader.dropped_samples == 0
    reader.stop()


# --------------------------------------------------------------------------- --save


def test_save_writes_a_wfdb_record_with_gaps(tmp_path):
    import wfdb

    w = WfdbStreamWriter(tmp_path / "run1", lead="MLII")
    x = np.round(np.sin(np.arange(1000) / 20) * 300 + 1024)
    w.write(Chunk(x[:600], 360.0, 0.0, units="adc", gain=200.0, baseline=1024))
    w.write(Chunk(x[600:], 360.0, 0.0, units="adc", gain=200.0, baseline=1024, gap=True, lost=50))
    w.close()
    rec = wfdb.rdrecord(str(tmp_path / "run1"), physical=False)
    assert rec.fs == 360 and rec.sig_len == 1050 and rec.sig_name == ["MLII"]
    d = rec.d_signal[:, 0]
    np.testing.assert_array_equal(d[:600], x[:600])
    assert np.all(d[600:650] == INVALID)
    np.testing.assert_array_equal(d[650:], x[600:])
    phys = wfdb.rdrecord(str(tmp_path / "run1")).p_signal[:600, 0]
    np.testing.assert_allclose(phys, (x[:600] - 1024) / 200.0)


def test_save_millivolt_source(tmp_path):
    import wfdb

    w = WfdbStreamWriter(tmp_path / "sim", lead="ECG")
    x, _, _ = simulate_ecg(3.0, fs=250.0)
    for i in range(0, len(x), 100):
        w.write(Chunk(x[i:i + 100], 250.0, 0.0))
    w.close()
    rec = wfdb.rdrecord(str(tmp_path / "sim"))
    np.testing.assert_allclose(rec.p_signal[:, 0], x, atol=0.0006)
    with pytest.raises(DataError):
        WfdbStreamWriter(tmp_path / "missing" / "x")


def test_threads_left_behind_are_daemons():
    reader = ThreadedReader(BurstSource(10)).start()
    reader.stop()
    assert all(t.daemon for t in threading.enumerate() if t.name == "edge-ecg-reader")
