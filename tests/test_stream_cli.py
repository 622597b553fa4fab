"""`edge-ecg stream` and `edge-ecg profile` end to end: replay, pty-driven serial devices, faults, errors.

The CLI runs in a subprocess (as a user runs it); the serial board is a pseudo-terminal pair
made here, reached through a symlink so it can be "unplugged" and "plugged back" (as udev's
/dev/serial/by-id links behave). A small untrained int8 model is converted once per session
in a separate process (TensorFlow never enters the process under test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import CLI_WRAPPER, imported_heavy_modules

from edge_ecg.config import CLASSES
from edge_ecg.stream import protocol as P
from edge_ecg.stream.simulate import EcgSimulator

ROOT = Path(__file__).resolve().parents[1]

MAKE_MODEL = r"""
import sys
import numpy as np
from edge_ecg.config import ModelConfig, WindowConfig
from edge_ecg.export.convert import convert_model
from edge_ecg.model.arch import build_model
from edge_ecg.tfcompat import load_tf

tf, _ = load_tf()
tf.random.set_seed(0)
window = WindowConfig()
model = build_model(ModelConfig(), window)
rng = np.random.default_rng(0)
X = rng.standard_normal((64, window.length)).astype(np.float32)
rr = np.abs(rng.normal(0.8, 0.2, (64, len(window.rr_features)))).astype(np.float32)
out = convert_model(model, window, "int8", representative=(X, rr), arch="cnn_lstm", source="untrained test model")
open(sys.argv[1], "wb").write(out.tflite)
"""

WRAPPER = CLI_WRAPPER  # runs the CLI, then reports the heavy modules it imported


@pytest.fixture(scope="session")
def int8_model(tmp_path_factory) -> Path:
    """An int8 .tflite with edge-ecg metadata (untrained weights: labels are arbitrary but real),
    made in a subprocess; without TensorFlow, the model shipped in models/ (or skip)."""
    import importlib.util

    path = tmp_path_factory.mktemp("model") / "test_int8.tflite"
    if importlib.util.find_spec("tensorflow") is None:
        shipped = sorted((ROOT / "models").glob("*int8*.tflite"))
        if not shipped:
            pytest.skip("needs TensorFlow to make a test model, or an int8 model in models/")
        path.write_bytes(shipped[0].read_bytes())
        return path
    proc = subprocess.run([sys.executable, "-c", MAKE_MODEL, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    if proc.returncode != 0:
        pytest.fail(f"could not make the test model:\n{proc.stderr[-2000:]}")
    return path


def run_cli(*args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-c", WRAPPER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, **kwargs)


def start_cli(*args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", WRAPPER, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def no_tensorflow(proc) -> bool:
    return "tensorflow" not in imported_heavy_modules(proc.stdout)


class CliRun:
    """The CLI in a subprocess with -v; :meth:`wait_open` returns once it has opened the port
    (pyserial flushes what arrived before, so a board's data must come after that)."""

    def __init__(self, *args):
        self.proc = start_cli("-v", *args)
        self.err_lines: list[str] = []
        self.opened = threading.Event()
        self.reconnected = threading.Event()
        self._t = threading.Thread(target=self._read_err, daemon=True)
        self._t.start()

    def _read_err(self):
        for line in self.proc.stderr:
            self.err_lines.append(line)
            if ": opened at " in line:
                self.opened.set()
            if "reconnected after" in line:
                self.reconnected.set()

    def wait_open(self, timeout=60.0) -> None:
        if not self.opened.wait(timeout):
            self.proc.kill()
            raise AssertionError("the CLI did not open the port:\n" + "".join(self.err_lines))

    def finish(self, timeout=60.0):
        try:
            out = self.proc.stdout.read() if self.proc.wait(timeout) is not None else ""
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._t.join(5)
        self.returncode, self.stdout, self.stderr = self.proc.returncode, out, "".join(self.err_lines)
        return self


def read_jsonl(path) -> list[dict]:
    """The beat events of an event log (its header line left out)."""
    from edge_ecg.stream.events import read_events

    return read_events(path)[1]


# --------------------------------------------------------------------------- a fake board


class PtyBoard:
    """A pseudo-terminal whose slave is reachable through ``self.link``; ``replug()`` makes a new one."""

    def __init__(self, folder: Path):
        self.link = folder / "ttyECG"
        self.master = self.slave = None
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = self.link.with_name("ttyECG.new")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.link)  # atomic, as udev swaps a by-id link

    def unplug(self) -> None:
        self.link.unlink()
        for fd in (self.master, self.slave):
            os.close(fd)
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        if self.master is not None:
            self.unplug()


