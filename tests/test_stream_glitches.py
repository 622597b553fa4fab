"""Serial glitches end to end: an ASCII board on a pty, real-time pace, a DS2 record with bigeminy.

Two `edge-ecg stream --device` processes read two emulated boards side by side: one sends
mitdb 200 (DS2, bigeminy from 0.2 s) clean, the other the same lines with glitches at
start-up (while the detector learns its thresholds), right after a reconnection (when it
learns again) and every few seconds: a ``5`` merged with the next line, values off a 12-bit
ADC's range, wild samples, two wild samples in a row. Both boards are unplugged and plugged
back at the same point. The glitchy stream must find at least 99 % of the clean stream's
beats with the same labels, and count every glitch.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from test_stream_cli import CliRun, PtyBoard, feed, read_jsonl

from edge_ecg.records.load import load_record
from edge_ecg.signal.resample import ecg_resample

FS = 250.0
PART1_S, PART2_S = 28.0, 34.0  # before and after the reconnection
STEP = 5  # lines per write: 5 every 20 ms is real time at 250 Hz


def board_lines(mitdb_dir) -> list[bytes]:
    """mitdb 200 (MLII) as a 12-bit board prints it: 250 Hz, 200 counts/mV, offset 1024."""
    rec = load_record(mitdb_dir, "200", lead="MLII", annotations=False)
    mv = ecg_resample(np.asarray(rec.signal[: int((PART1_S + PART2_S + 1) * rec.fs)], np.float64), rec.fs, FS)
    adc = np.clip(np.round(mv * 200.0 + 1024), 0, 4095).astype(int)
    return [f"{v}\r\n".encode() for v in adc]


def add_glitches(lines: list[bytes]) -> tuple[list[bytes], int]:
    """A copy of ``lines`` with glitches; returns it and how many samples were damaged."""
    out = list(lines)
    t = [0.3, 1.1, 1.7]  # start-up: the detector's learning phase
    t += [PART1_S + x for x in (0.2, 0.9, 1.6)]  # the learning phase after the reconnection
    t += list(np.arange(4.0, PART1_S - 1, 4.0)) + list(np.arange(PART1_S + 4.5, PART1_S + PART2_S - 1, 4.0))
    damaged = 0
    for i, when in enumerate(sorted(t)):
        k = int(round(when * FS))
        v = int(lines[k])
        kind = i % 4
        if kind == 0:
            out[k] = b"5" + lines[k]  # a fragment "5" merged with the next line
        elif kind == 1:
            out[k] = b"70000\r\n" if i % 8 == 1 else b"-3000\r\n"  # off the ADC's range
        elif kind == 2:
            out[k] = f"{4095 if v < 2048 else 0}\r\n".encode()  # one wild sample inside the range
        else:
            out[k] = out[k + 1] = b"4095\r\n"  # two in a row
            damaged += 1
        damaged += 1
    return out, damaged


def pieces(lines: list[bytes]) -> list[bytes]:
    lines = [b"37\r\n"] + lines  # a cut line first: the reader drops the first line after (re)opening
    return [b"".join(lines[i:i + STEP]) for i in range(0, len(lines), STEP)]


@pytest.mark.slow
@pytest.mark.realdata
def test_glitches_through_a_pty_cost_no_beats(mitdb_dir, tmp_path):
    lines = board_lines(mitdb_dir)
    n1, n2 = int(PART1_S * FS), int(PART2_S * FS)
    glitchy, damaged = add_glitches(lines)
    duration = (n1 + n2 - 2 * STEP) / FS
    runs, boards, streams = {}, {}, {"clean": lines, "glitchy": glitchy}
    stop = threading.Event()
    try:
        for name in streams:
            (tmp_path / name).mkdir()
            boards[name] = PtyBoard(tmp_path / name)
            runs[name] = CliRun("stream", "--device", boards[name].link, "--fs", FS, "--duration", duration,
                                "--jsonl", tmp_path / f"{name}.jsonl", "--summary-json", tmp_path / f"{name}.json",
                                "--view", "plain")
        for run in runs.values():
            run.wait_open()
        for part in (slice(0, n1), slice(n1, n1 + n2)):
            feeders = [feed(boards[k], pieces(streams[k][part]), STEP / FS, stop) for k in streams]
            for f in feeders:
                f.join(PART2_S + 30)
            if part.start == 0:
                time.sleep(0.3)
                for board in boards.values():
                    board.unplug()
                time.sleep(1.0)
                for board in boards.values():
                    board.plug()
                for run in runs.values():
                    assert run.reconnected.wait(30), "".join(run.err_lines)
        done = {k: run.finish(timeout=60) for k, run in runs.items()}
    finally:
        stop.set()
        for run in runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
        for board in boards.values():
            board.close()
    for k, run in done.items():
        assert run.returncode == 0, run.stderr
    s = {k: json.loads((tmp_path / f"{k}.json").read_text()) for k in streams}
    assert s["clean"]["impulses"] == 0
    assert s["glitchy"]["impulses"] == damaged  # every glitch counted
    assert s["clean"]["gaps"] == s["glitchy"]["gaps"] == 1
    assert "glitches replaced" in done["glitchy"].stdout and f"glitches {damaged}" in done["glitchy"].stdout
    clean, bad = read_jsonl(tmp_path / "clean.jsonl"), read_jsonl(tmp_path / "glitchy.jsonl")
    assert len(clean) > 80 and {"N", "V"} <= {e["label"] for e in clean}
    t_bad = np.array([e["time_s"] for e in bad])
    kept = 0
    for e in clean:
        j = int(np.argmin(np.abs(t_bad - e["time_s"])))
        kept += abs(t_bad[j] - e["time_s"]) < 0.05 and bad[j]["label"] == e["label"]
    assert kept >= 0.99 * len(clean), (kept, len(clean))
    assert len(bad) <= len(clean) + 1  # no phantom beats either
