"""The emulated board: record -> ADC counts -> (C) encoder -> faults -> pseudo-terminal -> pyserial."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import serial
import wfdb
from click.testing import CliRunner

from edge_ecg.cli import main
from edge_ecg.stream import protocol as P
from firmware_harness import ccore
from firmware_harness.emulator import Emulator, EmulatorSettings, Faults, open_pty
from firmware_harness.sources import RecordSource, SimulatorSource, SyntheticSource, record_source

NO_C = ccore.missing_toolchain()


def adc_of(folder, name: str) -> np.ndarray:
    """The record's own digital samples (lead 0), i.e. what the emulator must send at its gain/offset."""
    return wfdb.rdrecord(str(folder / name), channels=[0], physical=False).d_signal[:, 0]


def decode(data: bytes):
    dec = P.FrameDecoder()
    frames = dec.feed(data)
    headers = [f for f in frames if isinstance(f, P.Header)]
    data_frames = [f for f in frames if isinstance(f, P.DataFrame)]
    return headers, data_frames, dec


def emulated_bytes(source, **settings) -> tuple[bytes, Emulator]:
    board = Emulator(source, EmulatorSettings(**settings))
    return b"".join(chunk for _, chunk in board.chunks()), board


def read_serial(path: str, until, timeout_s: float = 20.0) -> bytes:
    """Read ``path`` with pyserial until ``until(bytes so far)`` or the board disconnects."""
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    with serial.Serial(path, timeout=0.2) as port:
        while time.monotonic() < deadline and not until(bytes(got)):
            try:
                got += port.read(port.in_waiting or 1)
            except serial.SerialException:
                break  # the emulator closed the terminal: unplugged
    return bytes(got)


def test_record_samples_arrive_as_the_records_adc_counts(tiny_db):
    data, board = emulated_bytes(record_source(tiny_db / "900"), fs=360.0, gain=200.0, offset=1024, speed=0)
    headers, frames, dec = decode(data)
    expected = adc_of(tiny_db, "900")
    sent = np.concatenate([f.samples[:, 0] for f in frames])
    assert np.array_equal(sent, expected)
    assert headers[0] == P.header_from_values(360.0, 200.0, baseline=1024, adc_bits=12)
    assert len(headers) == int(np.ceil(len(expected) / 360))  # one per second of signal
    assert dec.garbage_bytes == dec.crc_errors == dec.lost_frames == 0
    assert board.encoder_name == ("python" if NO_C else "c")


def test_resampling_and_gain_follow_the_settings(tiny_db):
    rec = record_source(tiny_db / "901")
    data, _ = emulated_bytes(rec, fs=250.0, gain=500.0, offset=2048, adc_bits=12, speed=0)
    headers, frames, _ = decode(data)
    counts = np.concatenate([f.samples[:, 0] for f in frames]).astype(float)
    assert headers[0].fs == 250.0 and headers[0].gain == 500.0 and headers[0].baseline == 2048
    assert abs(len(counts) - len(rec.signal_mv) * 250 / 360) <= 1
    mv = headers[0].to_mv(counts)
    assert np.max(mv) == pytest.approx(np.max(rec.signal_mv), abs=0.05)  # R peaks survive resampling
    assert np.median(mv) == pytest.approx(np.median(rec.signal_mv), abs=0.02)


def test_samples_are_clipped_to_the_adc_range():
    src = RecordSource(np.array([-100.0, 0.0, 100.0] * 10), fs=250.0)
    data, _ = emulated_bytes(src, fs=250.0, gain=200.0, offset=512, adc_bits=10, speed=0)
    counts = np.concatenate([f.samples[:, 0] for f in decode(data)[1]])
    assert set(counts.tolist()) == {0, 512, 1023}


