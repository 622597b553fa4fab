"""Serial glitches: the impulse rejector alone, then inside the stream pipeline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_ecg.signal.impulse import ImpulseRejector, impulse_floor
from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.simulate import simulate_ecg
from edge_ecg.stream.sources import Chunk

from conftest import FakeClassifier

FS = 250.0


def adc_signal(seconds=40.0, seed=3):
    x, s, labels = simulate_ecg(seconds, fs=FS, seed=seed, s_prob=0.1, v_prob=0.15)
    return np.round(1024 + 200 * x), s, labels


def run(rej: ImpulseRejector, x, sizes=(7,), flags=None):
    out, fl, i, k = [], [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        y, f = rej.process(x[i:i + n], None if flags is None else flags[i:i + n])
        out.append(y)
        fl.append(f)
        i, k = i + n, k + 1
    y, f = rej.flush()
    return np.concatenate(out + [y]), np.concatenate(fl + [f])


def merged(v: float) -> float:
    """``5`` then ``v`` on the next line, read as one line."""
    return float("5" + str(int(v)))


def test_clean_ecg_passes_unchanged_in_any_chunking():
    x, _, _ = adc_signal()
    for sizes in ((1,), (3, 250, 11), (x.size,)):
        rej = ImpulseRejector(FS, floor=impulse_floor(x, "adc"))
        y, _ = run(rej, x, sizes)
        np.testing.assert_array_equal(y, x)
        assert rej.count == 0


@pytest.mark.parametrize("where", [0, 1, 2, 40, 275, 1000, 5003, -1])
def test_a_single_glitch_is_replaced_at_any_moment(where):
    x, _, _ = adc_signal()
    bad = x.copy()
    k = where % x.size
    bad[k] = merged(x[k])
    rej = ImpulseRejector(FS, floor=impulse_floor(x, "adc"))
    y, _ = run(rej, bad, (5, 64))
    assert rej.count == 1
    changed = np.flatnonzero(y != x)
    assert set(changed.tolist()) <= {k}
    assert abs(y[k] - x[k]) < 0.5 * np.ptp(x)  # back among its neighbours


def test_glitch_kinds_and_two_sample_glitches():
    x, _, _ = adc_signal()
    bad = x.copy()
    places = {500: 9999.0, 1500: -300.0, 2500: x[2500] + 1500, 3500: merged(x[3500])}
    for k, v in places.items():
        bad[k] = v
    bad[4500], bad[4501] = 4095, 4095  # two wild samples in a row
    rej = ImpulseRejector(FS, floor=impulse_floor(x, "adc"))
    y, _ = run(rej, bad, (13,))
    assert rej.count == len(places) + 2
    assert np.max(np.abs(y - x)) < 0.5 * np.ptp(x)


def test_steps_flags_and_latency():
    x, _, _ = adc_signal(10.0)
    step = x.copy()
    step[1000:] += 800  # an electrode moved: a step, not a glitch
    step[1500:1600] = 4095  # lead-off at the rail
    flags = np.zeros(x.size, bool)
    flags[1800] = True
    step[1800] = 9999  # flagged by the device: left for the quality gate
    rej = ImpulseRejector(FS, floor=impulse_floor(x, "adc"))
    first, _ = rej.process(step[:10])
    assert first.size == 10 - rej.delay == 7  # three samples of look-ahead
    rest, _ = run(rej, step[10:], (9,), flags[10:])
    y = np.concatenate([first, rest])
    np.testing.assert_array_equal(y, step)
    assert rej.count == 0


def test_millivolts_and_floor():
    x, _, _ = simulate_ecg(20.0, fs=360.0, seed=5)
    assert impulse_floor(x, "mV") == 1.0 and impulse_floor(x, "adc", gain=200.0) == 200.0
    assert impulse_floor(np.round(x * 200), "adc") == 128.0 and impulse_floor(x, "adc") == 0.0
    bad = x.copy()
    bad[400] += 6.0
    rej = ImpulseRejector(360.0, floor=1.0)
    y, _ = run(rej, bad, (36,))
    assert rej.count == 1 and np.array_equal(np.flatnonzero(y != x), [400])


# --------------------------------------------------------------------------- in the stream


def stream(x, glitches=(), gap_at=None, sizes=(5,)):
    """Run ADC samples through a StreamPipeline (FakeClassifier); glitches replace samples."""
    y = x.copy()
    for k in glitches:
        y[k] = merged(y[k])
    p = StreamPipeline(FakeClassifier(), collect_windows=True)
    events, i, k = [], 0, 0
    while i < y.size:
        n = sizes[k % len(sizes)]
        gap = gap_at is not None and i <= gap_at < i + n
        if gap:
            n = gap_at - i
        if n:
            events += p.process(Chunk(y[i:i + n], FS, time.perf_counter(), units="adc"))
        if gap:
            events += p.process(Chunk(y[gap_at:gap_at + 5], FS, time.perf_counter(), units="adc", gap=True))
            n += 5
        i, k = i + n, k + 1
    return events + p.finish(), p


@pytest.mark.slow  # ~4 s on a loaded 2-core machine: a minute of ECG streamed twice
def test_glitches_in_the_learning_phase_cost_no_beat_and_change_no_window():
    x, _, _ = adc_signal(60.0, seed=4)
    gap = int(30.0 * FS)
    glitches = [int(FS * t) for t in (0.01, 0.4, 1.1, 1.9, 7.3, 13.6, 20.2)] + [gap + 3, gap + int(1.1 * FS)]
    clean_ev, clean = stream(x, gap_at=gap)
    bad_ev, bad = stream(x, glitches, gap_at=gap)
    assert bad.counters["impulses"] == len(glitches) and clean.counters["impulses"] == 0
    assert [e.sample for e in bad_ev] == [e.sample for e in clean_ev]
    assert [e.label for e in bad_ev] == [e.label for e in clean_ev]
    summary = bad.summary()
    assert summary["impulses"] == len(glitches)
    touched = [e for e in bad_ev if e.glitches]
    assert touched and all("glitches" in e.to_dict() for e in touched)
    w = bad.window
    near = [any(-w.pre_s - 0.01 <= (g / FS - e.time_s) <= w.post_s + 0.01 for g in glitches) for e in bad_ev]
    assert [bool(e.glitches) for e in bad_ev] == near  # counted in exactly the windows they touch


@pytest.mark.slow  # ~2 s on a loaded 2-core machine
def test_without_the_rejector_one_glitch_costs_beats(monkeypatch):
    """The failure the rejector exists for (issue 18): one glitch while the detector learns."""
    x, _, _ = adc_signal(30.0, seed=4)
    clean_ev, _ = stream(x)
    monkeypatch.setattr(ImpulseRejector, "_replace", lambda self, *a: None)
    bad_ev, _ = stream(x, [int(1.1 * FS)])
    assert len(bad_ev) < 0.9 * len(clean_ev)


@pytest.mark.slow
@pytest.mark.realdata
def test_clean_mitdb_records_pass_unchanged(mitdb_dir, tmp_path):
    """tools/impulses.py on a noisy record (105) and the bigeminy one (200): nothing replaced."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "impulses.json"
    proc = subprocess.run([sys.executable, "tools/impulses.py", "--data-root", str(mitdb_dir.parent), "--records",
                           "105", "200", "--out", str(out)], cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = json.loads(out.read_text())["total"]
    assert total["samples"] == 2 * 650000 and all(v == 0 for k, v in total.items() if k != "samples")
