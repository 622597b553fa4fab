"""Issue 18's rough edges, one test (or a few) each: what a new user hit, and what happens now."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_stream_cli import PtyBoard, adc_ecg, binary_stream

from edge_ecg.cli import main
from edge_ecg.errors import ConfigError, DeviceError
from edge_ecg.records.aami import DS2
from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.runner import run_stream
from edge_ecg.stream.sources import (
    Chunk, SerialAsciiSource, SerialBinarySource, Source, ThreadedReader, check_device_fs, guess_format,
)
from edge_ecg.stream.view import format_summary, plain_line

from conftest import FakeClassifier

ROOT = Path(__file__).resolve().parents[1]


def one_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


# --------------------------------------------------------------------------- wrong --format, device lost


def watch(source, until, timeout=15.0) -> dict:
    """Run ``source`` in a thread until ``until(stats)`` holds; returns the stats then."""
    reader = ThreadedReader(source).start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            reader.get(timeout=0.05)
            stats = source.stats()
            if until(stats):
                return stats
        raise AssertionError(f"never happened; last stats {source.stats()}")
    finally:
        reader.stop()


def play(board: PtyBoard, data: bytes, seconds: float, stop: threading.Event) -> threading.Thread:
    """Write ``data`` evenly over ``seconds`` (in 20 ms pieces) until ``stop``."""
    def run():
        n = max(1, int(seconds / 0.02))
        step = max(1, len(data) // n)
        for k in range(0, len(data), step):
            if stop.is_set():
                return
            try:
                board.write(data[k:k + step])
            except OSError:
                return
            time.sleep(0.02)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


@pytest.mark.parametrize("fmt,sent,advice", [
    ("ascii", "binary", "these bytes look like binary frames: try --format binary"),
    ("binary", "ascii", "these bytes look like text lines: try --format ascii"),
    ("ascii", "noise", "neither text lines nor binary frames (a wrong --baud?)"),
])
def test_a_wrong_format_is_named_after_a_few_seconds(tmp_path, caplog, fmt, sent, advice):
    fs = 250.0
    x = adc_ecg(6.0, fs)
    data = {"binary": b"".join(binary_stream(x, fs)),
            "ascii": b"".join(f"{v}\r\n".encode() for v in x),
            "noise": np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()}[sent]
    board = PtyBoard(tmp_path)
    source = (SerialAsciiSource(board.link, fs=fs) if fmt == "ascii" else SerialBinarySource(board.link))
    source.guard.check_s = 1.0
    stop = threading.Event()
    try:
        source.open()
        play(board, data, 5.0, stop)
        stats = watch(source, lambda st: "status" in st)
    finally:
        stop.set()
        board.close()
    assert advice in stats["status"] and f"with --format {fmt}" in stats["status"]
    assert any(advice in r.getMessage() for r in caplog.records)  # and in the log
    assert guess_format(data[:1024]) == (None if sent == "noise" else sent)


def test_the_right_format_has_no_hint(tmp_path):
    fs = 250.0
    board = PtyBoard(tmp_path)
    source = SerialBinarySource(board.link)
    source.guard.check_s = 0.5
    stop = threading.Event()
    try:
        source.open()
        play(board, b"".join(binary_stream(adc_ecg(3.0, fs), fs)), 2.0, stop)
        stats = watch(source, lambda st: st.get("frames", 0) >= 60)
    finally:
        stop.set()
        board.close()
    assert "status" not in stats


@pytest.mark.slow  # ~6 s: a board played in real time, unplugged, reconnected
def test_an_unplugged_board_shows_device_lost_and_no_stale_values(tmp_path):
    fs = 250.0
    board = PtyBoard(tmp_path)
    source = SerialBinarySource(board.link, backoff_s=0.1, max_backoff_s=0.2)
    pipeline = StreamPipeline(FakeClassifier())
    stop = threading.Event()
    reader = ThreadedReader(source)
    try:
        source.open()
        play(board, b"".join(binary_stream(adc_ecg(8.0, fs), fs)), 4.0, stop).join(10)
        reader.start()
        deadline = time.monotonic() + 10
        while pipeline.hr_bpm is None and time.monotonic() < deadline:
            chunk = reader.get(0.05)
            if chunk is not None:
                pipeline.process(chunk)
        assert pipeline.hr_bpm is not None and "HR -" not in plain_line(pipeline, source.stats(), 0)
        board.unplug()
        time.sleep(0.5)
        lost = source.stats()
        assert lost["status"].startswith("device lost, reconnecting")
        line = plain_line(pipeline, lost, 0)
        assert "HR - bpm" in line and "quality -" in line and "device lost, reconnecting" in line
        board.plug()
        deadline = time.monotonic() + 10
        while source.counters["reconnects"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        play(board, b"".join(binary_stream(adc_ecg(2.0, fs, seed=1), fs, seq0=5000)), 1.0, stop).join(10)
        chunk = None
        while chunk is None or not chunk.gap:
            chunk = reader.get(1.0)
        pipeline.process(chunk)
        assert pipeline.hr_bpm is None  # the heart rate before the gap is not shown as current
    finally:
        stop.set()
        reader.stop()
        board.close()
    after = source.stats()
    assert "status" not in after or "lost" not in after["status"]
    assert after["disconnected_s"] > 0.3 and after["reconnects"] == 1


def test_the_rich_view_shows_the_device_status_instead_of_stale_values():
    import io

    from rich.console import Console

    from edge_ecg.stream.view import LiveView

    pipeline = StreamPipeline(FakeClassifier())
    pipeline.hr_bpm = 71.0
    texts = []
    for stats in ({}, {"status": "device lost, reconnecting (3 s)"}):
        buf = io.StringIO()
        Console(file=buf, width=160).print(LiveView("t", mode="rich", stream=buf)._render(pipeline, stats, 0))
        texts.append(buf.getvalue())
    assert "HR 71 bpm" in texts[0] and "signal ok" in texts[0]
    assert "device lost, reconnecting" in texts[1] and "HR - bpm" in texts[1] and "signal ok" not in texts[1]


def test_a_device_summary_gives_its_rate_not_times_real_time():
    summary = {"source": "/dev/ttyUSB0 @ 115200 baud", "ended": "interrupted", "interrupted": True, "stream_s": 60.0,
               "wall_s": 63.0, "x_realtime": 1.0, "device": True, "fs": 250.0, "received_hz": 249.6,
               "source_stats": {"disconnects": 1, "disconnected_s": 2.5}, "beats": 70, "counts": {"N": 70},
               "skipped_quality": 0, "gaps": 1, "dropped_at_gap": 0, "lost_samples": 0, "bad_samples": 0}
    text = format_summary(summary)
    assert "real time" not in text
    assert "249.6 samples/s while connected (250 Hz expected), disconnected 1 time(s) for 2.5 s" in text
    replay = dict(summary, device=False)
    assert "1x real time" in format_summary(replay)


# --------------------------------------------------------------------------- output paths, --summary-json


class ListSource(Source):
    """Chunks of a simulated ECG, then ``then`` (an exception) if given."""

    def __init__(self, n_chunks=20, then: BaseException | None = None):
        super().__init__()
        self.n, self.then = n_chunks, then

    def chunks(self):
        x = adc_ecg(self.n * 1.0, 250.0).astype(float)
        for k in range(self.n):
            yield Chunk(x[k * 250:(k + 1) * 250], 250.0, time.perf_counter(), units="adc")
        if self.then is not None:
            raise self.then


@pytest.mark.parametrize("then,ended", [(KeyboardInterrupt(), "interrupted"),
                                        (DeviceError("/dev/x: the device sends about 1 samples/s"), "error: ")])
def test_summary_json_is_written_however_the_run_ends(tmp_path, then, ended):
    path = tmp_path / "s.json"
    path.write_text("old")
    if isinstance(then, KeyboardInterrupt):
        summary = run_stream(ListSource(then=then), StreamPipeline(FakeClassifier()), threaded=False,
                             summary_json=path, summary_extra={"model": "m"})
        assert summary["interrupted"]
    else:
        with pytest.raises(DeviceError):
            run_stream(ListSource(then=then), StreamPipeline(FakeClassifier()), threaded=False, summary_json=path)
    s = json.loads(path.read_text())
    assert s["ended"].startswith(ended) and s["samples"] == 20 * 250
    assert not [p for p in tmp_path.iterdir() if p.name != "s.json"]  # no temporary file left


def test_output_folders_are_created_before_the_run(tiny_db, tmp_path):
    out = tmp_path / "new" / "deeper"
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "5", "--view", "none",
                                    "--summary-json", str(out / "s.json"), "--jsonl", str(out / "e.jsonl"),
                                    "--save", str(out / "rec")])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "s.json").read_text())["stream_s"] == 5.0
    assert (out / "e.jsonl").is_file() and (out / "rec.hea").is_file()
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps({"time_s": 1.0, "label": "V"}) + "\n")
    res = CliRunner().invoke(main, ["plot", "--record", "900", "--data", str(tiny_db), "--events", str(events),
                                    "--out", str(tmp_path / "a" / "b" / "strip.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "b" / "strip.png").read_bytes()[:4] == b"\x89PNG"


def test_an_output_that_cannot_be_written_fails_before_the_run(tiny_db, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args in (["stream", "--simulate", "--speed", "0", "--duration", "5", "--summary-json",
                  str(blocker / "s.json")],
                 ["plot", "--record", "900", "--data", str(tiny_db), "--out", str(blocker / "strip.png")],
                 ["evaluate", "--model", "x", "--plot", str(blocker / "cm.png")],
                 ["convert", "--model", "x", "--out", str(blocker / "m.tflite")]):
        line = one_line(CliRunner().invoke(main, args))
        assert line.startswith("Error: ") and "cannot create the folder" in line, line


# --------------------------------------------------------------------------- --fs, explain, data, evaluate, plot


@pytest.mark.parametrize("fs", ["10", "1e7", "0"])
def test_one_fs_range_for_emulate_and_stream(fs):
    msgs = []
    for args in (["emulate", "--simulate", "--fs", fs], ["stream", "--simulate", "--fs", fs]):
        msgs.append(one_line(CliRunner().invoke(main, args)))
    assert msgs[0] == msgs[1] and "(50-4000 Hz)" in msgs[0]
    with pytest.raises(ConfigError):
        check_device_fs(float(fs))
    assert check_device_fs(250) == 250.0


def test_explain_names_real_folders_and_refuses_a_tflite(tmp_path):
    res = CliRunner().invoke(main, ["explain", "--help"])
    examples = res.output.split("Examples:")[1].split("Options:")[0]
    for folder in re.findall(r"--model (\S+)", examples):
        assert folder == "runs/a" or (ROOT / folder).is_dir(), folder  # runs/a: what `train --out runs/a` makes
    readme = (ROOT / "README.md").read_text()
    for folder in re.findall(r"edge-ecg explain --model (\S+)", readme):
        assert folder == "runs/a" or (ROOT / folder).is_dir(), folder
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"TFL3")
    line = one_line(CliRunner().invoke(main, ["explain", "--model", str(tfl), "--record", "233", "--beat", "1"]))
    assert "needs the Keras model" in line and "edge-ecg convert" not in line


@pytest.mark.realdata
def test_the_pvc_example_explains_a_v_beat_of_a_ds2_record(mitdb_dir):
    from edge_ecg.records.load import load_record

    for text in (CliRunner().invoke(main, ["explain", "--help"]).output, (ROOT / "README.md").read_text()):
        m = re.search(r"explain --model \S+ --record (\d+) --time ([\d.]+) --out (\S+)", text)
        record, t, out = m.group(1), float(m.group(2)), m.group(3)
        assert record in DS2 and out == "pvc.png"
        rec = load_record(mitdb_dir, record)
        i = int(np.argmin(np.abs(rec.beat_samples / rec.fs - t)))
        assert rec.beat_classes[i] == "V" and abs(rec.beat_samples[i] / rec.fs - t) < 0.05


def test_the_readme_demo_replays_a_ds2_record_and_says_so():
    readme = (ROOT / "README.md").read_text()
    replays = re.findall(r"edge-ecg stream --replay \S*?(\d{3}) .*", readme)
    assert replays and all(r in DS2 for r in replays)
    line = next(ln for ln in readme.splitlines() if "edge-ecg stream --replay" in ln)
    assert "DS2" in line
    plots = re.findall(r"edge-ecg plot --record (\d+)", readme)
    assert plots and all(r in DS2 for r in plots)


def test_data_info_and_verify_take_data(tiny_db):
    a = CliRunner().invoke(main, ["data", "info", str(tiny_db), "--json", "--quiet"])
    b = CliRunner().invoke(main, ["data", "info", "--data", str(tiny_db), "--json", "--quiet"])
    assert a.exit_code == b.exit_code == 0 and json.loads(a.output) == json.loads(b.output)
    (tiny_db / "SHA256SUMS").write_text("")
    v1 = CliRunner().invoke(main, ["data", "verify", str(tiny_db)])
    v2 = CliRunner().invoke(main, ["data", "verify", "--data", str(tiny_db)])
    assert v1.exit_code == v2.exit_code and v1.output == v2.output
    res = CliRunner().invoke(main, ["data", "info", str(tiny_db), "--data", "/elsewhere"])
    assert res.exit_code == 2 and "give the folder once" in res.output


def test_evaluate_shows_progress_while_classifying(tiny_db, capsys):
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.evaluate.classify import predict_records

    clf = FakeClassifier()
    beats = build_beatset(tiny_db, ["900", "901"], clf.window, progress=False)
    probs = predict_records(clf, beats, progress=True, batch=16)
    err = capsys.readouterr().err
    assert "classifying" in err and "beat" in err
    assert probs.shape == (len(beats), 5)
    np.testing.assert_allclose(probs, clf.predict_batch(beats.X, beats.rr), atol=1e-6)  # batching changes nothing


def test_strip_legend_explains_the_mismatch_boxes():
    from edge_ecg.plotting import MISMATCH_LABEL, strip_legend_handles

    assert MISMATCH_LABEL in [h.get_label() for h in strip_legend_handles(boxed=True)]
    assert MISMATCH_LABEL not in [h.get_label() for h in strip_legend_handles(boxed=False)]


# --------------------------------------------------------------------------- --save across a rate change


def test_save_goes_on_in_a_new_record_when_the_rate_changes(tmp_path):
    import wfdb

    from edge_ecg.stream.save import WfdbStreamWriter

    w = WfdbStreamWriter(tmp_path / "run")
    a = np.arange(720, dtype=float) % 200
    b = np.arange(500, dtype=float) % 100
    w.write(Chunk(a, 360.0, 0.0, units="adc"))
    w.write(Chunk(b[:300], 250.0, 0.0, units="adc", gap=True))
    w.write(Chunk(b[300:], 250.0, 0.0, units="adc"))
    w.close()
    assert [p.name for p in w.records] == ["run", "run_2"]
    for name, fs, x in (("run", 360.0, a), ("run_2", 250.0, b)):
        rec = wfdb.rdrecord(str(tmp_path / name), physical=False)
        assert rec.fs == fs and np.array_equal(rec.d_signal[:, 0], x)  # every sample, none dropped
