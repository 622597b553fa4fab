"""The Polar H10 path without a strap: PMD frames built to Polar's published format, and the whole
stream driven through a fake bleak client (:mod:`fake_ble`) that replays ECG at 130 Hz with drop-outs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import FakeClassifier
from fake_ble import Air

from edge_ecg.errors import ConfigError, DeviceError
from edge_ecg.stream.sources import ble as B
from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.runner import run_stream
from edge_ecg.stream.simulate import EcgSimulator


def test_decode_a_frame_of_the_published_format():
    # type 0x00 (ECG), timestamp 8 bytes LE (ns), frame type 0, then 3-byte signed LE µV samples
    raw = bytes([0x00]) + (123456789012345678).to_bytes(8, "little") + bytes([0x00]) \
        + bytes([0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x80, 0x2C, 0x01, 0x00])
    f = B.decode_ecg_frame(raw)
    assert f.timestamp_ns == 123456789012345678
    assert f.samples_uv.tolist() == [1, -1, (1 << 23) - 1, -(1 << 23), 300]


@pytest.mark.parametrize("ts", [0, 1, 2**32 + 5, 2**63, 2**64 - 1])
@pytest.mark.parametrize("n", [1, 73, 80])
def test_encode_decode_round_trip_edge_cases(ts, n):
    x = np.random.default_rng(n).integers(-(1 << 23), 1 << 23, n)
    f = B.decode_ecg_frame(B.encode_ecg_frame(ts, x))
    assert f.timestamp_ns == ts and f.samples_uv.tolist() == x.tolist()


@pytest.mark.parametrize("raw, why", [
    (b"", "shorter than a frame header"),
    (bytes(9), "shorter than a frame header"),
    (bytes(10), "not a positive multiple of 3"),  # a header, no samples
    (bytes(10) + b"\x01\x02", "not a positive multiple of 3"),
    (bytes([0x02]) + bytes(9) + bytes(6), "not ECG"),  # ACC
    (bytes(9) + bytes([0x80]) + bytes(6), "compressed"),
    (bytes(9) + bytes([0x01]) + bytes(6), "only 0"),
])
def test_malformed_frames_raise_frame_error(raw, why):
    with pytest.raises(B.FrameError, match=why):
        B.decode_ecg_frame(raw)


def test_start_request_and_answers():
    assert B.START_ECG == bytes.fromhex("02000001820001010e00")  # ECG, 130 Hz, 14 bits
    assert B.parse_control_answer(bytes.fromhex("f002000000")) == (2, 0, 0)
    with pytest.raises(B.FrameError):
        B.parse_control_answer(b"\x0f\x05")
    assert B.parse_device("ble:a0:9e:1a:00:00:01") == "A0:9E:1A:00:00:01" and B.parse_device("ble:") is None


@pytest.mark.parametrize("exc, fix", [
    (FileNotFoundError(2, "No such file or directory"), "systemctl start bluetooth"),
    (Exception("No Bluetooth adapters found."), "no Bluetooth adapter"),
    (PermissionError("denied"), "usermod -aG bluetooth"),
    (Exception("[org.freedesktop.DBus.Error.AccessDenied] Rejected send message"), "usermod -aG bluetooth"),
    (Exception("[org.bluez.Error.NotReady] Resource Not Ready"), "bluetoothctl power on"),
    (ModuleNotFoundError("No module named 'bleak'", name="bleak"), "pip install 'edge-ecg[ble]'"),
])
def test_bluetooth_failures_are_one_line_naming_the_fix(exc, fix):
    msg = str(B.ble_error(exc, "ble:X"))
    assert fix in msg and "\n" not in msg


def _sim_uv(seconds: float, seed: int = 0) -> np.ndarray:
    x, _ = EcgSimulator(fs=130.0, seed=seed).generate(int(seconds * 130))
    return np.round(x * 1000).astype(np.int64)


def _source(air: Air, **kw) -> B.BleStrapSource:
    kw = {"stall_s": 0.3, "backoff_s": 0.05, "max_backoff_s": 0.2, "no_ecg_s": 1.0, **kw}
    return B.BleStrapSource("A0:9E:1A:00:00:01", client_factory=air.factory, **kw)


def _run(air, source, max_wall_beats=None):
    pipeline = StreamPipeline(FakeClassifier())
    summary = run_stream(source, pipeline, duration_s=len(air.x) / 130.0 - 1.0, max_beats=max_wall_beats)
    return pipeline, summary


def test_whole_stream_through_a_fake_strap_with_a_dropout_and_bad_frames():
    """60 s at 130 Hz (20x real time), out of range from 20 s to 26 s, every 15th frame cut."""
    air = Air(_sim_uv(60.0), speed=20.0, dropouts=[(20.0, 26.0)], bad_every=15, battery=90)
    source = _source(air)
    pipeline, summary = _run(air, source)
    st = summary["source_stats"]
    assert summary["device"] and summary["fs"] == 130.0
    assert st["disconnects"] == 1 and st["reconnects"] == 1 and air.refused >= 1
    assert st["bad_frames"] >= 5 and st["battery_pct"] == 90
    # the gap: counted once by the pipeline (detector restarted), its size from the timestamps
    # (a cut frame is a frame lost: its 73 samples are a gap too, counted from the next timestamp)
    assert summary["gaps"] == st["frame_gaps"] == 1 + st["bad_frames"]
    cut = 73 * st["bad_frames"]
    assert 6.0 * 130 - 2 * 73 + cut <= st["lost_samples"] <= 9.0 * 130 + cut
    assert summary["lost_samples"] == st["lost_samples"]
    # beats before and after the drop-out, at the simulator's rate (72 bpm), and none across it
    beats = [ev for ev in pipeline.last_events]
    assert summary["beats"] >= 45 and beats[-1].time_s > 40
    assert summary["stream_s"] > 55


def test_strap_with_heart_rate_but_no_ecg_is_one_line():
    air = Air(_sim_uv(10.0), pmd=False)
    with pytest.raises(DeviceError, match="streams heart rate but not ECG"):
        _source(air).open(timeout_s=5)
    air = Air(_sim_uv(10.0), ecg=False)  # PMD present, ECG not among its features
    with pytest.raises(DeviceError, match="streams heart rate but not ECG"):
        _source(air).open(timeout_s=5)


def test_refused_start_and_out_of_range_at_start_are_one_line():
    with pytest.raises(DeviceError, match="refused to start ECG \\(invalid sample rate\\)"):
        _source(Air(_sim_uv(10.0), answer=8)).open(timeout_s=5)
    with pytest.raises(DeviceError, match="was not found"):
        _source(Air(_sim_uv(10.0), dropouts=[(0.0, 1e9)])).open(timeout_s=5)


def test_low_battery_is_warned_once(caplog):
    air = Air(_sim_uv(12.0), battery=9)
    with caplog.at_level(logging.WARNING, logger="edge_ecg.stream.sources.ble"):
        _, summary = _run(air, _source(air))
    assert summary["source_stats"]["battery_low"] == 1
    assert sum("battery low (9 %)" in r.getMessage() for r in caplog.records) == 1


def test_ble_options_and_devices_without_bluetooth(monkeypatch):
    from edge_ecg.cli import main

    for args, msg in ((["--fs", "250"], "130 Hz"), (["--format", "binary"], "leave --format out"),
                      (["--column", "1"], "one ECG channel")):
        res = CliRunner().invoke(main, ["stream", "--device", "ble:", *args])
        assert res.exit_code == 1 and msg in res.output, res.output
    with pytest.raises(ConfigError):
        B.check_ble_options("ascii", 131.0, 0)
    # this machine has no Bluetooth at all: one line naming the fix, exit 0
    res = CliRunner().invoke(main, ["devices", "--scan-s", "1"])
    assert res.exit_code == 0 and "serial ports" in res.output
    assert "BLE:" in res.output or "Bluetooth straps in range" in res.output
    res = CliRunner().invoke(main, ["devices", "--no-ble", "--json"])
    assert res.exit_code == 0 and '"serial"' in res.output


@pytest.mark.realdata
def test_record_208_through_a_fake_strap_with_the_shipped_model(mitdb_dir):
    """MIT-BIH 208 (many V beats) resampled to 130 Hz, in µV, out of range for 12 s: the
    shipped model still finds its V beats on both sides of the gap."""
    from edge_ecg.records.load import load_record
    from edge_ecg.signal.resample import ecg_resample
    from edge_ecg.stream.classifier_files import load_classifier

    rec = load_record(mitdb_dir, "208", lead="MLII")
    x = ecg_resample(np.asarray(rec.signal[: 90 * 360], dtype=np.float64), 360.0, 130.0)
    # out of range for 12 s of signal (0.4 s of wall time at 30x, so a busy machine cannot sleep
    # through it); a 1 s stall limit, so a busy machine's scheduling is not taken for a lost strap
    air = Air(np.round(x * 1000).astype(np.int64), speed=30.0, dropouts=[(40.0, 52.0)])
    pipeline = StreamPipeline(load_classifier())
    summary = run_stream(_source(air, stall_s=1.0), pipeline, duration_s=88.0)
    assert summary["source_stats"]["reconnects"] == 1 and summary["gaps"] == 1
    assert summary["counts"]["V"] >= 20 and summary["beats"] >= 80
