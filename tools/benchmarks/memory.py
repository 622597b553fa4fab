"""Memory: what the model costs on a microcontroller and what a stream costs on a board.

- the int8 flatbuffer (bytes on flash) and its weights;
- the smallest TFLite-Micro tensor arena the model runs in (bytes of RAM), found by search;
- peak resident memory (``VmHWM``) of whole ``edge-ecg stream`` processes: reading an
  emulated board over a pseudo-terminal (what a Raspberry Pi does), the built-in simulator,
  and a WFDB replay (read with numpy alone by ``edge_ecg.records.wfdb_io``);
- for scale, the floor: Python with numpy and the LiteRT interpreter imported, nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NAME = "memory"
TITLE = "Memory"

TARGET_MB = 80.0


def _floor_rss_mb() -> float:
    code = ("import numpy, ai_edge_litert.interpreter\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(int(out.stdout.strip()) / 1024.0, 1)


def _device_rss(model: Path, mitdb: Path, seconds: float) -> dict:
    """Peak RSS of `stream --device` reading an emulated board (C encoder) through a pty."""
    from benchmarks.stream import _RSS_WRAPPER

    from firmware_harness.emulator import Emulator, EmulatorSettings, open_pty, serving
    from firmware_harness.sources import record_source

    master, slave, path = open_pty()
    # the board plays the whole record (30 min) and is stopped when the stream exits: a stream that
    # lost bytes (a busy machine, the port's flush on open) still gets its `seconds`, never waits forever
    board = Emulator(record_source(mitdb / "100"),
                     EmulatorSettings(fs=360.0, speed=0, duration_s=None, gain=200.0, offset=1024))
    cmd = [sys.executable, "-c", _RSS_WRAPPER, "stream", "--device", path, "--format", "binary",
           "--duration", f"{seconds:g}", "--model", str(model), "--view", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with serving(board, master, proc.pid, path):  # bytes sent before the reader opens the port are lost
            out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)
    line = [ln for ln in out.splitlines() if ln.startswith("VMHWM_KB=")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"stream --device run failed: {err[-500:]}")
    kb, tf = line[0].split()
    mb = int(kb.split("=")[1]) / 1024.0
    return {"args": f"--device <emulated board, 360 Hz binary> --duration {seconds:g}", "peak_rss_mb": round(mb, 1),
            "tensorflow_imported": tf.split("=")[1] == "True", "target_mb": TARGET_MB, "met": mb <= TARGET_MB}


def run(ctx) -> dict:
    from benchmarks import shipped_model
    from benchmarks.stream import peak_rss

    from edge_ecg.export.micro import find_arena_size
    from edge_ecg.export.report import describe_model

    model = shipped_model(ctx)
    data = model.read_bytes()
    desc = describe_model(data)
    seconds = 60.0 if ctx.quick else 600.0
    runs = [
        _device_rss(model, ctx.mitdb, seconds),
        peak_rss(model, ["--simulate", "--speed", "0", "--duration", f"{seconds:g}"]),
        peak_rss(model, ["--replay", str(ctx.mitdb / "100"), "--speed", "0", "--duration", f"{seconds:g}"]),
    ]
    return {
        "model": model.name, "model_bytes": len(data), "weights_bytes": desc["weights_bytes"],
        "arena_bytes": find_arena_size(data), "floor_rss_mb": _floor_rss_mb(), "stream_runs": runs,
        "target_mb": TARGET_MB,
    }


#: Issue 28's budgets (bytes): the flatbuffer and the TFLite-Micro arena.
FLATBUFFER_BUDGET = 32 * 1024
ARENA_BUDGET = 24 * 1024


def _budget(n: int, budget: int) -> str:
    return f"<= {budget // 1024} KB (issue 28): {'met' if n <= budget else '**not met**'}"


def render(result: dict) -> str:
    kb = 1024
    lines = [
        "| what | measured | budget |",
        "|---|---:|---|",
        f"| int8 flatbuffer `{result['model']}` | {result['model_bytes']:,} B ({result['model_bytes'] / kb:.1f} KB) | "
        f"{_budget(result['model_bytes'], FLATBUFFER_BUDGET)} |",
        f"| of which weights | {result['weights_bytes']:,} B | |",
        f"| TFLite-Micro arena (smallest that runs) | {result['arena_bytes']:,} B ({result['arena_bytes'] / kb:.1f} KB) | "
        f"{_budget(result['arena_bytes'], ARENA_BUDGET)} |",
    ]
    for r in result["stream_runs"]:
        ok = "met" if r["peak_rss_mb"] <= result["target_mb"] else "**not met**"
        lines.append(f"| peak RSS, `edge-ecg stream {r['args']}` | {r['peak_rss_mb']:.1f} MB "
                     f"(TensorFlow imported: {r['tensorflow_imported']}) | <= {result['target_mb']:.0f} MB: {ok} |")
    lines.append(f"| floor: Python + numpy + LiteRT interpreter imported | {result['floor_rss_mb']:.1f} MB | |")
    lines += ["", "The arena is measured with the `tflite-micro` package's interpreter on this 64-bit host; a 32-bit "
              "Cortex-M build needs somewhat less (smaller pointers in the tensor structs). A replay reads the record "
              "with numpy alone (`edge_ecg.records.wfdb_io`); neither wfdb nor pandas is imported."]
    return "\n".join(lines)


def headline(result: dict) -> list[tuple[str, str, str]]:
    """README rows: flash, microcontroller RAM, and a board's stream process."""
    device = result["stream_runs"][0]
    return [
        ("int8 model (flatbuffer); TFLite-Micro arena",
         f"{result['model_bytes'] / 1024:.1f} KB; {result['arena_bytes'] / 1024:.1f} KB",
         f"<= {FLATBUFFER_BUDGET // 1024} KB; <= {ARENA_BUDGET // 1024} KB"),
        ("peak memory of `stream --device` (emulated board); of `--replay`",
         f"{device['peak_rss_mb']:.0f} MB; {result['stream_runs'][-1]['peak_rss_mb']:.0f} MB", "<= 80 MB"),
    ]
