"""The live pipeline: same windows as the offline builder, chunking-independent, gaps, quality, bounds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_ecg.beats.dataset import record_beats
from edge_ecg.errors import ConfigError
from edge_ecg.evaluate.live import ReferenceLabeller
from edge_ecg.records.load import Record, load_record
from edge_ecg.stream.events import BeatEvent
from edge_ecg.stream.latency import LatencyStats, StageTimer
from edge_ecg.stream.pipeline import StreamPipeline, make_resampler
from edge_ecg.stream.simulate import simulate_ecg
from edge_ecg.stream.sources import Chunk, ReplaySource

from conftest import FakeClassifier


def run_chunks(pipeline, x, fs, sizes, **chunk_kwargs):
    events, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        events += pipeline.process(Chunk(x[i:i + n], fs, time.perf_counter(), **chunk_kwargs))
        i += n
        k += 1
    return events + pipeline.finish()


def synthetic_record(seconds=120.0, fs=360.0, seed=1) -> Record:
    x, s, labels = simulate_ecg(seconds, fs=fs, seed=seed, s_prob=0.1, v_prob=0.1)
    return Record(name="sim", fs=fs, lead="MLII", signal=x.astype(np.float32), beat_samples=s,
                  beat_classes=labels)


def assert_same_as_offline(rec: Record, pipeline: StreamPipeline, skip_first: int = 0):
    """Stream windows and RR features == record_beats() at the stream's own R positions."""
    window = pipeline.window
    ms = np.array([c[0] for c in pipeline.collected])
    X = np.stack([c[1] for c in pipeline.collected])
    rr = np.stack([c[2] for c in pipeline.collected])
    r_dev = ms * rec.fs / window.fs
    offline = record_beats(rec, window, r_samples=r_dev)
    np.testing.assert_array_equal(offline.sample, ms)
    np.testing.assert_allclose(offline.rr, rr, rtol=0, atol=1e-6)
    np.testing.assert_allclose(offline.X[skip_first:], X[skip_first:], rtol=0, atol=1e-4)
    return offline


def test_stream_windows_equal_offline_builder_synthetic():
    rec = synthetic_record()
    p = StreamPipeline(FakeClassifier(), collect_windows=True)
    events = [ev for ch in ReplaySource(rec, speed=0, chunk_s=0.37).chunks() for ev in p.process(ch)]
    events += p.finish()
    assert len(events) == len(p.collected) > 100
    # the first window touches the resampler's start-up edge (offline extends the record by a line)
    assert_same_as_offline(rec, p, skip_first=1)


@pytest.mark.realdata
def test_stream_windows_equal_offline_builder_mitdb(mitdb_dir):
    rec = load_record(mitdb_dir, "208")
    rec.signal = rec.signal[: int(300 * rec.fs)]
    keep = rec.beat_samples < len(rec.signal)
    rec.beat_samples, rec.beat_classes = rec.beat_samples[keep], rec.beat_classes[keep]
    p = StreamPipeline(FakeClassifier(), collect_windows=True)
    ref = ReferenceLabeller()
    events = []
    for ch in ReplaySource(rec, speed=0).chunks():  # what ``run_stream(..., consumers=(ref,))`` does
        ref.on_chunk(ch)
        for ev in p.process(ch):
            ref.on_event(ev)
            events.append(ev)
    for ev in p.finish():
        ref.on_event(ev)
        events.append(ev)
    assert_same_as_offline(rec, p, skip_first=1)
    labels = {ev.truth for ev in events}
    assert {"N", "V"} <= labels  # the events were matched to the record's annotations
    assert ref.counters["truth_matched"] >= 0.95 * len(rec.beat_samples)


