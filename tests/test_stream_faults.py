"""What a serial line does to a stream (issue 25): lead-off lines, unreadable lines, a silent
board, a counter column, and the device rate it reports. The board is a fake port object fed
on a schedule (no pty, no subprocess), read by the real sources and pipeline."""

from __future__ import annotations

import time

import numpy as np
from conftest import FakeClassifier

from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.runner import run_stream
from edge_ecg.stream.simulate import EcgSimulator
from edge_ecg.stream.sources import AsciiParser, SerialAsciiSource


class FakePort:
    """A serial port that hands out ``pieces`` (bytes) one every ``period_s`` seconds of wall
    time after ``delay_s``, then nothing (a silent board) or, with ``unplug``, a read error."""

    def __init__(self, pieces, period_s: float, delay_s: float = 0.0, unplug: bool = False):
        self.pieces, self.period_s, self.unplug = list(pieces), period_s, unplug
        self.t0 = time.monotonic() + delay_s
        self.k = 0

    @property
    def in_waiting(self) -> int:
        return 1

    def read(self, n):
        due = int((time.monotonic() - self.t0) / self.period_s) + 1
        if self.k >= len(self.pieces):
            if self.unplug:
                raise OSError(5, "Input/output error")
            time.sleep(0.01)
            return b""
        if due <= self.k:
            time.sleep(min(0.01, self.period_s))
            return b""
        data = b"".join(self.pieces[self.k:min(due, len(self.pieces))])
        self.k = min(due, len(self.pieces))
        return data

    def close(self):
        pass


def ascii_source(pieces, fs, period_s, **kw) -> SerialAsciiSource:
    port_kw = {k: kw.pop(k) for k in ("delay_s", "unplug") if k in kw}
    src = SerialAsciiSource("/dev/fake", fs=fs, **kw)
    port = FakePort(pieces, period_s, **port_kw)
    src._open_port = lambda: port
    return src


def adc_lines(seconds: float, fs: float, seed: int = 0, hr_bpm: float = 75.0) -> list[bytes]:
    x, _ = EcgSimulator(fs=fs, seed=seed, hr_bpm=hr_bpm, s_prob=0.0, v_prob=0.0).generate(int(seconds * fs))
    return [f"{int(v)}\r\n".encode() for v in np.clip(np.round(512 + 200 * x), 0, 1023)]


def pieces_of(lines, step):
    return [b"".join(lines[i:i + step]) for i in range(0, len(lines), step)]


def run_board(src, seconds, **kw):
    pipe = StreamPipeline(FakeClassifier())
    events = []
    summary = run_stream(src, pipe, duration_s=seconds, on_event=events.append, **kw)
    return summary, events


# --------------------------------------------------------------------------- 1: "!" lead-off lines


def test_parser_keeps_a_slot_for_lead_off_and_bad_lines():
    p = AsciiParser()
    p.reset()  # not a fresh connection: no half line to drop
    values, bad = p.feed_slots(b"500\n!\n!\r\nabc\n510\nx\ny\n")
    np.testing.assert_array_equal(values, [500, 500, 500, 500, 510, 510, 510])
    np.testing.assert_array_equal(bad, [False, True, True, False, False, False, False])  # 1-2 bad lines: held
    values, bad = p.feed_slots(b"z\nw\n511\n")  # the run goes on across reads: from the 3rd on, flagged
    np.testing.assert_array_equal(bad, [True, True, False])
    assert (p.lead_off_lines, p.bad_lines, p.lines) == (2, 5, 10)
    np.testing.assert_array_equal(p.feed(b"!\n520\n"), [520])  # feed() gives the good values only


def test_ascii_lead_off_lines_are_flagged_and_beats_around_them_unclassified():
    """What `edge-ecg emulate --format ascii --lead-off-every 4 --lead-off-for 1` sends."""
    fs = 250.0
    lines = adc_lines(12.0, fs)
    for k in range(len(lines)):
        if (k / fs) % 4.0 >= 3.0:  # 1 s lead-off every 4 s
            lines[k] = b"!\r\n"
    src = ascii_source(pieces_of(lines, 25), fs, 0.1 * 25 / fs, check_rate_s=None)  # 10x real time
    s, events = run_board(src, 11.5, threaded=True)
    assert s["ended"] == "duration reached", s["ended"]
    st = s["source_stats"]
    assert st["lead_off_lines"] >= 500 and st["bad_lines"] == 0
    sent = sum(line == b"!\r\n" for line in lines[:int(11.5 * fs)])
    assert sent - 3 <= s["bad_samples"] <= sent  # every lead-off slot flagged (3 may wait in the glitch rejector)
    assert s["samples"] >= int(11.5 * fs) - 1  # time kept: one sample per line
    skipped = [e for e in events if e.skipped]
    assert skipped and all(e.label is None for e in skipped)
    for e in events:  # a beat within a lead-off second or its window is never labelled
        if (e.time_s % 4.0) > 3.0 + 0.1:
            assert e.label is None, e


# --------------------------------------------------------------------------- 2: unreadable lines keep time


