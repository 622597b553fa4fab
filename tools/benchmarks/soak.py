"""Soak: hours of a faulty serial board through the live stream, faster than real time.

A simulated 360 Hz board (:class:`~edge_ecg.stream.simulate.EcgSimulator`, N, S and V beats,
10-bit ADC counts printed one per line) is read by the real
:class:`~edge_ecg.stream.sources.SerialAsciiSource` and :func:`~edge_ecg.stream.runner.run_stream`
with the shipped int8 model, the wearer's adaptation and a ``--jsonl`` writer, for
``HOURS`` of signal. A fake port hands out one second of lines per read, as fast as the
stream takes them, with faults mixed in on a schedule of board time:

- glitches: a ``5`` merged into a line every ``GLITCH_EVERY_S`` (``512`` read as ``5512``);
- bad lines: one line in ``BAD_LINE_EVERY`` replaced by garbage (it keeps its time slot);
- lead-off: ``!`` lines for ``LEAD_OFF_FOR_S`` every ``LEAD_OFF_EVERY_S``;
- unplug/replug: every ``UNPLUG_EVERY_S`` the port fails for ``UNPLUG_FOR_S`` of board time
  (those lines are lost, the source reconnects and the stream restarts a segment).

It reports resident memory over the run (slope after the first ``WARMUP_S``, MB per hour),
beat-to-label latency per hour, and accounts for every simulated beat: matched by a detected
beat (within 150 ms), inside a fault (lead-off or unplugged, plus the detector's restart), or
missed; and it checks that the summary's counters add up (beats = classified + unclassified,
JSONL lines = beats, glitches counted = glitches sent, lead-off and bad lines counted =
sent). ``python tools/bench.py soak`` (not in ``all``: it runs for several minutes).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_ecg.stream.latency import STAGES

NAME = "soak"
TITLE = "Soak: hours of a faulty board"
IN_ALL = False

FS = 360.0
HOURS = 6.5
GLITCH_EVERY_S = 7.0
BAD_LINE_EVERY = 997
LEAD_OFF_EVERY_S = 600.0
LEAD_OFF_FOR_S = 5.0
UNPLUG_EVERY_S = 1800.0
UNPLUG_FOR_S = 20.0
WARMUP_S = 600.0
#: A simulated beat this close to a fault (s) may be lost to it (the filter, the detector's restart).
FAULT_MARGIN_S = 3.0
MATCH_S = 0.15


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class SoakBoard:
    """The fake port: one second of board time per read, faults applied, truth kept.

    ``truth_s``/``truth_cls``: every simulated beat (board time, class) in preallocated arrays
    (no growth during the run); ``skipped`` the lines lost while unplugged, by board time.
    """

    def __init__(self, seconds: float, seed: int = 0):
        from edge_ecg.stream.simulate import EcgSimulator

        self.sim = EcgSimulator(fs=FS, seed=seed, s_prob=0.05, v_prob=0.05)
        self.total = int(seconds * FS)
        self.k = 0  # board samples made
        cap = int(seconds * 3.5) + 100  # at most 210 bpm
        self.truth_s = np.zeros(cap)
        self.truth_cls = np.zeros(cap, dtype="<U1")
        self.n_truth = 0
        self.sent = {"glitches": 0, "bad_lines": 0, "lead_off_lines": 0, "lost_lines": 0, "unplugs": 0}
        self.faults: list[tuple[float, float]] = []  # (board s, board s) lead-off and unplugged stretches
        self.shift: list[tuple[int, int]] = []  # (board sample where lines resume, lines lost before it)
        self.unplugged = False
        self.failed_opens = 0
        self.on_end = lambda: None

    # the serial.Serial surface the source uses
    in_waiting = 1

    def close(self) -> None:
        pass

    def read(self, n: int) -> bytes:
        if self.k >= self.total:
            self.on_end()
            return b""
        t = self.k / FS
        if t > 0 and int(t // UNPLUG_EVERY_S) != int((self.k - FS) / FS // UNPLUG_EVERY_S):
            self._lose(UNPLUG_FOR_S)
            self.unplugged = True
            raise OSError(5, "Input/output error")
        return self._second()

    def open(self) -> "SoakBoard":
        """What the source's _open_port returns: the first two tries after an unplug fail."""
        if self.unplugged:
            if self.failed_opens < 2:
                self.failed_opens += 1
                raise OSError(2, "No such file or directory")
            self.unplugged, self.failed_opens = False, 0
        return self

    def _lose(self, seconds: float) -> None:
        """The board goes on sampling while unplugged: those samples never arrive."""
        n = min(int(seconds * FS), self.total - self.k)
        t0 = self.k / FS
        self._make(n)
        self.sent["lost_lines"] += n
        self.sent["unplugs"] += 1
        self.faults.append((t0, self.k / FS))
        self.shift.append((self.k, n))

    def _make(self, n: int) -> np.ndarray:
        x, beats = self.sim.generate(n)
        for b in beats:
            if self.n_truth < self.truth_s.size:
                self.truth_s[self.n_truth] = b.sample / FS  # the simulator counts from its start
                self.truth_cls[self.n_truth] = b.label
                self.n_truth += 1
        self.k += n
        return np.clip(np.round(512 + 200 * x), 0, 1023).astype(np.int64)

    def _second(self) -> bytes:
        n = min(int(FS), self.total - self.k)
        start = self.k
        adc = self._make(n)
        lines = [str(v) for v in adc.tolist()]
        idx = start + np.arange(n)
        t = idx / FS
        off = (t % LEAD_OFF_EVERY_S) >= LEAD_OFF_EVERY_S - LEAD_OFF_FOR_S
        for i in np.flatnonzero(off).tolist():
            lines[i] = "!"
        if off.any():
            a, b = t[off][0], t[off][-1] + 1 / FS
            if self.faults and abs(self.faults[-1][1] - a) < 2 / FS:
                self.faults[-1] = (self.faults[-1][0], b)
            else:
                self.faults.append((a, b))
        self.sent["lead_off_lines"] += int(off.sum())
        for i in np.flatnonzero((idx % BAD_LINE_EVERY == BAD_LINE_EVERY // 2) & ~off).tolist():
            lines[i] = "#x?"
            self.sent["bad_lines"] += 1
        period = int(GLITCH_EVERY_S * FS)
        for i in np.flatnonzero((idx % period == period // 3) & ~off).tolist():
            if lines[i][0].isdigit():
                lines[i] = "5" + lines[i]
                self.sent["glitches"] += 1
        return ("\r\n".join(lines) + "\r\n").encode()

    def to_stream_s(self, board_s: np.ndarray) -> np.ndarray:
        """Board time -> the stream's time (lines lost while unplugged are not in the stream)."""
        out = np.asarray(board_s, dtype=np.float64).copy()
        for resume, lost in self.shift:
            out[board_s * FS >= resume] -= lost / FS
        return out


def reservoir_mb(pipeline) -> float:
    """MB of the latency reservoirs filled so far: each :class:`~edge_ecg.stream.latency.LatencyStats`
    preallocates ``capacity`` float64 values (0.8 MB), and the OS gives them pages as they fill,
    so they grow RSS by 8 bytes per chunk per stage and per beat up to that fixed cap."""
    stats = list(pipeline.timer.stats.values()) + [pipeline.beat_latency]
    return sum(min(st.count, st.capacity) for st in stats) * 8 / 2 ** 20


class _Probe:
    """A stand-in live view: every ``every_s`` of stream time, resident memory and the stream time."""

    def __init__(self, every_s: float = 60.0):
        self.every_s, self.next_s = every_s, 0.0
        self.points = np.full((2000, 4), np.nan)  # (stream s, wall s, RSS MB, reservoirs MB), preallocated
        self.n = 0
        self.t0 = time.perf_counter()

    def start(self):
        return self

    def update(self, pipeline, source_stats, dropped, force=False):
        t = pipeline.stream_pos / pipeline.fs if pipeline.fs else 0.0
        if (t >= self.next_s or force) and self.n < len(self.points):
            self.points[self.n] = (t, time.perf_counter() - self.t0, _rss_mb(), reservoir_mb(pipeline))
            self.n += 1
            self.next_s = t + self.every_s

    def stop(self):
        pass


def soak(seconds: float, model: Path | None = None, seed: int = 0, workdir: Path | None = None) -> dict:
    """Run the soak for ``seconds`` of board time; returns the measurements (see the module docstring)."""
    from edge_ecg.runtime.adapt import make_adapter
    from edge_ecg.stream.events import JsonlWriter, read_jsonl
    from edge_ecg.stream.classifier_files import load_classifier
    from edge_ecg.stream.pipeline import StreamPipeline
    from edge_ecg.stream.runner import run_stream
    from edge_ecg.stream.sources import SerialAsciiSource

    workdir = Path(workdir or tempfile.mkdtemp(prefix="edge-ecg-soak-"))
    board = SoakBoard(seconds, seed=seed)
    source = SerialAsciiSource("/dev/soak", fs=FS, check_rate_s=None, backoff_s=0.05, max_backoff_s=0.1)
    source._open_port = board.open
    clf = load_classifier(model, threads=1)
    pipeline = StreamPipeline(clf, adapter=make_adapter(clf))
    jsonl = workdir / "soak.jsonl"
    writer = JsonlWriter(jsonl, header={"record": "soak"})
    probe = _Probe()
    rss0 = _rss_mb()

    board.on_end = source.stop  # the board has sent everything: the source ends, the stream finishes
    summary = run_stream(source, pipeline, writer=writer, view=probe, threaded=False,
                         summary_json=workdir / "summary.json")
    events = read_jsonl(jsonl)[1:]
    return _account(board, summary, events, probe, rss0)


def _account(board: SoakBoard, s: dict, events: list[dict], probe: _Probe, rss0: float) -> dict:
    """The measurements: memory, latency, beats accounted for, counters that add up."""
    pts = probe.points[:probe.n]
    late = pts[pts[:, 0] >= WARMUP_S]
    slope = float(np.polyfit(late[:, 0] / 3600.0, late[:, 2], 1)[0]) if len(late) > 2 else float("nan")
    rest = float(np.polyfit(late[:, 0] / 3600.0, late[:, 2] - late[:, 3], 1)[0]) if len(late) > 2 else float("nan")
    half = pts[pts[:, 0] >= pts[-1, 0] / 2]
    rest_half = float(np.polyfit(half[:, 0] / 3600.0, half[:, 2] - half[:, 3], 1)[0]) if len(half) > 2 else float("nan")
    t_ev = np.array([e["time_s"] for e in events])
    lat = np.array([e["latency_ms"] if e["latency_ms"] is not None else np.nan for e in events])
    hours = []
    for h in range(int(np.ceil(t_ev.max() / 3600.0)) if t_ev.size else 0):
        sel = (t_ev >= h * 3600) & (t_ev < (h + 1) * 3600) & np.isfinite(lat)
        if sel.any():
            hours.append({"hour": h + 1, "beats": int(sel.sum()), "latency_p50_ms": round(float(np.median(lat[sel])), 3),
                          "latency_p99_ms": round(float(np.percentile(lat[sel], 99)), 3)})
    # every simulated beat: matched, in a fault, or missed
    truth_board = board.truth_s[:board.n_truth]
    in_fault = np.zeros(truth_board.size, dtype=bool)
    for a, b in board.faults:
        in_fault |= (truth_board >= a - FAULT_MARGIN_S) & (truth_board <= b + FAULT_MARGIN_S)
    truth_stream = board.to_stream_s(truth_board)
    from edge_ecg.evaluate.match import match_beats

    ref_idx, test_idx = match_beats(np.round(truth_stream * FS), np.round(t_ev * FS), FS, MATCH_S)  # EC57 pairing
    matched = np.zeros(truth_board.size, dtype=bool)
    matched[ref_idx] = True
    missed = ~matched & ~in_fault
    extra = int(t_ev.size - test_idx.size)
    st = s["source_stats"]
    checks = {
        "beats == classified + unclassified": s["beats"] == s["classified"] + s["skipped_quality"],
        "JSONL events == beats": len(events) == s["beats"],
        "class counts sum to classified": sum(s["counts"].values()) == s["classified"],
        "every glitch sent replaced": s["impulses"] >= board.sent["glitches"],
        "lead-off lines counted == sent": st["lead_off_lines"] == board.sent["lead_off_lines"],
        "bad lines counted == sent": st["bad_lines"] == board.sent["bad_lines"],
        "reconnects == unplugs": st["reconnects"] == board.sent["unplugs"] == st["disconnects"],
        "every simulated beat matched, in a fault or missed":
            int(matched.sum() + (~matched & in_fault).sum() + missed.sum()) == truth_board.size,
        "lines in the stream + lost + partial == lines sent":
            s["samples"] + board.sent["lost_lines"] + st["partial_lines"] == board.total,
    }
    return {
        "board": {"fs": FS, "hours": round(board.total / FS / 3600.0, 3), "sent": board.sent,
                  "faults": {"glitch_every_s": GLITCH_EVERY_S, "bad_line_every": BAD_LINE_EVERY,
                             "lead_off_every_s": LEAD_OFF_EVERY_S, "lead_off_for_s": LEAD_OFF_FOR_S,
                             "unplug_every_s": UNPLUG_EVERY_S, "unplug_for_s": UNPLUG_FOR_S}},
        "wall_s": s["wall_s"], "cpu_s": s["cpu_s"], "x_realtime": round(s["stream_s"] / s["wall_s"], 1),
        "rss_mb": {"start": round(rss0, 1), "after_warmup": round(float(late[0, 2]), 1) if len(late) else None,
                   "end": round(float(pts[-1, 2]), 1), "max": round(float(np.nanmax(pts[:, 2])), 1),
                   "slope_mb_per_hour_after_warmup": round(slope, 3),
                   "latency_reservoirs_mb_at_end": round(float(pts[-1, 3]), 2),
                   "latency_reservoirs_cap_mb": round((len(STAGES) + 1) * 100_000 * 8 / 2 ** 20, 1),
                   "slope_mb_per_hour_without_reservoirs": round(rest, 3),
                   "slope_mb_per_hour_without_reservoirs_second_half": round(rest_half, 3),
                   "points": [[round(float(a), 1), round(float(c), 2), round(float(d), 3)] for a, _, c, d in pts]},
        "latency_by_hour": hours,
        "beats": {"simulated": int(truth_board.size), "matched": int(matched.sum()),
                  "in_a_fault_not_matched": int((~matched & in_fault).sum()), "missed_outside_faults": int(missed.sum()),
                  "extra_detections": extra, "detected": s["beats"], "classified": s["classified"],
                  "unclassified": s["skipped_quality"],
                  "sensitivity_outside_faults": round(float(matched[~in_fault].mean()), 5)},
        "summary": {k: s[k] for k in ("samples", "gaps", "bad_samples", "impulses", "dropped_at_gap", "lost_samples",
                                      "beats", "classified", "skipped_quality", "counts")}
        | {"source_stats": {k: v for k, v in st.items() if k != "status"}, "received_hz": s.get("received_hz")},
        "checks": checks,
        "all_checks_pass": all(checks.values()),
    }


def run(ctx) -> dict:
    from benchmarks import shipped_model

    seconds = 1200.0 if ctx.quick else HOURS * 3600.0
    return soak(seconds, model=shipped_model(ctx))


def render(result: dict) -> str:
    r, b = result["rss_mb"], result["beats"]
    lat = result["latency_by_hour"]
    lines = [
        f"{result['board']['hours']:g} hours of a simulated 360 Hz ASCII board with faults "
        f"({', '.join(f'{k} {v}' for k, v in result['board']['sent'].items())}), read by the real serial source "
        f"and stream at {result['x_realtime']:g}x real time on one core.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| resident memory after warm-up / end / max | {r['after_warmup']} / {r['end']} / {r['max']} MB |",
        f"| memory slope after {WARMUP_S / 60:.0f} min | {r['slope_mb_per_hour_after_warmup']:+.3f} MB/hour, of which the "
        f"latency reservoirs filling towards their fixed {r['latency_reservoirs_cap_mb']} MB cap leave "
        f"{r['slope_mb_per_hour_without_reservoirs']:+.3f} MB/hour ({r['slope_mb_per_hour_without_reservoirs_second_half']:+.3f} "
        f"in the second half) |",
        f"| glitches sent / replaced | {result['board']['sent']['glitches']} / {result['summary']['impulses']} |",
        f"| beat-to-label latency p50, first hour -> last | {lat[0]['latency_p50_ms']} -> {lat[-1]['latency_p50_ms']} ms |"
        if lat else "| latency | - |",
        f"| latency p99, first hour -> last | {lat[0]['latency_p99_ms']} -> {lat[-1]['latency_p99_ms']} ms |"
        if lat else "| latency p99 | - |",
        f"| simulated beats: matched / in a fault / missed elsewhere | {b['matched']} / {b['in_a_fault_not_matched']} / "
        f"{b['missed_outside_faults']} of {b['simulated']} (sensitivity outside faults "
        f"{100 * b['sensitivity_outside_faults']:.2f} %) |",
        f"| extra detections | {b['extra_detections']} |",
        f"| counters that add up | {sum(result['checks'].values())} of {len(result['checks'])} checks |",
    ]
    failed = [k for k, v in result["checks"].items() if not v]
    if failed:
        lines += ["", "Failed checks: " + "; ".join(failed)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a quick look without bench.py
    import sys

    print(json.dumps(soak(float(sys.argv[1]) if len(sys.argv) > 1 else 600.0), indent=1)[:3000])
