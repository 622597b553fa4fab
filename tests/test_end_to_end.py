"""End to end: an emulated board on a pseudo-terminal, the real `edge-ecg stream` reading it.

The board replays a stretch of a DS2 record through the compiled C firmware encoder at
MIT-BIH's own ADC gain and offset; the stream must label the same beats, at the same
sample positions, as `edge-ecg stream --replay` of that stretch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "edge_ecg_int8.tflite"
RECORD, SECONDS = "233", 30.0  # DS2, with frequent V beats


def stream_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_ecg", "stream", "--model", str(MODEL), "--view", "plain", *args]


def events(path: Path) -> list[tuple[int, str]]:
    return [(e["sample"], e["label"]) for e in map(json.loads, path.read_text().splitlines()) if e.get("label")]


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc to see the reader attach")
def test_emulated_board_equals_replay(mitdb_dir, tmp_path):
    if not MODEL.is_file():
        pytest.skip("no shipped int8 model in models/")
    from firmware_harness.ccore import missing_toolchain
    from firmware_harness.emulator import Emulator, EmulatorSettings, open_pty, serving
    from firmware_harness.sources import record_source

    if missing_toolchain():
        pytest.skip(f"no C toolchain for the firmware encoder: {missing_toolchain()}")

    replay = tmp_path / "replay.jsonl"
    res = subprocess.run(stream_cmd("--replay", str(mitdb_dir / RECORD), "--speed", "0", "--duration", str(SECONDS),
                                    "--jsonl", str(replay)), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr

    master, slave, path = open_pty()
    device = tmp_path / "device.jsonl"
    proc = subprocess.Popen(stream_cmd("--device", path, "--format", "binary", "--duration", str(SECONDS),
                                       "--jsonl", str(device)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # paced at 4x real time: a board at full speed (0) outruns a CPU-starved classifier, whose
    # runner then drops whole chunks (counted) and ends --duration with fewer beats
    board = Emulator(record_source(mitdb_dir / RECORD), EmulatorSettings(fs=360.0, gain=200.0, offset=1024,
                                                                         speed=4, duration_s=SECONDS + 3,
                                                                         encoder="c"))
    try:
        with serving(board, master, proc.pid, path):  # the board starts once the stream listens
            out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert board.encoder_name.startswith("c")

    got, want = events(device), events(replay)
    assert len(want) >= 30, "the stretch should hold plenty of beats"
    assert [label for _, label in got] == [label for _, label in want]
    assert all(abs(a - b) <= 1 for (a, _), (b, _) in zip(got, want))
    assert {label for _, label in want} >= {"N", "V"}
