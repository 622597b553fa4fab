"""The live terminal view of ``edge-ecg stream`` and the summary printed on exit.

On a terminal, :class:`LiveView` draws with :class:`rich.live.Live`: heart rate, signal
quality, the last beats with their classes, counts per class, what the source skipped, and
latency. When stdout is not a terminal (a pipe, a log file, a test) it prints one plain
line every few seconds instead.
"""

from __future__ import annotations

import sys
import time

from edge_ecg.stream.latency import LatencyStats

#: Source counters worth showing (whatever the source has of them).
SOURCE_COUNTERS = ("bad_lines", "lead_off_lines", "partial_lines", "garbage_bytes", "crc_errors", "seq_gaps", "lost_frames",
                   "frames_before_header", "disconnects", "reconnects", "silences")


def _ms(stats: LatencyStats, q: float) -> str:
    v = stats.percentile(q)
    return "-" if v != v else f"{v * 1000:.0f}"


def adaptation_text(progress: dict | None) -> str:
    """How far the wearer's adaptation has come, in a few words ("" without ``--adapt``)."""
    if not progress:
        return ""
    have = (f"{progress.get('groups', 0)} beat groups, {progress.get('ready_cells', 0)} voting"
            if progress.get("design") == "cluster" else f"prototypes {progress.get('prototypes') or 'none yet'}")
    return f"adapted {progress['adapted_pct']:.0f} % of {progress['beats']} beats ({have})"


def status_fields(pipeline, source_stats: dict, dropped: int) -> dict:
    """The numbers a view shows, as a flat dict."""
    c = pipeline.counters
    status = source_stats.get("status")  # device lost, silent, or a wrong --format: nothing current to show
    adapter = getattr(pipeline, "adapter", None)
    return {
        "status": status,
        "adapt": adaptation_text(adapter.progress() if adapter is not None else None),
        "hr": "-" if pipeline.hr_bpm is None or status else f"{pipeline.hr_bpm:.0f}",
        "beats": c["beats"],
        "counts": " ".join(f"{k} {v}" for k, v in pipeline.counts.items()),
        "quality": "-" if status else "ok" if pipeline.signal_ok else "FLAGGED",
        "skipped": c["skipped_quality"],
        "gaps": c["gaps"],
        "glitches": c.get("impulses", 0),
        "dropped": dropped,
        "lat50": _ms(pipeline.beat_latency, 50),
        "lat99": _ms(pipeline.beat_latency, 99),
        "source": {k: source_stats[k] for k in SOURCE_COUNTERS if source_stats.get(k)},
    }


def plain_line(pipeline, source_stats: dict, dropped: int) -> str:
    """One status line (for logs and pipes)."""
    f = status_fields(pipeline, source_stats, dropped)
    t = pipeline.stream_pos / pipeline.fs if pipeline.fs else 0.0
    extra = " ".join(f"{k}={v}" for k, v in f["source"].items())
    return (
        f"t={t:.1f}s HR {f['hr']} bpm | beats {f['beats']} ({f['counts']}) | quality {f['quality']} "
        f"(unclassified {f['skipped']}) | gaps {f['gaps']} dropped {f['dropped']} glitches {f['glitches']} | "
        f"latency p50 {f['lat50']} ms p99 {f['lat99']} ms" + (f" | {f['adapt']}" if f["adapt"] else "")
        + (f" | {extra}" if extra else "")
        + (f" | {f['status']}" if f["status"] else "")
    )


