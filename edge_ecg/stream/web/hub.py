"""Between the classifier thread and the browsers: a bounded ring, and the publisher that fills it.

The classifier thread never waits on a browser. :class:`WebPublisher` (called like the
terminal's :class:`~edge_ecg.stream.view.LiveView`, after every chunk) builds at most one
message every ``every_s`` seconds and appends it to :class:`Hub`'s ring of ``ring``
messages (a deque that forgets its oldest). Every browser connection is a server thread
that reads the ring from the sequence number it has reached; one that falls more than
``ring`` messages behind skips what was forgotten (counted in ``skipped``), so a stalled
browser costs no memory and no time of the classifier's, whatever the number of browsers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque

import numpy as np

from edge_ecg.stream.view import adaptation_text, status_fields

#: matplotlib's names of the plot colours (:data:`edge_ecg.config.CLASS_COLORS`) as CSS.
MPL_CSS = {"tab:orange": "#ff7f0e", "tab:red": "#d62728", "tab:purple": "#9467bd", "tab:brown": "#8c564b",
           "tab:blue": "#1f77b4", "tab:green": "#2ca02c", "tab:cyan": "#17becf", "tab:pink": "#e377c2"}


def css_color(name: str) -> str:
    """A matplotlib colour name of :data:`edge_ecg.config.CLASS_COLORS` as a CSS colour: ``"0.45"``
    (a grey level) -> ``"#737373"``, ``"tab:red"`` -> ``"#d62728"``; anything else as it is."""
    try:
        level = float(name)
    except ValueError:
        return MPL_CSS.get(name, name)
    v = int(round(255 * min(1.0, max(0.0, level))))
    return f"#{v:02x}{v:02x}{v:02x}"


def class_colors() -> dict[str, str]:
    """Class letter -> CSS colour, the same as every plot's (``edge-ecg plot``)."""
    from edge_ecg.config import CLASS_COLORS

    return {k: css_color(v) for k, v in CLASS_COLORS.items()}


class Hub:
    """A thread-safe ring of the last ``ring`` messages, and the state a new browser starts from.

    A message is ``(seq, kind, data)`` with ``data`` a JSON-able dict; :meth:`publish` is
    the writer's only call (O(1), never blocks on a reader). :meth:`read` gives a reader the
    messages after its sequence number, waiting up to ``timeout`` s for one. The snapshot
    (:meth:`snapshot`) holds the last ``history_s`` seconds of strip and beats, the last
    ``max_events`` notable events and the latest status, for a browser that connects late.
    """

    def __init__(self, ring: int = 256, history_s: float = 12.0, max_events: int = 40):
        self._cond = threading.Condition()
        self._ring: deque = deque(maxlen=max(2, int(ring)))
        self._seq = 0
        self.history_s = float(history_s)
        self.hello: dict = {}
        self._strips: deque = deque(maxlen=512)  # (start index, fs, values) pieces of the strip
        self._beats: deque = deque(maxlen=256)
        self._events: deque = deque(maxlen=max(1, int(max_events)))
        self._status: dict = {}
        self.closed = False
        self._encoded: dict[int, str] = {}

    @property
    def seq(self) -> int:
        """Sequence number of the newest message (0 before any)."""
        return self._seq

    def publish(self, kind: str, data: dict) -> int:
        """Append one message (``kind``: ``"tick"``, ``"status"`` or ``"end"``); returns its sequence number."""
        with self._cond:
            self._seq += 1
            self._ring.append((self._seq, kind, data))
            if kind == "tick":
                strip = data.get("strip")
                if strip:
                    self._strips.append(strip)
                    horizon = strip["i0"] + len(strip["v"]) - self.history_s * strip["fs"]
                    while self._strips and self._strips[0]["i0"] + len(self._strips[0]["v"]) < horizon:
                        self._strips.popleft()
                    while self._beats and self._beats[0]["i"] < horizon:
                        self._beats.popleft()
                self._beats.extend(data.get("beats", ()))
                self._events.extend(data.get("events", ()))
            elif kind in ("status", "end"):
                self._status = {**self._status, **data} if kind == "status" else {**self._status, "ended": data}
                self._events.extend(data.get("events", ()))
            if len(self._encoded) > 2 * self._ring.maxlen:
                first = self._ring[0][0]
                self._encoded = {k: v for k, v in self._encoded.items() if k >= first}
            self._cond.notify_all()
            return self._seq

    def close(self) -> None:
        """Wake every reader for good (the server is stopping)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def snapshot(self) -> tuple[int, dict]:
        """``(seq, state)``: what a new browser draws first, and the sequence number it then reads on from."""
        with self._cond:
            return self._seq, {**self.hello, "strips": list(self._strips), "beats": list(self._beats),
                               "events": list(self._events), "status": dict(self._status)}

    def read(self, after: int, timeout: float) -> tuple[list, int]:
        """``(messages, skipped)``: the messages after sequence number ``after`` (waiting up to
        ``timeout`` s for one), and how many were already forgotten (the reader was too slow)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.closed, timeout)
            out = [m for m in self._ring if m[0] > after]
            first = out[0][0] if out else self._seq + 1
            return out, max(0, first - after - 1)

    def encoded(self, message) -> str:
        """One message as an SSE frame (``event:`` + ``data:`` lines), encoded once for every reader."""
        seq, kind, data = message
        text = self._encoded.get(seq)
        if text is None:
            text = f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
            self._encoded[seq] = text
        return text