def adc_ecg(seconds: float, fs: float, seed: int = 0) -> np.ndarray:
    """Simulated ECG as 10-bit ADC counts (offset 512, 200 counts/mV)."""
    x, _ = EcgSimulator(fs=fs, seed=seed, v_prob=0.1, s_prob=0.05).generate(int(seconds * fs))
    return np.clip(np.round(512 + 200 * x), 0, 1023).astype(np.int16)


def feed(board: PtyBoard, pieces: list[bytes], period_s: float, stop: threading.Event) -> threading.Thread:
    """Write ``pieces`` one every ``period_s`` on an absolute schedule (a loaded machine does not slow the board)."""
    def run():
        t0 = time.monotonic()
        for k, piece in enumerate(pieces):
            if stop.is_set():
                return
            try:
                board.write(piece)
            except OSError:
                return
            stop.wait(max(0.0, t0 + (k + 1) * period_s - time.monotonic()))

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


# --------------------------------------------------------------------------- replay and profile


def test_replay_cli_labels_events_and_no_tensorflow(int8_model, tiny_db, tmp_path):
    events, summary = tmp_path / "beats.jsonl", tmp_path / "summary.json"
    proc = run_cli("stream", "--replay", tiny_db / "900", "--speed", "0", "--model", int8_model,
                   "--jsonl", events, "--summary-json", summary, "--save", tmp_path / "copy")
    assert proc.returncode == 0, proc.stderr
    assert no_tensorflow(proc)
    ev = read_jsonl(events)
    s = json.loads(summary.read_text())
    assert s["ended"] == "source ended" and s["beats"] == len(ev)
    from edge_ecg.config import StreamConfig, to_dict
    from edge_ecg.stream.events import read_events

    header = read_events(events)[0]  # the log says what made it, as the summary does
    assert header["stream_config"] == s["stream_config"] == to_dict(StreamConfig())
    assert header["model"] == s["model"] == str(int8_model) and header["window"]["fs"] > 0
    assert len(ev) >= 40  # the record has 42 annotated beats; the detector learns in the first 2 s
    assert all(e["label"] in CLASSES and abs(sum(e["probs"].values()) - 1.0) < 0.02 for e in ev)
    assert sum(s["counts"].values()) == s["classified"] == len(ev)
    assert all(e["truth"] in ("N", "S", "V") for e in ev)  # matched to the record's annotations
    assert s["truth_matched"] == len(ev)
    assert s["stage_latency_ms"]["inference"]["count"] > 0 and s["beat_latency_ms"]["count"] == len(ev)
    assert "beats " in proc.stdout and "p99" in proc.stdout
    import wfdb

    copy = wfdb.rdrecord(str(tmp_path / "copy"))
    orig = wfdb.rdrecord(str(tiny_db / "900"), channels=[0])
    np.testing.assert_allclose(copy.p_signal[:, 0], orig.p_signal[:, 0], atol=1e-3)


def test_profile_cli_json_and_no_tensorflow(int8_model):
    proc = run_cli("profile", "--model", int8_model, "--runs", "50", "--json")
    assert proc.returncode == 0, proc.stderr
    assert no_tensorflow(proc)
    result = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert result["runs"] == 50 and result["runtime"] in ("ai_edge_litert", "tflite_runtime", "tensorflow.lite")
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert result["quantization"] == "int8"
    plain = run_cli("profile", int8_model, "--runs", "20")  # the old positional MODEL: still read, with a note
    assert plain.returncode == 0 and "beats/s" in plain.stdout
    assert "`edge-ecg profile MODEL` is deprecated" in plain.stderr and "--model MODEL" in plain.stderr


def test_simulate_then_ctrl_c_prints_the_summary(int8_model, tmp_path):
    proc = start_cli("stream", "--simulate", "--model", int8_model, "--speed", "4", "--view", "plain",
                     "--summary-json", tmp_path / "s.json")
    time.sleep(6.0)  # model load + ~16 s of signal at 4x
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "interrupted" in out and "beats" in out
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["interrupted"] and s["beats"] > 3
    assert s["truth_matched"] == s["classified"]  # the simulator's ground truth came along


