"""How a stream run ends (issue 25): repeated SIGINT/SIGTERM, full disks, read-only folders, a
truncated wearer file, and earlier recordings it must not replace. Whatever happens, the
summary, --summary-json, the JSONL tail, the wearer state and a readable --save record survive,
and a problem is one line, never a traceback.

Full disks are simulated (a file object that fails with ENOSPC past a size, or a patched
write), so the tests run as root on any machine; the random-signal test runs the real CLI."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import FakeClassifier

from edge_ecg.cli import main
from edge_ecg.stream.events import JsonlWriter, read_events
from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.runner import run_stream, stop_requested, stop_signals
from edge_ecg.stream.save import WfdbStreamWriter
from edge_ecg.stream.sources import Chunk, SimulatedSource, Source

ROOT = Path(__file__).resolve().parents[1]


class FullFile:
    """A binary file that takes ``room`` bytes, then fails every write/flush with ENOSPC."""

    def __init__(self, path, room: int):
        self._fh = open(path, "wb", buffering=0)
        self.room = room
        self.closed = False

    def write(self, data):
        if len(data) > self.room:
            self._fh.write(data[:self.room])  # a partial write, as a filling disk does
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self._fh.write(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True
        self._fh.close()


# --------------------------------------------------------------------------- 5: signals


def test_stop_signals_note_a_stop_and_ignore_repeats():
    before = signal.getsignal(signal.SIGTERM)
    with stop_signals():
        assert not stop_requested()
        with stop_signals():  # nested: the outer block keeps the handlers
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
                os.kill(os.getpid(), sig)  # nothing is raised, however many
                time.sleep(0.01)
        assert stop_requested() and signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


class SignallingSource(Source):
    """The simulator, sending itself ``signals`` at chunk ``at`` (a stop plus repeats)."""

    def __init__(self, at: int, signals):
        super().__init__()
        self.inner = SimulatedSource(fs=360.0, speed=0, chunk_s=0.5, seed=1)
        self.at, self.signals = at, signals

    def chunks(self):
        for k, chunk in enumerate(self.inner.chunks()):
            if k == self.at:
                for sig in self.signals:
                    os.kill(os.getpid(), sig)
            yield chunk


def test_repeated_signals_during_a_run_lose_no_output(tmp_path):
    writer = JsonlWriter(tmp_path / "e.jsonl", header={"record": "sim"})
    saver = WfdbStreamWriter(tmp_path / "rec")
    src = SignallingSource(40, [signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGINT])
    s = run_stream(src, StreamPipeline(FakeClassifier()), writer=writer, saver=saver,
                   summary_json=tmp_path / "s.json", threaded=False)
    assert s["interrupted"] and s["stop_signals"] == 4
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["beats"] == s["beats"] > 10
    header, events = read_events(tmp_path / "e.jsonl")
    assert header["record"] == "sim" and len(events) == s["beats"]  # the tail is there
    hea = (tmp_path / "rec.hea").read_text().split()
    assert int(hea[3]) == s["samples"] == (tmp_path / "rec.dat").stat().st_size // 2


def test_a_saved_record_has_its_header_from_the_first_samples(tmp_path):
    saver = WfdbStreamWriter(tmp_path / "rec", flush_every_s=10.0)
    saver.write(Chunk(np.zeros(36), 360.0, 0.0))
    assert (tmp_path / "rec.hea").read_text().split()[:4] == ["rec", "1", "360", "36"]  # readable before any flush


@pytest.mark.slow
def test_random_signals_at_random_moments_never_lose_outputs(tmp_path):
    """`timeout -s INT` signals the whole process group; users press Ctrl-C twice. 12 runs."""
    rng = random.Random(25)
    for run in range(12):
        d = tmp_path / f"r{run}"
        args = ["stream", "--simulate", "--speed", "8", "--view", "plain", "--summary-json", d / "s.json",
                "--jsonl", d / "e.jsonl", "--save", d / "rec", "--wearer", d / "w.wearer"]
        proc = subprocess.Popen([sys.executable, "-m", "edge_ecg", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        # The handlers are installed once the command starts (after Python and the package import,
        # which a loaded CI machine can stretch past 4 s); a signal before that ends any Python
        # program. So the random moment is counted from the run's first output file.
        deadline = time.monotonic() + 90
        while not (d / "e.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.5))
        for _ in range(rng.randint(1, 4)):
            os.killpg(proc.pid, rng.choice([signal.SIGINT, signal.SIGTERM]))
            time.sleep(rng.uniform(0.0, 0.3))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (run, err[-2000:])
        assert "Traceback" not in err and "Aborted" not in out + err
        s = json.loads((d / "s.json").read_text())
        assert s["interrupted"] and "beats" in out
        header, events = read_events(d / "e.jsonl")
        assert header is not None and len(events) == s["beats"], run
        if s["samples"]:
            hea = (d / "rec.hea").read_text().split()
            assert int(hea[3]) == s["samples"] == (d / "rec.dat").stat().st_size // 2, run
            assert (d / "w.wearer").stat().st_size > 0


# --------------------------------------------------------------------------- 6: full and read-only disks


def test_jsonl_on_a_full_disk_keeps_complete_lines_and_says_so(tmp_path):
    path = tmp_path / "e.jsonl"
    w = JsonlWriter(path, flush_every=4)
    w._fh.close()
    w._fh = FullFile(path, room=700)  # the same file, on a disk with 700 bytes left
    for k in range(100):
        w.write({"time_s": k, "label": "N"})
    w.close()  # never raises
    assert w.error and "No space left on device" in w.error and "keeps the first" in w.error
    lines = path.read_bytes().decode().splitlines(keepends=True)
    assert lines and all(line.endswith("\n") for line in lines)
    assert [json.loads(line) for line in lines]  # every line complete


def test_save_on_a_full_disk_stays_readable(tmp_path, monkeypatch):
    import edge_ecg.stream.save as save_module

    monkeypatch.setattr(save_module, "open", lambda p, mode: FullFile(p, room=2 * 360 * 25), raising=False)
    saver = WfdbStreamWriter(tmp_path / "rec", flush_every_s=10.0)
    for _ in range(60):
        saver.write(Chunk(np.ones(360) * 0.5, 360.0, 0.0))
    saver.close()
    assert saver.error and saver.error.startswith("--save ")
    n = int((tmp_path / "rec.hea").read_text().split()[3])
    assert n == 360 + 2 * 3600 and (tmp_path / "rec.dat").stat().st_size == 2 * n  # .dat cut back to the header


def test_full_disk_during_a_run_is_one_line_and_the_summary_is_written(tmp_path, monkeypatch):
    """--jsonl fills its disk; --summary-json (elsewhere) is still written; exit 1 with one line."""
    import edge_ecg.stream.events as events_module

    real_open = Path.open

    def full_open(self, mode="r", *a, **k):
        if self.name == "e.jsonl":
            return FullFile(self, room=2000)
        return real_open(self, mode, *a, **k)

    monkeypatch.setattr(events_module.Path, "open", full_open)
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "60", "--view", "none",
                                    "--jsonl", str(tmp_path / "e.jsonl"), "--summary-json", str(tmp_path / "s.json")])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Error: --jsonl" in res.output and "No space left on device" in res.output
    assert "beats" in res.output  # the summary came first
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["output_errors"] and s["beats"] > 40


def test_summary_and_wearer_go_elsewhere_when_their_disk_is_full(tmp_path, monkeypatch):
    import edge_ecg.outputs as outputs

    real = outputs.write_atomic

    def failing(path, data):
        if Path(path).parent == tmp_path:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(outputs, "write_atomic", failing)
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "20", "--view", "none",
                                    "--summary-json", str(tmp_path / "s.json"), "--wearer", str(tmp_path / "w")])
    assert res.exit_code == 1, res.output
    err = res.output.strip().splitlines()[-1]
    assert err.startswith("Error: --summary-json") and "saved to" in err and "--wearer" in err
    for part in err.split(" | "):
        saved = Path(part.split("saved to ")[1].split(" instead")[0])
        assert saved.stat().st_size > 0
        saved.unlink()


def test_wearer_in_a_read_only_folder_is_refused_before_the_run(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == ro else real(p, mode, *a, **k))
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "5", "--view", "none",
                                    "--wearer", str(ro / "anna.wearer")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert res.output.strip().splitlines() == [f"Error: --wearer {ro / 'anna.wearer'}: the folder {ro} is not "
                                               f"writable"]


def test_a_truncated_wearer_file_is_one_line(tmp_path):
    w = tmp_path / "w.wearer"
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "30", "--view", "none",
                                    "--wearer", str(w)])
    assert res.exit_code == 0, res.output
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "5", "--view", "none",
                                    "--wearer", str(w)])
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {w}: not an edge-ecg wearer state, or a truncated")


def test_plot_out_on_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch):
    import edge_ecg.outputs as outputs
    from edge_ecg.errors import ConfigError
    from edge_ecg.plotting import plot_strip

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "write_atomic", full)
    with pytest.raises(ConfigError, match=r"--out .*strip.png: cannot write the image \(No space left on device\)"):
        plot_strip(tmp_path / "strip.png", np.zeros(720), 360.0, 0.0, [], [], np.zeros(0), [])
    assert list(tmp_path.iterdir()) == []


def test_c_array_on_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    import edge_ecg.outputs as outputs
    from edge_ecg.errors import EdgeEcgError
    from edge_ecg.export.c_array import write_c_array

    real = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:4096])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    with pytest.raises(EdgeEcgError, match="No space left on device"):
        write_c_array(bytes(range(256)) * 64, tmp_path / "model.c")
    assert list(tmp_path.iterdir()) == []  # no truncated 4,096-byte .c (nor a temporary file)


# --------------------------------------------------------------------------- 7: earlier recordings


def test_jsonl_and_save_refuse_to_replace_a_recording_without_force(tmp_path):
    (tmp_path / "e.jsonl").write_text("{}\n")
    (tmp_path / "rec.dat").write_bytes(b"\0" * 100)
    base = ["stream", "--simulate", "--speed", "0", "--duration", "3", "--view", "none"]
    for extra, option in ((["--jsonl", str(tmp_path / "e.jsonl")], "--jsonl"),
                          (["--save", str(tmp_path / "rec")], "--save")):
        res = CliRunner().invoke(main, base + extra)
        assert res.exit_code != 0
        assert res.output.strip().splitlines()[-1].startswith(f"Error: {option} ")
        assert "already exists" in res.output and "--force" in res.output
        assert CliRunner().invoke(main, base + extra + ["--force"]).exit_code == 0
    assert (tmp_path / "rec.dat").stat().st_size == 2 * 3 * 360
    header, _ = read_events(tmp_path / "e.jsonl")
    assert header["record"] is None and header["source"] == "simulate"