@pytest.mark.skipif(NO_C is not None, reason=f"needs the C core: {NO_C}")
def test_c_and_python_encoders_send_identical_bytes(tiny_db):
    src = record_source(tiny_db / "900")
    c_bytes, c_board = emulated_bytes(src, fs=360.0, encoder="c", speed=0)
    py_bytes, py_board = emulated_bytes(src, fs=360.0, encoder="python", speed=0)
    assert (c_board.encoder_name, py_board.encoder_name) == ("c", "python")
    assert c_bytes == py_bytes


def test_pty_with_pyserial_reads_exactly_the_record(tiny_db):
    master, slave, path = open_pty()
    board = Emulator(record_source(tiny_db / "900"), EmulatorSettings(fs=360.0, speed=0))
    expected = adc_of(tiny_db, "900")
    n_bytes = len(emulated_bytes(record_source(tiny_db / "900"), fs=360.0, speed=0)[0])
    stop = threading.Event()
    try:
        with serial.Serial(path, timeout=0.2) as port:  # open first: pyserial flushes on open
            thread = threading.Thread(target=board.run, args=(master,), kwargs=dict(stop=stop, drain_input=True))
            thread.start()
            got = bytearray()
            deadline = time.monotonic() + 20
            while len(got) < n_bytes and time.monotonic() < deadline:
                got += port.read(port.in_waiting or 1)
                port.write(b"?")  # a reader talking back must not block the board
        stop.set()
        thread.join(5)
    finally:
        stop.set()
        os.close(master)
        os.close(slave)
    headers, frames, dec = decode(bytes(got))
    assert headers and headers[0].fs == 360.0
    assert np.array_equal(np.concatenate([f.samples[:, 0] for f in frames]), expected)
    assert dec.crc_errors == 0 and dec.garbage_bytes == 0


def test_real_time_pacing_and_speed():
    for speed, seconds in ((1.0, 1.0), (4.0, 2.0)):
        read_end, write_end = os.pipe()
        chunks = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read_end, 65536), b"")))
        reader.start()
        board = Emulator(SyntheticSource(), EmulatorSettings(fs=250.0, speed=speed, duration_s=seconds))
        t0 = time.monotonic()
        stats = board.run(write_end)
        elapsed = time.monotonic() - t0
        os.close(write_end)
        reader.join(5)
        os.close(read_end)
        assert stats["samples"] == 250 * seconds
        assert seconds / speed * 0.9 <= elapsed <= seconds / speed + 1.0
        _, frames, _ = decode(b"".join(chunks))
        assert sum(len(f) for f in frames) == 250 * seconds


def test_ascii_format_prints_one_integer_per_line(tiny_db):
    data, _ = emulated_bytes(record_source(tiny_db / "900"), fs=360.0, fmt="ascii", speed=0, duration_s=2.0)
    text = data.decode("ascii")
    assert text.endswith("\r\n")
    lines = text.split("\r\n")[:-1]
    assert [int(x) for x in lines] == adc_of(tiny_db, "900")[:720].tolist()


def test_lead_off_sets_the_flag_and_ascii_prints_bang():
    src = SyntheticSource(seed=1)
    faults = Faults(lead_off_every_s=1.0, lead_off_for_s=0.5)
    data, _ = emulated_bytes(src, fs=250.0, speed=0, duration_s=3.0, faults=faults)
    frames = decode(data)[1]
    railed = np.concatenate([f.samples[:, 0] for f in frames]) == 4095
    assert railed.sum() == 2 * 125  # t in [1.0, 1.5) and [2.5, 3.0) s at 250 Hz
    assert all(f.lead_off == bool(np.any(f.samples == 4095)) for f in frames)
    text, _ = emulated_bytes(src, fs=250.0, fmt="ascii", speed=0, duration_s=3.0, faults=faults)
    lines = text.decode().split("\r\n")[:-1]
    assert lines.count("!") == 2 * 125