def test_results_do_not_depend_on_chunking():
    rec = synthetic_record(60.0, fs=250.0, seed=2)
    x = rec.signal.astype(np.float64)
    a = run_chunks(StreamPipeline(FakeClassifier()), x, rec.fs, [500])
    b = run_chunks(StreamPipeline(FakeClassifier()), x, rec.fs, [1, 7, 63, 250, 3])
    assert [e.sample for e in a] == [e.sample for e in b]
    assert [e.label for e in a] == [e.label for e in b]
    pa = np.array([list(e.probs.values()) for e in a])
    pb = np.array([list(e.probs.values()) for e in b])
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_any_device_rate_finds_the_same_beats():
    found = {}
    for fs in (125.0, 250.0, 360.0, 500.0):
        x, s, _ = simulate_ecg(40.0, fs=fs, seed=5)
        events = run_chunks(StreamPipeline(FakeClassifier()), x * 200 + 1024, fs, [int(fs // 4)])  # ADC counts
        t_true = s / fs
        t_found = np.array([e.time_s for e in events])
        hits = sum(np.min(np.abs(t_found - t)) < 0.02 for t in t_true[t_true > 3.0])
        found[fs] = hits / np.sum(t_true > 3.0)
        # no phantom beats and no offset: every beat sits on a true R peak
        assert all(np.min(np.abs(t_true - t)) < 0.02 for t in t_found), fs
    assert min(found.values()) > 0.97, found
    assert make_resampler(180.0, 180.0) is None


def test_gap_resets_and_no_beat_spans_it():
    fs = 360.0
    x, s, _ = simulate_ecg(60.0, fs=fs, seed=3)
    p = StreamPipeline(FakeClassifier())
    half = len(x) // 2
    ev1 = run_chunks_no_finish(p, x[:half], fs, [180])
    pending_before = len(p.seg.pending)
    lost = int(3 * fs)
    ev2 = p.process(Chunk(x[half + lost: half + lost + 180], fs, time.perf_counter(), gap=True, lost=lost))
    ev2 += run_chunks(p, x[half + lost + 180:], fs, [180])
    assert p.counters["gaps"] == 1
    assert p.counters["lost_samples"] == lost
    assert p.counters["dropped_at_gap"] == pending_before
    # stream time kept, and no phantom beats: every beat after the gap is a true beat
    t_true = s / fs
    gap_lo, gap_hi = half / fs, (half + lost) / fs
    assert len(ev2) > 30
    assert all(np.min(np.abs(t_true - e.time_s)) < 0.05 for e in ev2), [e.time_s for e in ev2]
    assert all(e.time_s >= gap_hi for e in ev2)
    # nothing inside the gap; the beats dropped at the gap were those short of their right context
    assert not [e for e in ev1 + ev2 if gap_lo < e.time_s < gap_hi]
    assert all(e.time_s < gap_lo - p.window.post_s + 0.01 for e in ev1)
    # RR history restarted: the first beat after the gap has no heart rate (no RR across the gap)
    assert ev2[0].hr_bpm is None


def run_chunks_no_finish(pipeline, x, fs, sizes):
    events, i = [], 0
    while i < len(x):
        n = sizes[0]
        events += pipeline.process(Chunk(x[i:i + n], fs, time.perf_counter()))
        i += n
    return events


def run_with_bad_stretch(pipeline, seed, bad_s, size=180, fs=360.0, finish=True):
    """60 s of simulated ECG through ``pipeline`` in chunks of ``size``, the samples between
    ``bad_s = (start, end)`` seconds flagged unusable (lead-off); returns ``(events, bad mask)``."""
    x, _, _ = simulate_ecg(60.0, fs=fs, seed=seed)
    bad = np.zeros(len(x), dtype=bool)
    bad[int(bad_s[0] * fs): int(bad_s[1] * fs)] = True
    events = []
    for i in range(0, len(x), size):
        events += pipeline.process(Chunk(x[i:i + size], fs, time.perf_counter(), bad=bad[i:i + size]))
    return (events + pipeline.finish() if finish else events), bad


def test_lead_off_flag_means_no_classification():
    p = StreamPipeline(FakeClassifier())
    events, bad = run_with_bad_stretch(p, seed=4, bad_s=(20, 30), size=90)
    skipped = [e for e in events if e.skipped]
    assert skipped and all(e.label is None and not e.probs for e in skipped)
    # every beat whose window touches the flagged stretch is unclassified, the others are not
    w = p.window
    for e in events:
        touches = e.time_s + w.post_s + 0.01 > 20.0 and e.time_s - w.pre_s - 0.01 < 30.0
        if touches:
            assert e.label is None, e
        elif e.time_s - w.pre_s > 30.05 or e.time_s + w.post_s < 19.95:
            assert e.label is not None, e
    assert p.counters["skipped_quality"] == len(skipped)
    assert p.counters["bad_samples"] == int(bad.sum())


def test_flat_and_saturated_signal_are_not_classified():
    fs = 360.0
    x, _, _ = simulate_ecg(60.0, fs=fs, seed=6)
    adc = np.round(x * 200 + 512)
    adc[int(20 * fs): int(28 * fs)] = 512  # flat line
    adc[int(40 * fs): int(46 * fs)] = 1023  # saturated at the rail
    p = StreamPipeline(FakeClassifier())
    events = run_chunks(p, adc, fs, [180])
    for e in events:
        if 21.0 < e.time_s < 27.0 or 41.0 < e.time_s < 45.0:
            assert e.label is None
    assert p.counters["bad_samples"] > 0


def test_memory_is_bounded_on_a_long_stream():
    fs = 360.0
    p = StreamPipeline(FakeClassifier())
    from edge_ecg.stream.simulate import EcgSimulator

    sim = EcgSimulator(fs, seed=7)
    sizes = []
    ref = ReferenceLabeller()
    for _ in range(300):  # 10 minutes in 2 s chunks
        x, truth = sim.generate(720)
        chunk = Chunk(x, fs, time.perf_counter(), truth=[(b.sample, b.label) for b in truth])
        ref.on_chunk(chunk)
        for ev in p.process(chunk):
            ref.on_event(ev)
        sizes.append((p.seg.buf.size, len(p.seg.pending), len(p._arrivals), len(ref.matcher)))
    sizes = np.array(sizes)
    assert sizes[-50:, 0].max() <= sizes[20:60, 0].max() + 10  # the cleaned-signal buffer does not grow
    assert sizes[:, 0].max() < 20 * p.window.fs
    assert sizes[:, 1].max() < 10
    assert p.counters["beats"] > 600
    # ground truth: the simulator's labels travel with the events
    assert ref.counters["truth_matched"] >= p.counters["beats"] - 2


def test_beat_latency_is_measured_from_r_peak_arrival():
    fs = 360.0
    x, _, _ = simulate_ecg(30.0, fs=fs, seed=8)
    p = StreamPipeline(FakeClassifier())
    t0 = 1000.0  # fake arrival clock: sample i arrives at t0 + i / fs
    events = []
    for i in range(0, len(x), 36):
        ch = Chunk(x[i:i + 36], fs, t0 + (i + 36) / fs)
        events += p.process(ch)
    assert events
    # with a fake clock in the past, latency = now - arrival; differences between beats must
    # equal differences in their R-peak arrival times (to a chunk)
    lat = np.array([e.latency_ms for e in events])
    t = np.array([e.time_s for e in events])
    assert np.all(np.abs(np.diff(lat) / 1000.0 + np.diff(t)) < 0.1 + 36 / fs)


def test_latency_stats_and_timer():
    s = LatencyStats(capacity=100)
    s.add_many(np.arange(1, 1001) / 1000.0)
    out = s.summary_ms()
    assert out["count"] == 1000 and out["max"] == 1000.0
    assert 300 < out["p50"] < 700  # a reservoir sample of 100 of the 1000
    timer = StageTimer()
    with timer.time("detect"):
        time.sleep(0.01)
    assert timer.summary_ms()["detect"]["p50"] >= 9.0
    assert LatencyStats().summary_ms()["p50"] is None


def test_beat_event_json():
    ev = BeatEvent(time_s=1.23456, sample=444, model_sample=222, label="V", probs={"N": 0.1, "V": 0.9},
                   latency_ms=1001.23456, hr_bpm=75.04, truth="V")
    d = ev.to_dict()
    assert d["label"] == "V" and d["probs"]["V"] == 0.9 and d["latency_ms"] == 1001.235 and d["truth"] == "V"


def test_beats_inside_a_bad_stretch_break_the_rr_history():
    p = StreamPipeline(FakeClassifier(), collect_windows=True)
    # lead-off from 25 to 32 s: the detector may still see the QRS complexes
    events, _ = run_with_bad_stretch(p, seed=10, bad_s=(25, 32), finish=False)
    inside = [e for e in events if 25.2 < e.time_s < 31.8]
    assert inside and all(e.label is None and e.hr_bpm is None for e in inside)
    after = [e for e in events if e.time_s > 32.2]
    assert after[0].hr_bpm is None  # RR history restarted after the stretch
    assert all(e.hr_bpm is not None for e in after[1:])


class HistoryClassifier(FakeClassifier):
    """A classifier with beat history (variant (b)): logs resets and batch sizes in order."""

    def __init__(self):
        super().__init__()
        self.events = []

    def reset(self):
        self.events.append("reset")

    def predict_batch(self, X, rr):
        self.events.append(len(X))
        return super().predict_batch(X, rr)


def test_a_sequence_classifier_is_reset_at_the_start_and_at_every_gap():
    """A classifier with history (variant (b)) never sees a sequence spanning a gap."""
    fs = 360.0
    x, _, _ = simulate_ecg(40.0, fs=fs, seed=3)
    clf = HistoryClassifier()
    p = StreamPipeline(clf)
    half = len(x) // 2
    run_chunks_no_finish(p, x[:half], fs, [180])
    assert clf.events[0] == "reset" and clf.events.count("reset") == 1
    lost = int(2 * fs)
    p.process(Chunk(x[half + lost: half + lost + 180], fs, time.perf_counter(), gap=True, lost=lost))
    assert clf.events[-1] == "reset" and clf.events.count("reset") == 2
    run_chunks(p, x[half + lost + 180:], fs, [180])
    assert sum(e for e in clf.events if e != "reset") == p.counters["classified"]


def test_a_sequence_classifier_is_reset_where_a_bad_stretch_broke_the_rr_history():
    clf = HistoryClassifier()
    events, _ = run_with_bad_stretch(StreamPipeline(clf), seed=10, bad_s=(25, 32))
    assert clf.events.count("reset") >= 2  # the start, then at the stretch
    last_break = max(e.time_s for e in events if e.label is None)
    after_last_reset = sum(n for n in clf.events[len(clf.events) - clf.events[::-1].index("reset"):])
    assert after_last_reset == sum(1 for e in events if e.label is not None and e.time_s > last_break)
    assert after_last_reset > 30


def test_the_stream_settings_are_one_stream_config_reported_in_the_summary():
    """Detector, signal-quality and glitch settings reach their stages from one StreamConfig,
    whose defaults are the stages' own, and the summary carries it."""
    import dataclasses
    import inspect

    from edge_ecg.config import StreamConfig, to_dict
    from edge_ecg.signal.detect import QRSDetector
    from edge_ecg.signal.impulse import ImpulseRejector
    from edge_ecg.signal.quality import QualityMonitor

    defaults = StreamConfig()
    for cls, names in ((QRSDetector, {"threshold": "qrs_threshold", "searchback": "qrs_searchback",
                                      "learning_s": "qrs_learning_s"}),
                       (QualityMonitor, {"flat_s": "flat_s", "flat_fraction": "flat_fraction",
                                         "saturation_s": "saturation_s"}),
                       (ImpulseRejector, {"half": "impulse_half", "spread_factor": "impulse_spread_factor",
                                          "amplitude_fraction": "impulse_amplitude_fraction",
                                          "block_s": "impulse_block_s", "blocks": "impulse_blocks"})):
        params = inspect.signature(cls).parameters
        assert {p: params[p].default for p in names} == {p: getattr(defaults, f) for p, f in names.items()}

    config = dataclasses.replace(defaults, qrs_threshold=0.3, flat_s=1.0, impulse_spread_factor=7.0, max_pending=4)
    fs = 360.0
    x, _, _ = simulate_ecg(30.0, fs=fs, seed=3)
    p = StreamPipeline(FakeClassifier(), config=config)
    run_chunks(p, x, fs, [180])
    assert p.seg.detector.threshold == 0.3 and p.seg.rejector.spread_factor == 7.0
    assert p.seg.quality._flat_n == int(round(1.0 * fs))
    assert p.summary()["stream_config"] == to_dict(config)
    assert StreamPipeline(FakeClassifier()).summary()["stream_config"] == to_dict(defaults)
    with pytest.raises(ConfigError):
        StreamConfig(max_pending=0)


def test_every_classifier_states_the_classifier_protocol():
    from edge_ecg.model.predict import KerasClassifier
    from edge_ecg.runtime import Classifier, TFLiteClassifier

    for cls in (TFLiteClassifier, KerasClassifier, FakeClassifier, HistoryClassifier):
        assert Classifier in cls.__mro__  # stated, not only duck-typed
    clf = FakeClassifier()
    assert isinstance(clf, Classifier) and clf.rr_features == clf.window.rr_features