def test_unreadable_lines_keep_their_time_slot_and_are_flagged():
    fs = 360.0
    lines = adc_lines(14.0, fs, seed=3, hr_bpm=75.0)
    rng = np.random.default_rng(0)
    for k in rng.choice(len(lines), int(0.35 * len(lines)), replace=False):
        lines[k] = b"abc\r\n"  # 35 % of lines unreadable
    src = ascii_source(pieces_of(lines, 36), fs, 0.2 * 36 / fs, check_rate_s=None)  # 5x real time
    s, events = run_board(src, 13.0, threaded=True)
    assert s["ended"] == "duration reached", s["ended"]  # not "the device sends about 233 samples/s"
    assert s["source_stats"]["bad_lines"] >= 0.33 * s["samples"]
    assert s["bad_samples"] >= 0.05 * s["samples"]  # quality knows: runs of 3+ unreadable lines are flagged
    t = np.array([e.time_s for e in events])
    hr = 60.0 / np.median(np.diff(t))
    assert abs(hr - 75.0) < 3.0, hr  # time kept: not 91-96 bpm
    assert 0.9 * 5 * fs < s["received_hz"] < 1.1 * 5 * fs  # the rate of lines (5x real time), not of good values


def lead_off_every_4_s(lines, fs):
    return [b"!\r\n" if (k / fs) % 4.0 >= 3.0 else line for k, line in enumerate(lines)]


def test_the_rate_check_counts_lead_off_and_bad_lines_as_samples():
    """Lines arriving at 250 (360) per second are 250 (360) samples/s, whatever they hold."""
    for fs, lines in ((250.0, lead_off_every_4_s(adc_lines(8.0, 250.0), 250.0)),
                      (360.0, [b"abc\n" if k % 3 == 0 else ln for k, ln in enumerate(adc_lines(8.0, 360.0))])):
        src = ascii_source([], fs, 1.0, check_rate_s=3.0)
        src.reset_parser(first=False)
        for k, piece in enumerate(pieces_of(lines, 10)):
            src.parse(piece, 100.0 + (k + 1) * 10 / fs)  # arrival times of a real-time board
        assert src._rate_checked  # checked, and no DeviceError


# --------------------------------------------------------------------------- 3: the device rate


def test_device_rate_excludes_start_up_and_disconnect_detection():
    import threading

    fs = 250.0
    lines = adc_lines(6.0, fs)
    # the board starts talking 1 s after the port opens, sends 6 s of signal at 4x (1.5 s) and is
    # unplugged; the run is stopped 1.5 s later, while the source retries
    src = ascii_source(pieces_of(lines, 25), fs, 25 / fs / 4, delay_s=1.0, unplug=True, check_rate_s=None,
                       backoff_s=0.2)
    opened = []
    real_open = src._open_port
    src._open_port = lambda: real_open() if not opened.append(1) and len(opened) == 1 else 1 / 0
    timer = threading.Timer(4.0, src.stop)
    timer.start()
    s, _ = run_board(src, 60.0, threaded=True, max_chunks=4096)
    timer.cancel()
    assert s["source_stats"]["disconnects"] == 1
    assert abs(s["received_hz"] - 4 * fs) / (4 * fs) < 0.08, s["received_hz"]  # not ~600 samples/s


# --------------------------------------------------------------------------- 4: silence and counters


def test_a_silent_board_says_so_in_status_and_summary():
    from edge_ecg.stream.view import format_summary

    src = ascii_source([], 250.0, 1.0)
    src.open()
    src.opened_at -= 3.0  # opened 3 s ago, nothing since
    assert src.status() == "no data from /dev/fake for 3 s"
    st = src.stats()
    assert st["silent_s"] >= 3.0 and st["status"].startswith("no data from /dev/fake")
    summary = {"source": "x", "beats": 0, "counts": {}, "skipped_quality": 0, "gaps": 0, "dropped_at_gap": 0,
               "lost_samples": 0, "bad_samples": 0, "source_stats": st}
    assert "no data from /dev/fake for 3 s" in format_summary(summary)
    src.stop()
    src.close()  # the end of the run: the summary, made after closing, still says it
    assert src.stats()["status"] == "no data from /dev/fake for 3 s"


def test_a_millis_column_is_detected_with_a_column_hint():
    fs = 250.0
    x = adc_lines(4.0, fs)
    lines = [f"{4 * k},{v.decode().strip()},0\n".encode() for k, v in enumerate(x)]
    src = ascii_source([], fs, 1.0, check_rate_s=None)
    src.reset_parser(first=False)
    for piece in pieces_of(lines, 50):
        src.parse(piece, time.perf_counter())
    assert src.column_hint and "--column 1" in src.column_hint
    assert "--column 1" in src.status()
    good = ascii_source([], fs, 1.0, check_rate_s=None, column=1)  # the right column: no hint
    for piece in pieces_of(lines, 50):
        good.parse(piece, time.perf_counter())
    assert good.column_hint is None


# --------------------------------------------------------------------------- 11: the soak, short


def test_a_short_soak_accounts_for_every_beat_and_its_counters_add_up(monkeypatch, tmp_path):
    import benchmarks.soak as soak

    monkeypatch.setattr(soak, "UNPLUG_EVERY_S", 150.0)
    monkeypatch.setattr(soak, "LEAD_OFF_EVERY_S", 100.0)
    monkeypatch.setattr(soak, "WARMUP_S", 60.0)
    r = soak.soak(400.0, workdir=tmp_path)
    assert r["all_checks_pass"], r["checks"]
    sent = r["board"]["sent"]
    assert sent["unplugs"] == 2 and sent["lead_off_lines"] == 4 * 5 * 360 and sent["glitches"] > 40
    assert r["beats"]["sensitivity_outside_faults"] > 0.99
    assert "counters that add up" in soak.render(r)