def test_byte_faults_are_counted_by_the_decoder_and_never_crash_it():
    src = SyntheticSource(seed=2)
    clean, _ = emulated_bytes(src, fs=250.0, speed=0, duration_s=20.0)
    clean_frames = {f.seq: f.samples for f in decode(clean)[1]}
    faults = Faults(drop_bytes=2e-3, flip_bits=2e-4, garbage=0.05, seed=7)
    noisy, board = emulated_bytes(src, fs=250.0, speed=0, duration_s=20.0, faults=faults)
    stats = board.faults.stats()
    assert stats["bytes_dropped"] > 0 and stats["bits_flipped"] > 0 and stats["garbage_bursts"] > 0
    dec = P.FrameDecoder()
    frames = []
    for i in range(0, len(noisy), 33):
        frames += [f for f in dec.feed(noisy[i:i + 33]) if isinstance(f, P.DataFrame)]
    assert dec.crc_errors > 0 and dec.garbage_bytes >= stats["garbage_bytes"] and dec.lost_frames > 0
    assert 0.8 * len(clean_frames) < len(frames) < len(clean_frames)
    assert all(np.array_equal(f.samples, clean_frames[f.seq]) for f in frames)  # what gets through is right


def test_stall_loses_frames_that_show_up_as_a_sequence_gap():
    faults = Faults(stall_every_s=2.0, stall_for_s=1.0)
    data, board = emulated_bytes(SyntheticSource(), fs=250.0, speed=0, duration_s=7.0, faults=faults)
    _, frames, dec = decode(data)
    assert board.faults.stalls == 2
    assert dec.seq_gaps == 2 and dec.lost_frames == pytest.approx(2 * 25, abs=2)  # 1 s = 25 frames of 10
    assert sum(len(f) for f in frames) == pytest.approx(250 * 5, abs=20)  # stalled in [2, 3) and [5, 6) s


def test_clock_drift_changes_how_many_samples_a_second_holds():
    fs, seconds, ppm = 360.0, 60.0, 500.0
    board = Emulator(SyntheticSource(), EmulatorSettings(fs=fs, speed=0, duration_s=seconds,
                                                         faults=Faults(clock_ppm=ppm)))
    times = [t for t, _ in board.chunks()]
    assert board.samples == round(seconds * fs * (1 + ppm * 1e-6))  # 21610.8 -> 10.8 extra samples
    assert times[-1] == pytest.approx((board.samples - 1) / (fs * (1 + ppm * 1e-6)))
    assert board.header.fs == fs  # the header still announces the nominal rate
    rec = RecordSource(np.sin(np.arange(36000) / 50.0), fs=fs)
    slow = list(rec.iter_mv(fs, clock_ppm=-300.0))
    assert sum(map(len, slow)) == pytest.approx(36000 * (1 - 300e-6), abs=1)


def test_cli_prints_the_pty_path_first_and_streams(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "edge_ecg", "emulate", "--simulate", "--fs", "250", "--speed", "4",
                             "--duration", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), path
        data = read_serial(path, until=lambda b: False)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    headers, frames, dec = decode(data)
    assert headers[0].fs == 250.0 and headers[0].gain == 200.0 and headers[0].baseline == 1024
    assert sum(len(f) for f in frames) == 500
    assert dec.crc_errors == 0 and dec.lost_frames == 0
    assert "emulating simulator at 250 Hz" in err and "samples=500" in err


@pytest.mark.parametrize("args,message", [
    (["--simulate", "--record", "x"], "exactly one of"),
    ([], "exactly one of"),
    (["--simulate", "--drop-bytes", "2"], "--drop-bytes is a probability"),
    (["--simulate", "--fs", "0"], "--fs 0 Hz is not a plausible ECG sampling rate (50-4000 Hz)"),
    (["--simulate", "--fs", "1e7"], "--fs 1e+07 Hz is not a plausible ECG sampling rate (50-4000 Hz)"),
    (["--simulate", "--fs", "10"], "--fs 10 Hz is not a plausible ECG sampling rate (50-4000 Hz)"),
    (["--simulate", "--offset", "5000"], "outside the 12-bit ADC range"),
    (["--record", "/nonexistent/folder/100"], "/nonexistent/folder/100.hea does not exist"),
])
def test_cli_user_mistakes_are_one_line_errors(args, message):
    result = CliRunner().invoke(main, ["emulate", *args])
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output


