"""The live page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``)
driven by selenium opens ``stream --web`` against the simulator, a source that is lost and back,
and (with MIT-BIH) a replay of record 208, and checks what a person sees.

Skipped, with the reason, only when chromium, its driver or selenium is missing; ``.ci/run``
installs them. About 20 s in all.
"""

from __future__ import annotations

import time

import pytest
from headless import COUNT_COLOURS_JS, chrome, missing, quit_chrome
from edge_ecg.stream.web.run import WebStream

from edge_ecg.stream.sources import SimulatedSource

try:
    from selenium.common.exceptions import JavascriptException
except ImportError:  # skipped below
    JavascriptException = Exception

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


@pytest.fixture(scope="module")
def browser():
    drv = chrome(1100, 900)
    yield drv
    quit_chrome(drv)


@pytest.fixture(scope="module")
def model():
    from edge_ecg.stream.classifier_files import load_classifier

    try:
        return load_classifier()
    except Exception as exc:  # no interpreter installed
        pytest.skip(f"the shipped model cannot run here: {exc}")


def wait_for(drv, script: str, timeout: float = 15.0, *args):
    """Poll a JavaScript expression until it is truthy; returns its value."""
    t_end = time.monotonic() + timeout
    value = None
    while time.monotonic() < t_end:
        try:
            value = drv.execute_script("return " + script, *args)
        except JavascriptException:  # the page is still loading
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {script!r} (last {value!r})")


def count(drv, cls: str) -> int:
    text = drv.execute_script(f"const e = document.getElementById('count-{cls}'); return e ? e.textContent : '';")
    return int(text[1:] or 0) if text else 0


def test_page_shows_live_beats_labels_counts_events_and_the_end(browser, model):
    source = SimulatedSource(fs=360.0, speed=3.0, duration_s=30.0, seed=3, v_prob=0.2, s_prob=0.1)
    ws = WebStream(source, model).start()
    try:
        browser.get(ws.url)
        wait_for(browser, "window.edgeEcg && window.edgeEcg.state === 'live'")
        wait_for(browser, "document.getElementById('strip').dataset.labels.length >= 3")
        first = count(browser, "N")
        assert first >= 1
        # labels drawn on the strip, in the plot's colours (pixels of N's grey and the signal's ink)
        labels = browser.execute_script("return document.getElementById('strip').dataset.labels")
        assert set(labels) <= set("NSVFQ·")
        grey, ink = browser.execute_script(COUNT_COLOURS_JS, ["#737373", "#1d2330"])
        assert grey > 20 and ink > 200
        # counts rise, the heart rate and latency are shown
        wait_for(browser, f"Number(document.getElementById('count-N').textContent.slice(1)) > {first}")
        assert 40 <= int(browser.find_element("id", "hr").text) <= 140
        assert browser.find_element("id", "lat50").text.isdigit()
        assert browser.find_elements("css selector", "#stages tbody tr")
        # the simulator's ectopic beats are listed as events, with their times
        wait_for(browser, "document.querySelectorAll('#events li.V, #events li.S').length > 0", 20)
        assert browser.find_element("css selector", "#events li.V span, #events li.S span").text.startswith(
            ("V beat", "S beat", "V pair", "S pair", "run of"))
        assert browser.find_element("css selector", "#events li time").text.count(":") == 1
        # the source ends: the page says so
        ws.join(30)
        wait_for(browser, "window.edgeEcg.state === 'ended'")
        assert "stream ended: source ended" in browser.find_element("id", "banner").text
    finally:
        ws.stop()


class LosingSource(SimulatedSource):
    """The simulator, silent (and reported lost, as a serial or BLE source does) from 4 s to 7 s of signal."""

    name = "losing board"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.lost_now = False

    def chunks(self):
        for chunk in super().chunks():
            t = self.sim_t = getattr(self, "sim_t", 0.0) + len(chunk) / self.fs
            if 4.0 <= t < 7.0:
                self.lost_now = True
                self._stop.wait(len(chunk) / self.fs / self.speed)
                continue
            if self.lost_now:
                self.lost_now = False
                chunk.gap = True
            yield chunk

    def stats(self):
        return {**super().stats(), **({"status": "device lost, reconnecting"} if self.lost_now else {})}


def test_a_lost_source_is_shown_lost_then_back(browser, model):
    ws = WebStream(LosingSource(fs=360.0, speed=2.0, duration_s=12.0, seed=2), model).start()
    try:
        browser.get(ws.url)
        wait_for(browser, "window.edgeEcg.state === 'lost'", 10)
        assert "signal lost: device lost" in browser.find_element("id", "banner").text
        assert browser.find_element("id", "quality").text == "lost"
        wait_for(browser, "window.edgeEcg.state === 'live'", 10)
        wait_for(browser, "[...document.querySelectorAll('#events li.gap')].length >= 1", 5)
        texts = browser.execute_script("return [...document.querySelectorAll('#events li')].map(l => l.className)")
        assert "ev lost" in texts and "ev back" in texts
    finally:
        ws.stop()


def test_two_pages_and_the_token(browser, model):
    ws = WebStream(SimulatedSource(fs=360.0, speed=2.0, duration_s=20.0), model, token="test-token-123").start()
    try:
        bare = ws.url.split("?")[0]
        browser.get(bare)
        assert "403" in browser.find_element("tag name", "body").text
        browser.get(ws.url)
        wait_for(browser, "window.edgeEcg.state === 'live'")
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        browser.get(ws.url)
        wait_for(browser, "window.edgeEcg.state === 'live' && document.getElementById('beats').textContent > 0")
        assert ws.web.server.clients == 2
        browser.close()
        browser.switch_to.window(first)
    finally:
        ws.stop()


@pytest.mark.realdata
def test_replay_208_shows_v_beats_in_red(browser, model, mitdb_dir):
    from edge_ecg.stream.sources import ReplaySource, open_replay

    record = open_replay(str(mitdb_dir / "208"))
    ws = WebStream(ReplaySource(record, speed=4.0, start_s=60.0, duration_s=40.0), model).start()
    try:
        browser.get(ws.url)
        wait_for(browser, "Number((document.getElementById('count-V') || {}).textContent?.slice(1)) > 2", 20)
        red = browser.execute_script(COUNT_COLOURS_JS, ["#d62728"])[0]
        assert red > 20
    finally:
        ws.stop()
