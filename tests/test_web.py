"""``stream --web`` without a browser: the bounded hub, what the page lists, the server's rules
(localhost by default, token, GET only, busy port, client limit) and a stalled client."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from conftest import FakeClassifier
from edge_ecg.stream.web.run import WebStream

from edge_ecg.errors import ConfigError
from edge_ecg.stream.events import BeatEvent
from edge_ecg.stream.sources import SimulatedSource
from edge_ecg.stream.web.hub import Hub, class_colors, css_color
from edge_ecg.stream.web.notable import Notable
from edge_ecg.stream.web.run import open_web
from edge_ecg.stream.web.server import WebServer, is_loopback, parse_bind


def _get(url: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_parse_bind_defaults_to_this_machine():
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_bind("[::1]:8080") == ("::1", 8080)
    for bad in ("http", "-1", "70000", ":8080", "host:"):
        with pytest.raises(ConfigError, match="--web"):
            parse_bind(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_colours_are_the_plots():
    assert css_color("0.45") == "#737373" and css_color("tab:red") == "#d62728"
    assert set(class_colors()) == {"N", "S", "V", "F", "Q"}


def test_hub_ring_is_bounded_and_a_slow_reader_skips():
    hub = Hub(ring=8)
    for k in range(100):
        hub.publish("tick", {"strip": {"i0": 10 * k, "fs": 10.0, "v": [0.0] * 10}, "beats": [{"i": 10 * k}],
                             "events": []})
    assert len(hub._ring) == 8
    messages, skipped = hub.read(after=0, timeout=0)
    assert len(messages) == 8 and skipped == 92
    _, state = hub.snapshot()
    assert len(state["strips"]) <= 13  # history_s (12 s) at 10 samples a message
    assert len(hub._encoded) <= 16


def _beat(t, label, hr=75.0):
    return BeatEvent(time_s=t, sample=int(t * 360), model_sample=int(t * 180), label=label, hr_bpm=hr)


def test_notable_runs_pauses_and_loss():
    n = Notable()
    evs = n.beats([_beat(1, "N"), _beat(2, "V"), _beat(3, "N"), _beat(4, "S"), _beat(5, "S"), _beat(6, "N"),
                   _beat(7, "V", 150), _beat(7.4, "V", 150), _beat(7.8, "V", 150), _beat(8.5, "N"),
                   _beat(11.5, "N", 20.0)])
    texts = [e["text"] for e in evs]
    assert texts[:3] == ["V beat (ventricular ectopic)", "S pair (2 supraventricular beats)",
                         "run of 3 V beats at 150 bpm"]
    assert texts[3] == "pause 3.0 s" and evs[3]["t"] == 8.5
    fields = {"status": "device lost, reconnecting (2 s)", "gaps": 0, "skipped": 0, "glitches": 0}
    assert [e["kind"] for e in n.status(12.0, fields, None)] == ["lost"]
    assert n.status(13.0, fields, None) == []
    back = n.status(14.0, {**fields, "status": None, "gaps": 1}, {"ready_cells": 1, "adapted_pct": 5, "beats": 40})
    assert [e["kind"] for e in back] == ["back", "gap", "adapt"]
    assert n.ended(20.0, "source ended")[-1]["text"] == "stream ended: source ended"


def test_server_rules_localhost_token_get_only():
    run = open_web("127.0.0.1:0", None)
    try:
        assert run.server.token is None and run.url.startswith("http://127.0.0.1:")
        run.server.start()
        base = run.url.rstrip("/")
        status, body = _get(base + "/")
        assert status == 200 and b"<canvas" in body
        assert _get(base + "/app.js")[0] == 200 and _get(base + "/nope")[0] == 404
        for method in ("POST", "PUT", "DELETE"):
            assert _get(base + "/", method)[0] == 405
    finally:
        run.server.stop()
    # beyond localhost: a random token, and 403 without it (bound on loopback here, token forced)
    server = WebServer(Hub(), "127.0.0.1", 0, token="s3cret-token").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/")[0] == 403 and _get(base + "/state?token=wrong-token")[0] == 403
        status, body = _get(base + "/state?token=s3cret-token")
        assert status == 200 and json.loads(body)["strips"] == []
    finally:
        server.stop()
    wide = WebServer(Hub(), "0.0.0.0", 0)
    assert wide.token and len(wide.token) >= 16 and f"?token={wide.token}" in wide.url


def test_busy_port_and_bad_address_are_one_line_before_the_stream(tmp_path):
    from edge_ecg.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = CliRunner().invoke(main, ["stream", "--simulate", "--web", str(port), "--duration", "1"])
        assert res.exit_code == 1 and f"port {port} is busy" in res.output and "live page" not in res.output
    res = CliRunner().invoke(main, ["stream", "--simulate", "--web", "192.0.2.7:8080", "--duration", "1"])
    assert res.exit_code == 1 and "not an address of this machine" in res.output
    res = CliRunner().invoke(main, ["stream", "--simulate", "--web-token", "abcdefgh12"])
    assert res.exit_code == 1 and "--web-token needs --web" in res.output
    res = CliRunner().invoke(main, ["stream", "--simulate", "--web", "8080", "--web-token", "a b"])
    assert res.exit_code == 1 and "--web-token: 8-128 characters" in res.output


def test_stalled_and_extra_clients_never_slow_the_stream():
    """A browser that connects and never reads, plus one over the limit: the stream runs at the
    same pace, the server's memory is the ring's, and the stalled one is let go."""
    source = SimulatedSource(fs=360.0, speed=8.0, duration_s=24.0, seed=1)
    ws = WebStream(source, FakeClassifier())
    ws.web.server.max_clients = 2
    ws.web.server.send_timeout_s = 0.5
    ws.start()
    base = ws.url.rstrip("/")
    stalled = socket.create_connection(("127.0.0.1", ws.web.server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
    live = urllib.request.urlopen(base + "/events", timeout=10)
    assert live.readline().startswith(b"event: hello")
    time.sleep(0.3)
    assert _get(base + "/events", timeout=3)[0] == 503  # a third page: refused, not queued
    t0 = time.perf_counter()
    summary = ws.join(30)
    wall = time.perf_counter() - t0
    try:
        assert summary["ended"] == "source ended" and summary["beats"] > 20
        assert summary["dropped_samples"] == 0 and wall < 6.0  # 24 s at 8x: about 3 s
        assert len(ws.web.hub._ring) <= ws.web.hub._ring.maxlen
        assert ws.web.server.counters["refused_busy"] == 1
        for _ in range(50):  # the stalled page is dropped once its socket stops taking data
            if ws.web.server.clients <= 1:
                break
            time.sleep(0.1)
        assert ws.web.server.clients <= 1
    finally:
        stalled.close()
        live.close()
        ws.stop()


def test_device_side_modules_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys\n"
            "import edge_ecg.stream.web.server, edge_ecg.stream.web.hub, edge_ecg.stream.web.run, edge_ecg.stream.sources.ble\n"
            "import edge_ecg.cli.devices, edge_ecg.cli.stream\n"
            "from edge_ecg.stream.web.hub import class_colors; class_colors()\n"
            "print(','.join(m for m in ('tensorflow', 'scipy', 'wfdb', 'matplotlib', 'bleak', 'selenium') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