def test_cli_help_documents_units_and_an_example():
    result = CliRunner().invoke(main, ["emulate", "--help"])
    assert result.exit_code == 0
    for text in ("/dev/pts/7", "ADC counts per mV", "--clock-ppm", "edge-ecg stream --device"):
        assert text in " ".join(result.output.split())


def test_the_stream_simulator_plugs_in_as_a_source():
    src = SimulatorSource(seed=3, v_prob=0.2)
    data, board = emulated_bytes(src, fs=360.0, speed=0, duration_s=10.0, faults=Faults(clock_ppm=200.0))
    frames = decode(data)[1]
    counts = np.concatenate([f.samples[:, 0] for f in frames])
    assert len(counts) == board.samples == round(3600 * 1.0002)
    r = np.array([b.sample for b in src.beats if b.sample < len(counts) and b.label == "N"])
    assert len(r) >= 8 and {b.label for b in src.beats} & {"V"}
    assert np.all(counts[r] > np.median(counts) + 100)  # an R peak (> 0.5 mV) where the simulator put each N beat


@pytest.mark.parametrize("fmt", ["ascii", "binary"])
def test_glitch_fault_corrupts_one_sample_every_so_often_and_the_stream_replaces_it(fmt):
    """--glitch-every: a "5" merged into an ASCII line, or one wild value in a binary frame;
    the stream pipeline replaces and counts every one and finds the clean stream's beats."""
    from conftest import FakeClassifier

    from edge_ecg.stream.pipeline import StreamPipeline
    from edge_ecg.stream.protocol import DataFrame, FrameDecoder
    from edge_ecg.stream.sources import AsciiParser, Chunk

    def samples(every):
        faults = Faults(glitch_every_s=every)
        data, board = emulated_bytes(SyntheticSource(seed=2), fs=250.0, fmt=fmt, speed=0, duration_s=20.0,
                                     faults=faults)
        if fmt == "ascii":
            parser = AsciiParser()
            parser.reset()
            return parser.feed(data), board
        frames = [f for f in FrameDecoder().feed(data) if isinstance(f, DataFrame)]
        return np.concatenate([f.samples[:, 0] for f in frames]).astype(float), board

    def beats(x):
        p = StreamPipeline(FakeClassifier())
        ev = [e for k in range(0, x.size, 25) for e in p.process(Chunk(x[k:k + 25], 250.0, time.perf_counter(),
                                                                       units="adc"))]
        return [(e.sample, e.label) for e in ev + p.finish()], p.counters["impulses"]

    clean, _ = samples(0.0)
    bad, board = samples(3.0)
    assert board.stats()["glitches"] == 6 and np.count_nonzero(bad != clean) == 6
    k = np.flatnonzero(bad != clean)
    np.testing.assert_array_equal(k, np.arange(1, 7) * 750)
    if fmt == "ascii":
        assert all(str(int(bad[i])) == "5" + str(int(clean[i])) for i in k)
    ref, _ = beats(clean)
    got, impulses = beats(bad)
    assert impulses == 6 and got == ref


def test_the_harness_does_not_import_the_cli():
    """The dependency goes one way: `edge-ecg emulate` imports the harness (lazily), never back."""
    import ast

    root = Path(__file__).resolve().parents[1] / "firmware_harness"
    imported = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    assert "edge_ecg.stream.protocol" in imported  # the scan sees the harness's imports
    assert not {m for m in imported if m == "edge_ecg.cli" or m.startswith("edge_ecg.cli.")}