def test_sigterm_stops_with_a_summary_even_when_sigint_is_ignored(int8_model, tmp_path):
    """As a systemd service (SIGTERM) or a job started with `&` (SIGINT inherited as ignored)."""
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, "stream", "--simulate", "--model", str(int8_model),
                             "--speed", "4", "--view", "plain", "--summary-json", str(tmp_path / "s.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), preexec_fn=ignore_sigint)
    time.sleep(6.0)
    proc.send_signal(signal.SIGINT)  # honoured although the parent ignored it
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["interrupted"]
    proc = start_cli("stream", "--simulate", "--model", int8_model, "--speed", "4", "--view", "plain")
    time.sleep(6.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "interrupted" in out and "beats" in out


def test_stop_signals_restores_the_previous_handlers():
    from edge_ecg.stream.runner import stop_requested, stop_signals

    before = signal.getsignal(signal.SIGTERM)
    with stop_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)  # noted, not raised (tests/test_stream_shutdown.py)
        time.sleep(0.1)
        assert stop_requested()
    assert signal.getsignal(signal.SIGTERM) is before


# --------------------------------------------------------------------------- serial boards on a pty


@pytest.mark.slow
def test_ascii_board_through_pty_with_garbage_and_half_lines(int8_model, tmp_path):
    fs = 250.0
    board = PtyBoard(tmp_path)
    x = adc_ecg(14.0, fs, seed=1)
    lines = [f"{v}\n".encode() for v in x]
    rng = np.random.default_rng(0)
    garbage = 0
    for i in sorted(rng.choice(np.arange(300, int(10 * fs)), 12, replace=False), reverse=True):
        lines[int(i)] = b"\x00\xff#garbage!\n"  # a garbled line keeps its sample's time slot, flagged
        garbage += 1
    lines.insert(0, b"37\n")  # the tail of a line cut by the start of reading
    step = 5  # 5 lines every 20 ms: real time at 250 Hz
    pieces = [b"".join(lines[i:i + step]) for i in range(0, len(lines), step)]
    stop = threading.Event()
    events = tmp_path / "ascii.jsonl"
    try:
        run = CliRun("stream", "--device", board.link, "--fs", fs, "--model", int8_model, "--duration", "12",
                     "--jsonl", events, "--summary-json", tmp_path / "s.json", "--view", "plain")
        run.wait_open()
        feeder = feed(board, pieces, step / fs, stop)
        proc = run.finish(timeout=90)
    finally:
        stop.set()
        board.close()
    feeder.join(5)
    assert proc.returncode == 0, proc.stderr
    assert no_tensorflow(proc)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["source_stats"]["bad_lines"] == garbage
    assert s["source_stats"]["partial_lines"] == 1
    ev = read_jsonl(events)
    assert len(ev) >= 8 and all(e["label"] in CLASSES for e in ev)  # a lone garbled line is repaired, not flagged
    assert s["samples"] == 12 * fs and s["ended"] == "duration reached"
    # beat times are stream times: they match the simulated R peaks
    _, truth = EcgSimulator(fs=fs, seed=1, v_prob=0.1, s_prob=0.05).generate(int(14 * fs))
    t_true = np.array([b.sample for b in truth]) / fs
    assert all(np.min(np.abs(t_true - e["time_s"])) < 0.05 for e in ev), ([e["time_s"] for e in ev], t_true)


def binary_stream(x: np.ndarray, fs: float, spf: int = 10, seq0: int = 0, lead_off=(), skip=(), corrupt=()):
    """Frames (one bytes object per data frame, header first and every second)."""
    header = P.encode_header(fs, 200.0, baseline=512, samples_per_frame=spf)
    out = []
    for k in range(len(x) // spf):
        frame = b""
        if k % int(fs // spf) == 0:
            frame += header
        if k in skip:
            continue
        data = bytearray(P.encode_data(seq0 + k, x[k * spf:(k + 1) * spf], lead_off=k in lead_off))
        if k in corrupt:
            data[9] ^= 0x5A
        out.append(frame + bytes(data))
    return out


@pytest.mark.slow
def test_binary_board_through_pty_with_faults(int8_model, tmp_path):
    fs = 360.0
    x = adc_ecg(40.0, fs, seed=2)
    spf = 10
    lead_off = set(range(int(24 * fs / spf), int(28 * fs / spf)))  # 4 s of lead-off
    frames = binary_stream(x, fs, spf, lead_off=lead_off, skip={int(12 * fs / spf)},
                           corrupt={int(18 * fs / spf)})
    frames.insert(100, b"\xec\x47\x01garbage\x00\x00")
    board = PtyBoard(tmp_path)
    stop = threading.Event()
    per = 12  # frames per write, 4x real time
    pieces = [b"".join(frames[i:i + per]) for i in range(0, len(frames), per)]
    try:
        run = CliRun("stream", "--device", board.link, "--format", "binary", "--model", int8_model,
                     "--duration", "38", "--jsonl", tmp_path / "b.jsonl", "--summary-json", tmp_path / "s.json",
                     "--view", "none")
        run.wait_open()
        feeder = feed(board, pieces, per * spf / fs / 4, stop)
        proc = run.finish(timeout=90)
    finally:
        stop.set()
        board.close()
    feeder.join(5)
    assert proc.returncode == 0, proc.stderr
    assert no_tensorflow(proc)
    s = json.loads((tmp_path / "s.json").read_text())
    st = s["source_stats"]
    assert st["crc_errors"] >= 1 and st["seq_gaps"] == 2 and st["lost_frames"] == 2 and st["garbage_bytes"] > 0
    assert s["gaps"] == 2 and s["lost_samples"] == 2 * spf
    ev = read_jsonl(tmp_path / "b.jsonl")
    _, truth = EcgSimulator(fs=fs, seed=2, v_prob=0.1, s_prob=0.05).generate(len(x))
    t_true = np.array([b.sample for b in truth]) / fs
    assert all(np.min(np.abs(t_true - e["time_s"])) < 0.05 for e in ev)  # no phantom beats at the gaps
    off = [e for e in ev if 24.0 - 1.0 <= e["time_s"] <= 28.0 + 1.5]
    assert off and all(e["label"] is None and e["skipped"] == "quality" for e in off)
    assert s["skipped_quality"] >= len(off) and s["bad_samples"] >= 4 * fs - 2 * spf
    assert [e for e in ev if e["time_s"] > 31 and e["label"] in CLASSES]  # classification resumes


@pytest.mark.slow
def test_board_unplugged_and_plugged_back(int8_model, tmp_path):
    fs = 360.0
    spf = 10
    x = adc_ecg(40.0, fs, seed=3)
    frames = binary_stream(x, fs, spf)
    half = len(frames) // 2
    board = PtyBoard(tmp_path)
    stop = threading.Event()
    per = 12
    first = [b"".join(frames[i:i + per]) for i in range(0, half, per)]
    second = [b"".join(frames[i:i + per]) for i in range(half, len(frames), per)]
    run = CliRun("stream", "--device", board.link, "--format", "binary", "--model", int8_model,
                 "--duration", "39", "--jsonl", tmp_path / "u.jsonl", "--summary-json", tmp_path / "s.json",
                 "--view", "none")
    proc = run.proc
    try:
        run.wait_open()
        feed(board, first, per * spf / fs / 4, stop).join(30)
        time.sleep(0.3)
        board.unplug()  # the CLI's reads fail now; it retries with back-off
        time.sleep(1.5)
        board.plug()
        assert run.reconnected.wait(30), "".join(run.err_lines)
        feed(board, second, per * spf / fs / 4, stop).join(30)
        run.finish(timeout=60)
        err = run.stderr
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        board.close()
    assert proc.returncode == 0, err
    assert "device lost" in err and "reconnected" in err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["source_stats"]["disconnects"] >= 1 and s["source_stats"]["reconnects"] >= 1
    assert s["gaps"] >= 1
    ev = read_jsonl(tmp_path / "u.jsonl")
    t_half = half * spf / fs
    assert [e for e in ev if e["time_s"] < t_half] and [e for e in ev if e["time_s"] > t_half + 3]


# --------------------------------------------------------------------------- errors: one line, non-zero exit


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def cli(*args):
    from edge_ecg.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_lead_names_a_signal_and_column_picks_a_board_value(tiny_db, tmp_path):
    # checked before any model or device is opened
    line = one_line_error(cli("stream", "--device", tmp_path / "ttyUSB7", "--fs", 360, "--lead", "1"))
    assert "--column N" in line and "--lead 1" in line
    line = one_line_error(cli("stream", "--replay", "900", "--data", tiny_db, "--column", 1))
    assert "--column is for --device" in line and "--lead NAME" in line
    assert cli("stream", "--device", "x", "--fs", 360, "--column", -1).exit_code == 2  # click's range check


def test_missing_device_path(int8_model, tmp_path):
    line = one_line_error(cli("stream", "--device", tmp_path / "ttyUSB7", "--fs", 360, "--model", int8_model))
    assert "no such device" in line


def test_permission_error_is_one_line(int8_model, tmp_path, monkeypatch):
    import serial

    def refuse(*a, **k):
        raise serial.SerialException(13, "could not open port: [Errno 13] Permission denied")

    monkeypatch.setattr(serial, "Serial", refuse)
    line = one_line_error(cli("stream", "--device", "/dev/ttyS0", "--fs", 360, "--model", int8_model))
    assert "permission denied" in line and "dialout" in line


def test_ascii_needs_fs_and_sources_are_exclusive(int8_model, tmp_path):
    assert "--fs is required" in one_line_error(cli("stream", "--device", "/dev/null", "--model", int8_model))
    r = cli("stream", "--simulate", "--replay", "100", "--model", int8_model)
    assert r.exit_code == 2 and "exactly one source" in r.output
    assert "plausible" in one_line_error(cli("stream", "--simulate", "--fs", 5, "--model", int8_model))


def test_wrong_fs_binary_header(int8_model, tmp_path):
    board = PtyBoard(tmp_path)
    frames = binary_stream(adc_ecg(5.0, 250.0), 250.0)
    stop = threading.Event()
    try:
        run = CliRun("stream", "--device", board.link, "--format", "binary", "--fs", 360, "--model", int8_model,
                     "--view", "none")
        run.wait_open()
        feed(board, [b"".join(frames)], 0.1, stop)
        proc = run.finish(timeout=60)
    finally:
        stop.set()
        board.close()
    assert proc.returncode != 0
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert err[-1].startswith("Error:") and "250" in err[-1] and "Traceback" not in proc.stderr


def test_wrong_fs_ascii_rate(int8_model, tmp_path):
    board = PtyBoard(tmp_path)
    x = adc_ecg(8.0, 1000.0)
    pieces = [b"".join(f"{v}\n".encode() for v in x[i:i + 20]) for i in range(0, len(x), 20)]
    stop = threading.Event()
    try:
        run = CliRun("stream", "--device", board.link, "--fs", 250, "--model", int8_model, "--view", "none")
        run.wait_open()
        feed(board, pieces, 0.02, stop)  # 1000 lines/s
        proc = run.finish(timeout=60)
    finally:
        stop.set()
        board.close()
    assert proc.returncode != 0
    assert "samples/s but --fs is 250" in proc.stderr and "Traceback" not in proc.stderr


def test_model_that_does_not_fit(int8_model, tmp_path):
    data = int8_model.read_bytes()
    bad = tmp_path / "bad_window.tflite"
    old = b'"post_s":1.0,"pre_s":1.5'
    assert old in data
    bad.write_bytes(data.replace(old, b'"post_s":1.0,"pre_s":2.5'))
    line = one_line_error(cli("stream", "--simulate", "--model", bad))
    assert "bad_window.tflite" in line and "samples" in line
    notmodel = tmp_path / "x.tflite"
    notmodel.write_bytes(b"hello world, not a model")
    assert "not a TFLite model" in one_line_error(cli("profile", "--model", notmodel))
    assert "no such model" in one_line_error(cli("stream", "--simulate", "--model", tmp_path / "nope.tflite"))


def test_default_model_is_found_next_to_the_package(tmp_path, monkeypatch):
    from edge_ecg.errors import ModelError
    from edge_ecg.stream.classifier_files import MODELS_DIR, find_default_model

    assert MODELS_DIR == ROOT / "models"
    with pytest.raises(ModelError, match="no .tflite found"):
        find_default_model(tmp_path)
    (tmp_path / "cnn_lstm_float32.tflite").write_bytes(b"x")
    (tmp_path / "cnn_lstm_int8.tflite").write_bytes(b"x")
    (tmp_path / "cnn_lstm_int8_edgetpu.tflite").write_bytes(b"x")
    assert find_default_model(tmp_path).name == "cnn_lstm_int8.tflite"
    monkeypatch.setenv("EDGE_ECG_MODELS", str(tmp_path / "empty"))
    assert "pass --model" in one_line_error(cli("stream", "--simulate"))


def test_edgetpu_without_the_library_is_one_line(int8_model):
    # in a subprocess: LiteRT's half-made Delegate complains when garbage-collected (its own
    # "Exception ignored in Delegate.__del__" noise, after our error line)
    proc = run_cli("profile", "--model", int8_model, "--delegate", "edgetpu", "--runs", "5")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "libedgetpu" in errors[0]


def test_out_of_the_box_demo_with_the_shipped_model(tmp_path):
    """`edge-ecg stream --simulate` with no --model: the int8 model in models/ on the simulator."""
    if not sorted((ROOT / "models").glob("*.tflite")):
        pytest.skip("no model shipped in models/ yet")
    proc = run_cli("stream", "--simulate", "--speed", "0", "--duration", "90", "--view", "none",
                   "--summary-json", tmp_path / "s.json")
    assert proc.returncode == 0, proc.stderr
    assert no_tensorflow(proc)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["beats"] > 80 and s["truth_matched"] == s["classified"]
    # a trained model recognises the simulator's N, S and V beats most of the time
    assert s["truth_agreement"] > 0.8, s["counts"]