def _beat(ev) -> dict:
    """A :class:`~edge_ecg.stream.events.BeatEvent` as the page needs it (short keys)."""
    out = {"i": int(ev.model_sample), "t": round(ev.time_s, 3), "l": ev.label}
    if ev.label:
        out["p"] = round(float(ev.probs.get(ev.label, 0.0)), 3)
    if ev.hr_bpm is not None:
        out["hr"] = round(ev.hr_bpm, 1)
    if ev.latency_ms is not None:
        out["ms"] = round(ev.latency_ms, 1)
    if ev.skipped:
        out["skip"] = ev.skipped
    if ev.truth:
        out["ref"] = ev.truth
    if ev.adapted:
        out["a"] = 1
    return out


class WebPublisher:
    """The page's view of a run: fills a :class:`Hub` from the classifier thread.

    Used like :class:`~edge_ecg.stream.view.LiveView` (``start``, ``update`` after every
    chunk, ``stop``) plus :meth:`on_event` for every beat. Every ``every_s`` seconds it
    publishes a ``tick``: the cleaned signal at the model's rate (``window.fs``) that arrived
    since the last one (rounded to 3 decimals), the beats labelled since, and the notable
    events (:class:`~edge_ecg.stream.web.notable.Notable`); every ``status_every_s`` a
    ``status`` (heart rate, counts, signal and source health, latency per stage).
    """

    def __init__(self, hub: Hub, pipeline, source_name: str, every_s: float = 0.1, status_every_s: float = 1.0,
                 title: str = "edge-ecg stream"):
        from edge_ecg.stream.web.notable import Notable

        self.hub = hub
        self.pipeline = pipeline
        self.every_s, self.status_every_s = float(every_s), float(status_every_s)
        self.notable = Notable()
        self._beats: list = []
        self._last_tick = self._last_status = 0.0
        self._sent = None  # (segment object, next segment index to send)
        window = pipeline.window
        hub.hello = {"title": title, "source": source_name, "fs": float(window.fs), "classes": list(pipeline.classes),
                     "colors": class_colors(), "window_s": [window.pre_s, window.post_s]}

    def start(self) -> "WebPublisher":
        return self

    def on_event(self, ev) -> None:
        """Called with every beat (classifier thread): kept until the next tick."""
        self._beats.append(ev)
        if len(self._beats) > 4096:  # a run without updates (it cannot happen in run_stream): stay bounded
            del self._beats[:2048]

    def _strip(self) -> dict | None:
        """The cleaned samples at the model's rate produced since the last call (None if none)."""
        p = self.pipeline
        seg = p.seg
        if seg is None:
            return None
        if self._sent is None or self._sent[0] is not seg:
            self._sent = (seg, max(0, seg.n_win - int(2 * p.window.fs)))
        start = max(self._sent[1], seg.buf_start)
        end = seg.buf_start + seg.buf.size
        if end <= start:
            return None
        values = np.round(seg.buf[start - seg.buf_start:end - seg.buf_start].astype(np.float64), 3)
        self._sent = (seg, end)
        return {"i0": int(p.win_offset + start), "fs": float(p.window.fs), "v": values.tolist()}

    def update(self, pipeline, source_stats: dict, dropped: int, force: bool = False) -> None:
        """After a chunk (classifier thread): publish a tick every ``every_s``, a status every ``status_every_s``."""
        now = time.monotonic()
        if not force and now - self._last_tick < self.every_s:
            return
        self._last_tick = now
        beats, self._beats = self._beats, []
        events = self.notable.beats(beats)
        tick = {"strip": self._strip(), "beats": [_beat(ev) for ev in beats], "events": events}
        if tick["strip"] or tick["beats"] or events:
            self.hub.publish("tick", tick)
        if force or now - self._last_status >= self.status_every_s:
            self._last_status = now
            self.hub.publish("status", self._status(pipeline, source_stats, dropped))

    def _status(self, pipeline, source_stats: dict, dropped: int) -> dict:
        f = status_fields(pipeline, source_stats, dropped)
        adapter = getattr(pipeline, "adapter", None)
        progress = adapter.progress() if adapter is not None else None
        stages = {name: {"p50": s.get("p50"), "p99": s.get("p99")}
                  for name, s in pipeline.timer.summary_ms().items() if s.get("count")}
        t = pipeline.stream_pos / pipeline.fs if pipeline.fs else 0.0
        out = {"t": round(t, 2), "hr": f["hr"], "beats": f["beats"], "counts": dict(pipeline.counts),
               "quality": f["quality"], "lost": f["status"], "unclassified": f["skipped"], "gaps": f["gaps"],
               "glitches": f["glitches"], "dropped": f["dropped"], "latency": {"p50": f["lat50"], "p99": f["lat99"]},
               "stages": stages, "source_counters": f["source"], "adapt": adaptation_text(progress),
               "battery": source_stats.get("battery_pct")}
        out["events"] = self.notable.status(t, f, progress)
        return out

    def stop(self) -> None:
        """The view's end (``run_stream`` has just forced a last :meth:`update`); :meth:`finish` says why."""

    def finish(self, reason: str) -> None:
        """The run is over (``reason``: "source ended", "interrupted", an error): an ``end`` message,
        then every browser connection is let go once it has read it."""
        p = self.pipeline
        t = p.stream_pos / p.fs if p.fs else 0.0
        self.hub.publish("end", {"reason": reason, "events": self.notable.ended(t, reason)})
        self.hub.close()


class ViewTee:
    """Several views (``LiveView``, :class:`WebPublisher`) called as one."""

    def __init__(self, *views):
        self.views = [v for v in views if v is not None]

    def start(self) -> "ViewTee":
        for v in self.views:
            v.start()
        return self

    def update(self, *args, **kwargs) -> None:
        for v in self.views:
            v.update(*args, **kwargs)

    def stop(self) -> None:
        for v in self.views:
            v.stop()
