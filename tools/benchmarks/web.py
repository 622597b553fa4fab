"""Live page: what ``stream --web`` costs the device, with no page open and with two.

Three runs of the same paced replay (MIT-BIH 208, the first ``seconds`` s at ``speed`` times
real time, the shipped model, ``--view none``), each a whole ``edge-ecg stream`` process:
without ``--web``; with ``--web`` and no page open; with ``--web`` and two pages reading
``/events`` for the whole run (two Server-Sent-Event readers on loopback in this process,
reading everything as a browser does; bounded: two, and never longer than the run). From
each: peak resident memory (``VmHWM``), CPU seconds per beat (the whole process, server
threads included) and beat-to-label latency percentiles (``--summary-json``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks import shipped_model
from benchmarks.stream import _RSS_WRAPPER

NAME = "web"
TITLE = "Live page (`stream --web`)"
IN_ALL = False  # `python tools/bench.py web`: paced runs take wall time, not CPU
SECONDS, SPEED = 240.0, 4.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reader(url: str, stop: threading.Event, got: dict) -> None:
    """One page: reads /events until the stream ends (or ``stop``)."""
    for _ in range(100):  # the server starts after the model loads
        try:
            resp = urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            time.sleep(0.1)
    else:
        return
    with resp:
        while not stop.is_set():
            try:
                line = resp.readline()
            except OSError:
                return
            if not line:
                return
            got["bytes"] += len(line)
            got["messages"] += line.startswith(b"event:")


def measure(model: Path, record: Path, clients: int | None, seconds: float, speed: float) -> dict:
    """One run: ``clients`` None (no --web), 0 or more pages open."""
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        args = ["stream", "--replay", str(record), "--speed", f"{speed:g}", "--duration", f"{seconds:g}",
                "--model", str(model), "--view", "none", "--summary-json", str(summary_path)]
        port = _free_port()
        if clients is not None:
            args += ["--web", str(port)]
        proc = subprocess.Popen([sys.executable, "-c", _RSS_WRAPPER, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stop, readers, got = threading.Event(), [], []
        for _ in range(clients or 0):
            got.append({"bytes": 0, "messages": 0})
            t = threading.Thread(target=_reader, args=(f"http://127.0.0.1:{port}/events", stop, got[-1]), daemon=True)
            t.start()
            readers.append(t)
        try:
            out, err = proc.communicate(timeout=seconds / speed + 300)
        finally:
            proc.kill()
            stop.set()
            for t in readers:
                t.join(5)
        line = [ln for ln in out.splitlines() if ln.startswith("VMHWM_KB=")]
        if not line or not summary_path.is_file():
            raise RuntimeError(f"stream run failed: {err[-500:]}")
        s = json.loads(summary_path.read_text())
    bl = s["beat_latency_ms"]
    return {"web": clients is not None, "clients": clients or 0, "args": " ".join(args[1:]).replace(str(model), "<model>"),
            "peak_rss_mb": round(int(line[0].split()[0].split("=")[1]) / 1024.0, 1), "beats": s["beats"],
            "cpu_s": s["cpu_s"], "cpu_ms_per_beat": round(1000 * s["cpu_s"] / max(1, s["beats"]), 3),
            "latency_ms": {k: bl.get(k) for k in ("p50", "p95", "p99", "max")},
            "client_bytes": [g["bytes"] for g in got], "client_messages": [g["messages"] for g in got]}


def run(ctx) -> dict:
    seconds = 60.0 if ctx.quick else SECONDS
    model = shipped_model(ctx)
    record = ctx.mitdb / "208"
    runs = [measure(model, record, clients, seconds, SPEED) for clients in (None, 0, 2)]
    return {"record": "mitdb/208", "seconds": seconds, "speed": SPEED, "runs": runs}


def render(result: dict) -> str:
    rows = ["| run | peak RSS MB | CPU ms per beat | beat-to-label p50 / p99 ms | bytes sent per page |",
            "|---|---:|---:|---|---:|"]
    for r in result["runs"]:
        name = "no --web" if not r["web"] else f"--web, {r['clients']} page(s) open"
        sent = ", ".join(f"{b / 1e6:.1f} MB" for b in r["client_bytes"]) or "-"
        lat = r["latency_ms"]
        rows.append(f"| {name} | {r['peak_rss_mb']} | {r['cpu_ms_per_beat']} | {lat['p50']:.0f} / {lat['p99']:.0f} | "
                    f"{sent} |")
    return (f"MIT-BIH {result['record']}, the first {result['seconds']:.0f} s replayed at {result['speed']:g}x real "
            f"time with the shipped model, one `edge-ecg stream` process per row (CPU: the whole process, the "
            f"server's threads included; two pages: two Server-Sent-Event readers on loopback).\n\n"
            + "\n".join(rows) + "\n")
