"""The live chain: chunks of device samples in, classified beats out.

For every :class:`~edge_ecg.stream.sources.Chunk`, :class:`StreamPipeline` runs, with state
carried from chunk to chunk:

0. glitches: single wild samples of a serial line (``5`` then ``512`` read as ``5512``) are
   replaced by :class:`edge_ecg.signal.impulse.ImpulseRejector` (3 samples of look-ahead,
   counted in ``impulses``; clean ECG passes unchanged), so they never reach the detector's
   thresholds or a beat's window;
1. quality: samples flagged by the device (lead-off) or by
   :class:`edge_ecg.signal.quality.QualityMonitor` (flat line, saturation) are marked;
2. resample to the model's rate (``window.fs``) and clean with the causal band-pass, exactly
   as the offline builder (:func:`edge_ecg.beats.dataset.record_beats`) does;
3. detect R peaks (:class:`edge_ecg.signal.detect.QRSDetector`, on the resampled signal);
4. cut the beat window from a bounded buffer once ``window.post_s`` seconds after the R peak
   have arrived, normalise it, and compute past-only RR features (:class:`RRTracker`);
5. classify all beats that became ready in this chunk in one batch, and emit a
   :class:`~edge_ecg.stream.events.BeatEvent` per beat.

A gap (reconnect, lost frames, dropped samples, a rate change) ends the *segment*: beats
still waiting for their right context are dropped (counted), and resampler, filter,
detector and RR history (and a sequence model's beat history, through the classifier's
``reset``) start afresh, so no beat ever spans a gap. A beat whose window
touches an unusable sample is emitted unclassified (``skipped="quality"``).

Every stage is timed (:class:`~edge_ecg.stream.latency.StageTimer`), and each beat's
latency from the arrival of its R-peak sample to its label is recorded. The detector and
signal-quality settings are one :class:`~edge_ecg.config.StreamConfig`. The pipeline knows no
reference: a chunk's ground truth (``Chunk.truth``) is for the run's consumers (evaluation's
:class:`edge_ecg.evaluate.live.ReferenceLabeller`), which label the emitted beats.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from edge_ecg.beats.rr import RRTracker
from edge_ecg.beats.windows import normalise_window
from edge_ecg.config import StreamConfig, WindowConfig, to_dict
from edge_ecg.errors import ModelError
from edge_ecg.runtime.classifier import Classifier
from edge_ecg.signal.detect import QRSDetector
from edge_ecg.signal.filter import StreamFilter, clean_sos
from edge_ecg.signal.impulse import ImpulseRejector, impulse_floor
from edge_ecg.stream.events import BeatEvent
from edge_ecg.stream.latency import LatencyStats, StageTimer
from edge_ecg.stream.sources import Chunk


def make_resampler(fs_in: float, fs_out: float, width: int | None = None):
    """A :class:`~edge_ecg.signal.resample.StreamResampler` ``fs_in`` -> ``fs_out`` Hz, or None
    when the rates are equal. ``width`` is the model's ``WindowConfig.resample_width`` (None:
    the default). Its first ``delay`` outputs are start-up (see :class:`_Segment`)."""
    if abs(fs_in - fs_out) <= 1e-9 * fs_out:
        return None
    from edge_ecg.signal.resample import RESAMPLE_WIDTH, StreamResampler

    return StreamResampler(fs_in, fs_out, RESAMPLE_WIDTH if width is None else width)


def _quality_monitor(fs: float, config: StreamConfig):
    """The signal engineer's :class:`QualityMonitor` for ``fs`` Hz, with ``config``'s limits."""
    from edge_ecg.signal.quality import QualityMonitor

    return QualityMonitor(fs, flat_s=config.flat_s, flat_fraction=config.flat_fraction,
                          saturation_s=config.saturation_s)


def _bad_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` index pairs (end exclusive) of the True runs of a bool mask."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


class _Segment:
    """Everything that restarts after a gap: one stretch of contiguous samples."""

    def __init__(self, fs: float, window: WindowConfig, rr_features: tuple[str, ...], start: int,
                 config: StreamConfig, impulse_floor: float = 0.0):
        self.fs = fs
        self.rejector = ImpulseRejector(fs, half=config.impulse_half, spread_factor=config.impulse_spread_factor,
                                        amplitude_fraction=config.impulse_amplitude_fraction,
                                        block_s=config.impulse_block_s, blocks=config.impulse_blocks,
                                        floor=impulse_floor)
        self.glitches: deque = deque(maxlen=256)  # segment times (s) of replaced samples
        self.fs_w = window.fs
        self.start = start  # stream sample index (device rate) of this segment's first sample
        self.resampler = make_resampler(fs, window.fs, window.resample_width)
        # the resampler lags the zero-phase offline resampling by `delay` outputs: dropping the
        # first ones makes index k of this segment's signal at window.fs the offline index k
        self.skip = int(getattr(self.resampler, "delay", 0) or 0)
        self.clean = StreamFilter(clean_sos(window.fs, window.highpass_hz, window.lowpass_hz))
        self.detector = QRSDetector(window.fs, threshold=config.qrs_threshold, searchback=config.qrs_searchback,
                                    learning_s=config.qrs_learning_s)
        self.rr = RRTracker(window.fs, rr_features)
        self.quality = _quality_monitor(fs, config)
        self.n_in = 0  # device samples fed
        self.n_win = 0  # samples at window.fs produced
        self.buf = np.zeros(0, dtype=np.float32)  # cleaned signal at window.fs
        self.buf_start = 0  # segment index (window.fs) of buf[0]
        self.first_clean: float | None = None
        self.pending: deque = deque()  # (r, rr features, hr_bpm)
        self.bad: deque = deque(maxlen=256)  # (start_s, end_s) unusable stretches, segment time
        self.last_r: int | None = None  # last beat in the RR history
        self.last_seen: int | None = None  # last beat reported by the detector
        self.last_x = 0.0

    def window_time_s(self, r: int) -> float:
        return r / self.fs_w

    def stream_sample(self, r: int) -> int:
        return self.start + int(round(r * self.fs / self.fs_w))

    def is_bad(self, lo_s: float, hi_s: float) -> bool:
        return any(a < hi_s and b > lo_s for a, b in self.bad)


class StreamPipeline:
    """Chunks in, :class:`BeatEvent` lists out (see the module docstring).

    ``classifier``: a :class:`edge_ecg.runtime.Classifier` (a
    :class:`~edge_ecg.runtime.TFLiteClassifier` on a device). ``quality``: gate beats on signal
    quality. ``collect_windows``: keep every classified window and RR vector (tests,
    debugging; unbounded, so off by default). ``adapter``: a
    :class:`edge_ecg.runtime.adapt.WearerAdapter` that relabels each classified beat from
    what it has learnt of the wearer's earlier beats (None: the network's labels as they are).
    ``config``: the detector and signal-quality settings (None: the defaults).
    """

    def __init__(self, classifier: Classifier, quality: bool = True, timer: StageTimer | None = None,
                 collect_windows: bool = False, adapter=None, config: StreamConfig | None = None):
        self.classifier = classifier
        self.adapter = adapter
        self.config = config or StreamConfig()
        window = classifier.window
        if not isinstance(window, WindowConfig):
            raise ModelError("the model has no window description (metadata 'window'); convert it with edge-ecg")
        self.window = window
        self.classes = tuple(classifier.classes)
        self.rr_features = tuple(classifier.rr_features)
        self.uses_rr = bool(classifier.uses_rr)
        self.quality = quality
        self.timer = timer or StageTimer()
        self.beat_latency = LatencyStats()
        self.collect_windows = collect_windows
        self.collected: list[tuple[int, np.ndarray, np.ndarray]] = []  # (model_sample, window, rr)
        self.counts = {c: 0 for c in self.classes}
        self.counters = {
            "samples": 0, "chunks": 0, "beats": 0, "classified": 0, "skipped_quality": 0, "dropped_at_gap": 0,
            "gaps": 0, "lost_samples": 0, "bad_samples": 0, "impulses": 0,
        }
        self.seg: _Segment | None = None
        self.fs: float | None = None
        self.stream_pos = 0  # device samples since the start, counting known-lost ones
        self.win_offset = 0  # window.fs samples of closed segments (model_sample numbering)
        self._arrivals: deque = deque(maxlen=8192)  # (stream end sample, arrival time)
        self.last_events: deque = deque(maxlen=32)
        self.hr_bpm: float | None = None
        self.signal_ok = True

    # ------------------------------------------------------------------ public

    def process(self, chunk: Chunk, read_s: float = 0.0) -> list[BeatEvent]:
        """Run one chunk through the chain; returns the beats labelled during it (in order).

        ``read_s`` is the time the source spent reading and parsing it (added to the
        ``read`` and ``total`` stage timers). The last :attr:`ImpulseRejector.delay` samples
        are held back until the next chunk (or :meth:`finish`, or a gap).
        """
        t0 = time.perf_counter()
        x = np.asarray(chunk.samples, dtype=np.float64)
        events: list[BeatEvent] = []
        if chunk.gap or self.seg is None or chunk.fs != self.fs:
            if self.seg is not None:
                self.counters["gaps"] += 1
                events = self._feed(self.seg, *self._release(self.seg, None, None), t0=t0, read_s=0.0)
                t0 = time.perf_counter()
            self._new_segment(chunk.fs, chunk.lost, impulse_floor(x, chunk.units, chunk.gain))
        seg = self.seg
        n = x.size
        self.counters["chunks"] += 1
        self.counters["samples"] += n
        self.stream_pos += n
        self._arrivals.append((self.stream_pos, chunk.arrival))
        x, dev_bad = self._release(seg, x, chunk.bad)
        return events + self._feed(seg, x, dev_bad, t0=t0, read_s=read_s)

    def _release(self, seg: _Segment, x, bad) -> tuple[np.ndarray, np.ndarray]:
        """The samples (and device flags) the glitch rejector lets through now; all of them if ``x`` is None."""
        before = seg.rejector.count
        out, flags = seg.rejector.flush() if x is None else seg.rejector.process(x, bad)
        if seg.rejector.count != before:
            self.counters["impulses"] += seg.rejector.count - before
            seg.glitches.extend(i / seg.fs for i in seg.rejector.replaced)
            seg.rejector.replaced.clear()
        return out, flags

    def _feed(self, seg: _Segment, x: np.ndarray, dev_bad: np.ndarray, t0: float, read_s: float) -> list[BeatEvent]:
        """Quality, resampling, cleaning, detection and labelling of released samples ``x``."""
        n = x.size
        # quality flags at the device rate
        bad = np.asarray(dev_bad, dtype=bool)
        if self.quality and seg.quality is not None and n:
            bad = np.asarray(seg.quality.process(x, lead_off=bad), dtype=bool)
        if self.quality and bad.any():
            self.counters["bad_samples"] += int(bad.sum())
            for a, b in _bad_runs(bad):
                lo, hi = (seg.n_in + a) / seg.fs, (seg.n_in + b) / seg.fs
                if seg.bad and abs(seg.bad[-1][1] - lo) < 1.5 / seg.fs:
                    seg.bad[-1] = (seg.bad[-1][0], hi)
                else:
                    seg.bad.append((lo, hi))
        self.signal_ok = not bool(bad[-1]) if n else self.signal_ok
        seg.n_in += n
        if n:
            seg.last_x = float(x[-1])
        t1 = time.perf_counter()

        # resample + clean
        xw = self._resample(seg, x)
        clean = seg.clean.process(xw).astype(np.float32) if xw.size else np.zeros(0, np.float32)
        if xw.size:
            seg.buf = np.concatenate([seg.buf, clean]) if seg.buf.size else clean
            seg.n_win += xw.size
        t2 = time.perf_counter()

        # detect
        peaks = seg.detector.process(xw) if xw.size else np.zeros(0, dtype=np.int64)
        for r in peaks.tolist():
            self._add_beat(seg, int(r))
        t3 = time.perf_counter()

        events = self._emit_ready(seg, final=False, t_stages=(t0, t1, t2, t3), read_s=read_s)
        self._trim(seg)
        return events

    def finish(self) -> list[BeatEvent]:
        """End of the stream: label the beats still waiting, their windows edge-padded on the
        right as the offline builder pads a record's end."""
        if self.seg is None:
            return []
        seg = self.seg
        held = self._feed(seg, *self._release(seg, None, None), t0=time.perf_counter(), read_s=0.0)
        t = time.perf_counter()
        if seg.resampler is not None and seg.n_in:
            # the resampler's look-ahead: pad with the last sample (offline pads the record's end too)
            target = int(np.ceil(seg.n_in * seg.fs_w / seg.fs))
            want = target - seg.n_win
            if want > 0:
                k = int(np.ceil((want + 2) * seg.fs / seg.fs_w)) + 2
                tail = self._resample(seg, np.full(k, seg.last_x))[:want]
                if tail.size:
                    seg.buf = np.concatenate([seg.buf, seg.clean.process(tail).astype(np.float32)])
                    seg.n_win += tail.size
        return held + self._emit_ready(seg, final=True, t_stages=(t, t, t, t), read_s=0.0)

    def summary(self) -> dict:
        """Counters, class counts, stage and beat-to-label latency (ms) as a JSON-able dict."""
        out = dict(self.counters)
        out["counts"] = dict(self.counts)
        out["stage_latency_ms"] = self.timer.summary_ms()
        out["beat_latency_ms"] = self.beat_latency.summary_ms()
        if self.adapter is not None:
            out["adaptation"] = self.adapter.progress()
        out["stream_config"] = to_dict(self.config)
        return out

    # ------------------------------------------------------------------ internals

    def _new_segment(self, fs: float, lost: int, floor: float = 0.0) -> None:
        if self.seg is not None:
            self.counters["dropped_at_gap"] += len(self.seg.pending)
            self.win_offset += self.seg.n_win
        self.stream_pos += int(lost)
        self.counters["lost_samples"] += int(lost)
        self.hr_bpm = None  # the heart rate before a gap is not the current one
        self.fs = float(fs)
        self.seg = _Segment(self.fs, self.window, self.rr_features, self.stream_pos, self.config, floor)
        self.classifier.reset()  # a sequence model's beat history never spans a gap

    @staticmethod
    def _resample(seg: _Segment, x: np.ndarray) -> np.ndarray:
        """``x`` at the model's rate, aligned with the offline resampling (start-up dropped)."""
        if seg.resampler is None:
            return x
        xw = seg.resampler.process(x)
        if seg.skip and xw.size:
            drop = min(seg.skip, xw.size)
            xw = xw[drop:]
            seg.skip -= drop
        return xw

    def _add_beat(self, seg: _Segment, r: int) -> None:
        if seg.last_seen is not None and r <= seg.last_seen:
            return
        seg.last_seen = r
        t = r / seg.fs_w
        guard = self.config.qrs_guard_s
        if self.quality and seg.is_bad(t - guard, t + guard):
            # a "beat" in an unusable stretch: never classified, and its RR history is broken
            seg.rr.reset()
            seg.last_r = None
            feats, hr = None, None
        else:
            hr = None if seg.last_r is None else 60.0 * seg.fs_w / (r - seg.last_r)
            feats = seg.rr.push(r)
            seg.last_r = r
        if len(seg.pending) >= self.config.max_pending:
            seg.pending.popleft()
            self.counters["dropped_at_gap"] += 1
        seg.pending.append((r, feats, hr))

    def _emit_ready(self, seg: _Segment, final: bool, t_stages, read_s: float) -> list[BeatEvent]:
        t0, t1, t2, t3 = t_stages
        w = self.window
        ready = []
        while seg.pending and (final or seg.pending[0][0] + w.post < seg.n_win):
            ready.append(seg.pending.popleft())
        events: list[BeatEvent] = []
        t4 = t5 = time.perf_counter()
        if ready:
            r = np.array([b[0] for b in ready], dtype=np.int64)
            idx = r[:, None] - w.pre + np.arange(w.length)[None, :] - seg.buf_start
            if seg.buf_start == 0:
                idx = np.maximum(idx, 0)  # the segment's start: edge padding, as offline
            idx = np.minimum(idx, seg.buf.size - 1)  # only when final: edge padding at the end
            ok_idx = idx[:, 0] >= 0
            X = normalise_window(seg.buf[np.maximum(idx, 0)], w.normalise)
            n_feat = len(self.rr_features)
            rr = np.stack([b[1] if b[1] is not None else np.zeros(n_feat, np.float32) for b in ready])
            rr = rr.astype(np.float32)
            usable = ok_idx & np.array([b[1] is not None for b in ready])
            if self.quality:
                for i, ri in enumerate(r.tolist()):
                    if seg.is_bad((ri - w.pre) / seg.fs_w, (ri + w.post + 1) / seg.fs_w):
                        usable[i] = False
            t4 = time.perf_counter()
            probs = np.zeros((len(r), len(self.classes)), dtype=np.float32)
            # even with nothing to classify, a beat that broke the RR history resets a sequence model
            probs[usable] = self._classify(X, rr, usable, [b[1] is None for b in ready])
            adapted = np.zeros(len(r), dtype=bool)
            if self.adapter is not None and usable.any():  # the wearer's adaptation (edge_ecg.runtime.adapt)
                probs[usable], adapted[usable] = self.adapter.adapt_batch(X[usable], rr[usable], probs[usable])
            t5 = time.perf_counter()
            for i, (ri, _, hr) in enumerate(ready):
                events.append(self._event(seg, ri, hr, probs[i] if usable[i] else None, t5,
                                          "quality" if ok_idx[i] else "late"))
                if self.adapter is not None and usable[i]:
                    events[-1].adapted = bool(adapted[i])
                if usable[i] and self.collect_windows:
                    self.collected.append((self.win_offset + ri, X[i].copy(), rr[i].copy()))
        t_end = time.perf_counter()
        tm = self.timer
        tm.add("read", read_s)
        tm.add("resample_filter", t2 - t1)
        tm.add("detect", t3 - t2)
        tm.add("window", t4 - t3 + (t1 - t0))
        tm.add("inference", t5 - t4)
        tm.add("total", read_s + (t_end - t0))
        return events

    def _classify(self, X: np.ndarray, rr: np.ndarray, usable: np.ndarray, breaks: list[bool]) -> np.ndarray:
        """Probabilities of the usable beats. The classifier is :meth:`~Classifier.reset` at every
        beat whose RR history broke, so no sequence of a model with beat history spans it."""
        cuts = [i for i, b in enumerate(breaks) if b]
        out, start = [], 0
        for end in cuts + [len(X)]:
            sel = np.flatnonzero(usable[start:end]) + start
            if sel.size:
                out.append(self.classifier.predict_batch(X[sel], rr[sel] if self.uses_rr else None))
            if end < len(X):
                self.classifier.reset()
            start = end
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def _event(self, seg: _Segment, r: int, hr, probs, t_label: float, why: str) -> BeatEvent:
        s = seg.stream_sample(r)
        arrival = self._arrival_of(s)
        latency = None if arrival is None else (t_label - arrival) * 1000.0
        ev = BeatEvent(time_s=s / seg.fs, sample=s, model_sample=self.win_offset + r, label=None, hr_bpm=hr,
                       latency_ms=latency)
        if seg.glitches:
            lo, hi = (r - self.window.pre) / seg.fs_w, (r + self.window.post + 1) / seg.fs_w
            ev.glitches = sum(lo <= g < hi for g in seg.glitches)
        self.counters["beats"] += 1
        if hr is not None:
            self.hr_bpm = hr
        if probs is None:
            ev.skipped = why
            self.counters["skipped_quality"] += 1
        else:
            k = int(np.argmax(probs))
            ev.label = self.classes[k]
            ev.probs = {c: float(p) for c, p in zip(self.classes, probs)}
            self.counts[ev.label] = self.counts.get(ev.label, 0) + 1
            self.counters["classified"] += 1
            if latency is not None:
                self.beat_latency.add(latency / 1000.0)
        self.last_events.append(ev)
        return ev

    def _arrival_of(self, s: int) -> float | None:
        """Arrival time of the chunk holding stream sample ``s`` (None if forgotten)."""
        found = None
        for end, t in reversed(self._arrivals):
            if end <= s:
                break
            found = t
        return found

    def _trim(self, seg: _Segment) -> None:
        w = self.window
        keep_from = seg.n_win - (w.pre + w.post + seg.detector.max_delay + 8)
        if seg.pending:
            keep_from = min(keep_from, seg.pending[0][0] - w.pre)
        if keep_from > seg.buf_start:
            seg.buf = seg.buf[keep_from - seg.buf_start:]
            seg.buf_start = keep_from
        horizon = seg.n_in / seg.fs - (w.pre_s + w.post_s + seg.detector.max_delay / seg.fs_w + 1.0)
        while seg.bad and seg.bad[0][1] < horizon:
            seg.bad.popleft()
        while seg.glitches and seg.glitches[0] < horizon:
            seg.glitches.popleft()
