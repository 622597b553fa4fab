"""What the page lists as events: the things a person watching a monitor wants pointed out.

:class:`Notable` turns the beats and the status of a run into short events
``{"t": stream time s, "kind": ..., "text": ...}``:

- ``V`` / ``S``: an ectopic beat, a pair, or a run of three or more of the same class
  (reported when the run ends, with its length and rate);
- ``pause``: an RR interval longer than ``pause_s`` (2 s by default);
- ``lost`` / ``back``: the source lost (a board unplugged, a strap out of range, silence)
  and back; ``gap``: samples lost in a gap; ``quality``: beats left unclassified;
- ``glitch``: serial glitches replaced (at most one event per ``glitch_every_s``);
- ``adapt``: the wearer's adaptation, when its first beat group votes and as groups join;
- ``end``: the run is over.
"""

from __future__ import annotations


class Notable:
    """Stateful: feed it the beats (:meth:`beats`) and the status (:meth:`status`) in order."""

    def __init__(self, pause_s: float = 2.0, glitch_every_s: float = 10.0):
        self.pause_s = float(pause_s)
        self.glitch_every_s = float(glitch_every_s)
        self._run: list = []  # consecutive S or V beats: (time s, hr)
        self._run_label: str | None = None
        self._lost_at: float | None = None
        self._gaps = self._glitches = self._unclassified = 0
        self._glitch_t = -1e9
        self._voting = 0

    @staticmethod
    def _ev(t: float, kind: str, text: str) -> dict:
        return {"t": round(float(t), 2), "kind": kind, "text": text}

    def _close_run(self) -> list[dict]:
        if not self._run:
            return []
        run, label = self._run, self._run_label
        n, t0 = len(run), run[0][0]
        self._run, self._run_label = [], None
        name = {"V": "ventricular", "S": "supraventricular"}[label]
        if n == 1:
            return [self._ev(t0, label, f"{label} beat ({name} ectopic)")]
        if n == 2:
            return [self._ev(t0, label, f"{label} pair (2 {name} beats)")]
        rates = [hr for _, hr in run if hr]
        rate = f" at {sum(rates) / len(rates):.0f} bpm" if rates else ""
        return [self._ev(t0, label, f"run of {n} {label} beats{rate}")]

    def beats(self, events) -> list[dict]:
        """Events for a list of :class:`~edge_ecg.stream.events.BeatEvent` (in stream order)."""
        out: list[dict] = []
        for ev in events:
            if ev.hr_bpm and 60.0 / ev.hr_bpm >= self.pause_s:
                out.append(self._ev(ev.time_s - 60.0 / ev.hr_bpm, "pause", f"pause {60.0 / ev.hr_bpm:.1f} s"))
            if ev.label in ("S", "V"):
                if self._run_label not in (None, ev.label):
                    out += self._close_run()
                self._run_label = ev.label
                self._run.append((ev.time_s, ev.hr_bpm))
            else:
                out += self._close_run()
        return out

    def status(self, t: float, fields: dict, progress: dict | None) -> list[dict]:
        """Events from the status fields of :func:`edge_ecg.stream.view.status_fields` at stream time ``t``."""
        out: list[dict] = []
        lost = fields.get("status")
        if lost and self._lost_at is None:
            self._lost_at = t
            out.append(self._ev(t, "lost", f"signal lost: {lost}"))
        elif not lost and self._lost_at is not None:
            out.append(self._ev(t, "back", "signal back"))
            self._lost_at = None
        if fields["gaps"] > self._gaps:
            out.append(self._ev(t, "gap", f"gap in the stream ({fields['gaps']} so far): detector restarted"))
            self._gaps = fields["gaps"]
        if fields["skipped"] > self._unclassified:
            out.append(self._ev(t, "quality", f"{fields['skipped'] - self._unclassified} beat(s) left unclassified "
                                              f"(signal quality)"))
            self._unclassified = fields["skipped"]
        if fields["glitches"] > self._glitches and t - self._glitch_t >= self.glitch_every_s:
            out.append(self._ev(t, "glitch", f"{fields['glitches'] - self._glitches} glitch(es) replaced"))
            self._glitches, self._glitch_t = fields["glitches"], t
        if progress:
            voting = int(progress.get("ready_cells", 0) or 0)
            if voting > self._voting:
                first = self._voting == 0
                self._voting = voting
                out.append(self._ev(t, "adapt", ("adaptation started: " if first else "adaptation: ")
                                    + f"{voting} beat group(s) voting, {progress.get('adapted_pct', 0):.0f} % of "
                                      f"{progress.get('beats', 0)} beats adapted"))
        return out

    def ended(self, t: float, reason: str) -> list[dict]:
        """The last events of a run at stream time ``t`` (a run of beats still open, then the end)."""
        return self._close_run() + [self._ev(t, "end", f"stream ended: {reason}")]
