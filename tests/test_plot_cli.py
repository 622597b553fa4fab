import json

from click.testing import CliRunner

from edge_ecg.cli import main
from edge_ecg.records import load_record


def test_strip_from_events(tiny_db, tmp_path):
    rec = load_record(tiny_db, "900")
    events = tmp_path / "e.jsonl"
    lines = [{"time_s": s / rec.fs, "label": "N" if c != "V" else "V"} for s, c in zip(rec.beat_samples, rec.beat_classes)]
    events.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    out = tmp_path / "strip.png"
    res = CliRunner().invoke(main, ["plot", "--record", "900", "--data", str(tiny_db), "--events", str(events),
                                    "--start", "10", "--duration", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000


def test_bad_events_and_start(tiny_db, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time_s": 1.0, "label": "N"}\nnot json\n')
    res = CliRunner().invoke(main, ["plot", "--record", "900", "--data", str(tiny_db), "--events", str(bad),
                                    "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "bad.jsonl:2: not a beat event line" in res.output
    res = CliRunner().invoke(main, ["plot", "--record", "900", "--data", str(tiny_db), "--start", "9999"])
    assert res.exit_code == 1 and "past the end" in res.output