class LiveView:
    """Redraws at most ``refresh_s`` apart. ``mode``: ``"auto"`` (rich on a TTY, else plain),
    ``"rich"``, ``"plain"`` (a line every ``plain_every_s`` seconds) or ``"none"``."""

    def __init__(self, title: str, mode: str = "auto", refresh_s: float = 0.25, plain_every_s: float = 5.0,
                 stream=None):
        self.stream = stream or sys.stdout
        if mode == "auto":
            mode = "rich" if getattr(self.stream, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.title = title
        self.refresh_s = refresh_s if mode == "rich" else plain_every_s
        self._last = 0.0
        self._live = None

    def start(self) -> "LiveView":
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=self.stream), auto_refresh=False, transient=False)
            self._live.start()
        self._last = time.monotonic()
        return self

    def update(self, pipeline, source_stats: dict, dropped: int, force: bool = False) -> None:
        """Redraw if ``refresh_s`` has passed (or ``force``)."""
        if self.mode == "none":
            return
        now = time.monotonic()
        if not force and now - self._last < self.refresh_s:
            return
        self._last = now
        if self.mode == "rich" and self._live is not None:
            self._live.update(self._render(pipeline, source_stats, dropped), refresh=True)
        elif self.mode == "plain":
            print(plain_line(pipeline, source_stats, dropped), file=self.stream, flush=True)

    def _render(self, pipeline, source_stats: dict, dropped: int):
        from rich.panel import Panel
        from rich.table import Table

        f = status_fields(pipeline, source_stats, dropped)
        head = Table.grid(padding=(0, 3))
        head.add_row(
            f"[b]HR[/b] {f['hr']} bpm", f"[b]beats[/b] {f['beats']}",
            "[b]signal[/b] " + {"ok": "[green]ok[/]", "-": "-"}.get(f["quality"], "[red]flagged[/]"),
            f"[b]latency[/b] p50 {f['lat50']} / p99 {f['lat99']} ms",
        )
        counts = Table.grid(padding=(0, 2))
        counts.add_row(*[f"[b]{k}[/b] {v}" for k, v in pipeline.counts.items()],
                       f"[b]unclassified[/b] {f['skipped']}", f"[b]gaps[/b] {f['gaps']}", f"[b]dropped[/b] {dropped}",
                       f"[b]glitches[/b] {f['glitches']}")
        beats = Table(box=None, pad_edge=False)
        for col in ("time s", "class", "p", "HR", "latency ms", "truth"):
            beats.add_column(col, justify="right")
        for ev in list(pipeline.last_events)[-8:]:
            p = ev.probs.get(ev.label, 0.0) if ev.label else 0.0
            style = {"N": "", "S": "yellow", "V": "red", "F": "magenta", "Q": "cyan"}.get(ev.label or "", "dim")
            beats.add_row(
                f"{ev.time_s:.2f}", f"[{style}]{ev.label or '(' + (ev.skipped or '?') + ')'}[/]" if style else ev.label,
                f"{p:.2f}", "-" if ev.hr_bpm is None else f"{ev.hr_bpm:.0f}",
                "-" if ev.latency_ms is None else f"{ev.latency_ms:.0f}", ev.truth or "",
            )
        src = " ".join(f"{k}={v}" for k, v in f["source"].items()) or "no faults"
        grid = Table.grid()
        rows = [head, counts] + ([f"[b]wearer[/b] {f['adapt']}"] if f["adapt"] else []) + [beats, f"[dim]source: {src}[/dim]"]
        if f["status"]:
            rows.insert(0, f"[b red]{f['status']}[/]")
        for row in rows:
            grid.add_row(row)
        return Panel(grid, title=self.title, border_style="blue")

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            print(file=self.stream, flush=True)


def _pace_line(c: dict) -> str:
    """How fast the signal came: times real time for a replay or simulation; for a device, the
    rate it really sent, the rate it announced and the time it was disconnected."""
    head = f"  signal {c.get('stream_s', 0):.1f} s in {c.get('wall_s', 0):.2f} s wall"
    if c.get("device"):
        st = c.get("source_stats", {})
        rate = c.get("received_hz")
        return (head + f"; the device sent {rate if rate is not None else 0:.1f} samples/s while connected"
                + (f" ({c['fs']:g} Hz expected)" if c.get("fs") else "")
                + f", disconnected {st.get('disconnects', 0)} time(s) for {st.get('disconnected_s', 0.0):.1f} s")
    return head + (f" ({c['x_realtime']:.0f}x real time)" if c.get("x_realtime") else "")


def format_summary(summary: dict) -> str:
    """The multi-line summary printed when a stream ends (also after Ctrl-C)."""
    c = summary
    lines = [
        f"stream: {c.get('source', '')}  ({'interrupted' if c.get('interrupted') else c.get('ended', 'ended')})",
        _pace_line(c),
        f"  beats {c['beats']}: " + ", ".join(f"{k} {v}" for k, v in c["counts"].items())
        + f"; unclassified (signal quality) {c['skipped_quality']}",
        f"  gaps {c['gaps']} (beats dropped at gaps {c['dropped_at_gap']}, samples lost {c['lost_samples']}, "
        f"dropped by a slow consumer {c.get('dropped_samples', 0)}); flagged samples {c['bad_samples']}; "
        f"glitches replaced {c.get('impulses', 0)}",
    ]
    st = c.get("source_stats", {})
    src = {k: v for k, v in st.items() if k in SOURCE_COUNTERS and v}
    if src:
        lines.append("  source: " + ", ".join(f"{k} {v}" for k, v in src.items())
                     + (f" ({st['silent_s']:.0f} s without data)" if st.get("silent_s") else ""))
    if st.get("status"):
        lines.append(f"  at the end: {st['status']}")
    if c.get("truth_agreement") is not None:
        lines.append(f"  agreement with ground truth: {100 * c['truth_agreement']:.1f} % of {c['truth_matched']} beats")
    if c.get("adaptation"):
        lines.append(f"  wearer: {adaptation_text(c['adaptation'])}")
    bl = c.get("beat_latency_ms", {})
    if bl.get("count"):
        lines.append(f"  beat-to-label latency ms: p50 {bl['p50']:.1f}  p95 {bl['p95']:.1f}  p99 {bl['p99']:.1f}  "
                     f"max {bl['max']:.1f}")
    stages = c.get("stage_latency_ms", {})
    if stages:
        lines.append("  per chunk, ms        p50      p95      p99      max")
        for name, s in stages.items():
            if s.get("count"):
                lines.append(f"    {name:<16}{s['p50']:>9.3f}{s['p95']:>9.3f}{s['p99']:>9.3f}{s['max']:>9.3f}")
    return "\n".join(lines)
