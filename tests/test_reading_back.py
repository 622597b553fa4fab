"""Reading results back, and the smaller rough edges of issue 25: evaluate on the model's own
training records, plotting a stream's own recording, events of another record, long strips,
huge digit lines, --start past the end, --model RUN_FOLDER, and what train and --help say."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_ecg.cli import main
from edge_ecg.evaluate.trained import overlap_warning, trained_on, training_records

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "edge_ecg_int8.tflite"
#: Converted before a .tflite carried its training records: the files beside it are asked.
OLDER = ROOT / "models" / "previous" / "edge_ecg_int8.tflite"


# --------------------------------------------------------------------------- 8: evaluate on training records


def test_training_records_come_from_the_files_beside_a_model(tmp_path):
    trained = training_records(SHIPPED)
    assert trained is not None and "svdb/802" in trained and "svdb/800" in trained  # validation counts too
    assert len([r for r in trained if r.startswith("svdb/")]) == 40
    assert trained_on(trained, "svdb", ["800", "801", "802"]) == ["800", "802"]
    assert trained_on(trained, "mitdb", ["100", "101", "233"]) == ["101"]
    ds1 = training_records(ROOT / "models" / "ds1_only" / "edge_ecg_int8.tflite")
    assert ds1 and trained_on(ds1, "mitdb", ["101"]) == ["101"] and trained_on(ds1, "svdb", ["802"]) == []
    assert training_records(tmp_path / "alone.tflite") is None
    line = overlap_warning(["800", "802"], 3, "svdb")
    assert "2 of these 3 svdb records (800, 802)" in line and "not a test result" in line


def test_evaluate_marks_a_report_of_training_records(tiny_db, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(OLDER, folder / "edge_ecg_int8.tflite")
    (folder / "training_metrics.json").write_text(json.dumps({"train_records": ["tinydb/900"], "val_records": []}))
    args = ["evaluate", "--model", str(folder / "edge_ecg_int8.tflite"), "--data", str(tiny_db), "--quiet"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "WARNING: the model was trained (or validated) on 1 of these 2 tinydb records (900)" in res.output
    res = CliRunner().invoke(main, args + ["--json"])
    report = json.loads(res.stdout)
    assert report["warnings"] and "not a test result" in report["warnings"][0]
    res = CliRunner().invoke(main, args + ["--records", "901"])
    assert "WARNING" not in res.output


def test_a_converted_model_carries_its_training_records_wherever_it_goes(tiny_db, tmp_path):
    """A .tflite whose metadata lists its training records is flagged alone in a folder; an older
    file without the field still reads (the files beside it are asked instead)."""
    import dataclasses

    from edge_ecg.export.metadata import attach_metadata
    from edge_ecg.runtime.metadata import read_metadata

    shipped = read_metadata(SHIPPED).training_records
    from edge_ecg.records.aami import DS2

    assert "svdb/802" in shipped and "mitdb/101" in shipped and not set(shipped) & {f"mitdb/{r}" for r in DS2}
    meta = read_metadata(OLDER)
    assert meta.training_records == ()  # converted before the field existed
    moved = tmp_path / "alone" / "model.tflite"
    moved.parent.mkdir()
    moved.write_bytes(attach_metadata(OLDER.read_bytes(), dataclasses.replace(meta, training_records=("tinydb/901",))))
    assert read_metadata(moved).training_records == ("tinydb/901",)
    assert training_records(moved) == {"tinydb/901"}
    res = CliRunner().invoke(main, ["evaluate", "--model", str(moved), "--data", str(tiny_db), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "WARNING: the model was trained (or validated) on 1 of these 2 tinydb records (901)" in res.output


def test_readme_does_not_score_the_shipped_model_on_svdb():
    text = (ROOT / "README.md").read_text()
    assert "evaluate --model models/edge_ecg_int8.tflite --data ../shared/data/svdb" not in text


# --------------------------------------------------------------------------- 9: plotting a stream's recording


def test_a_stream_recording_plots_with_its_events_and_another_record_warns(tmp_path):
    saved = tmp_path / "saved"
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "20", "--view", "none",
                                    "--save", str(saved / "run1"), "--jsonl", str(tmp_path / "run1.jsonl")])
    assert res.exit_code == 0, res.output
    header = json.loads((tmp_path / "run1.jsonl").read_text().splitlines()[0])["header"]
    assert header["record"] == "run1" and header["source"] == "simulate"
    res = CliRunner().invoke(main, ["plot", "--record", "run1", "--data", str(saved), "--events",
                                    str(tmp_path / "run1.jsonl"), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output and (tmp_path / "s.png").stat().st_size > 10_000
    shutil.copy(saved / "run1.hea", saved / "other.hea")
    (saved / "other.hea").write_text((saved / "run1.hea").read_text().replace("run1", "other"))
    shutil.copy(saved / "run1.dat", saved / "other.dat")
    res = CliRunner().invoke(main, ["plot", "--record", "other", "--data", str(saved), "--events",
                                    str(tmp_path / "run1.jsonl"), "--out", str(tmp_path / "o.png")])
    assert res.exit_code == 0, res.output
    assert "warning: " in res.output and "holds the beats of record run1, not other" in res.output


def test_a_replay_names_its_record_in_the_event_log(tiny_db, tmp_path):
    res = CliRunner().invoke(main, ["stream", "--replay", str(tiny_db / "900"), "--speed", "0", "--view", "none",
                                    "--jsonl", str(tmp_path / "e.jsonl")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])["header"]["record"] == "900"


# --------------------------------------------------------------------------- 10: smaller items


def test_a_long_strip_is_drawn_in_rows(tmp_path):
    from edge_ecg.plotting import pyplot

    plt = pyplot()
    made = []
    real = plt.subplots

    def spy(*a, **k):
        made.append(a)
        return real(*a, **k)

    from edge_ecg.plotting import plot_strip

    plt.subplots = spy
    try:
        plot_strip(tmp_path / "s.png", np.sin(np.arange(120 * 360) / 40.0), 360.0, 0.0, [5.0], ["N"])
        plot_strip(tmp_path / "t.png", np.sin(np.arange(10 * 360) / 40.0), 360.0, 0.0, [5.0], ["N"])
    finally:
        plt.subplots = real
    assert made == [(6, 1), (1, 1)]  # 120 s: six rows of 20 s; 10 s: one


def test_huge_digit_lines_are_garbage_without_numpy_warnings():
    from edge_ecg.stream.sources import AsciiParser

    p = AsciiParser()
    p.reset()
    blob = b"9" * 100_000 + b"\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = [p.feed(blob[i:i + 4096]) for i in range(0, len(blob), 4096)]
        out.append(p.feed(b"512\n" + b"9" * 300 + b"\n513\n"))
    values = np.concatenate(out)
    np.testing.assert_array_equal(values, [512, 513])
    assert p.bad_lines == 2


def test_start_past_the_end_of_a_replay_is_one_line(tiny_db):
    res = CliRunner().invoke(main, ["stream", "--replay", str(tiny_db / "900"), "--speed", "0", "--start", "99999"])
    assert res.exit_code != 0
    assert res.output.strip().splitlines() == [
        f"Error: --start 99999 s is past the end of record 900 ({res.output.split('(')[-1].split(')')[0]})"]


def test_model_run_folder_works_for_stream_and_profile(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SHIPPED, run / "edge_ecg_int8.tflite")
    res = CliRunner().invoke(main, ["stream", "--simulate", "--speed", "0", "--duration", "5", "--view", "none",
                                    "--model", str(run)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["profile", "--model", str(run), "--runs", "20", "--warmup", "2"])
    assert res.exit_code == 0, res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(main, ["profile", "--model", str(empty), "--runs", "5"])
    assert res.exit_code != 0 and "convert the run first" in res.output


def test_help_and_interrupted_training_say_what_to_do():
    from edge_ecg.cli.train import interrupted_message

    res = CliRunner().invoke(main, ["--help"])
    assert "on DS1\n" not in res.output and "DS1 + svdb" in res.output
    assert "--resume" in interrupted_message(True) and "again" in interrupted_message(True)
    assert "--resume" in interrupted_message(False)


@pytest.mark.tf
def test_curves_leave_out_f1_of_a_class_validation_lacks(tmp_path):
    pytest.importorskip("tensorflow", reason="edge_ecg.model imports TensorFlow")
    from edge_ecg.model.train import plot_curves
    from edge_ecg.plotting import pyplot

    val = {"loss": 0.5, "macro_f1": 0.6, "S": {"f1": None}, "V": {"f1": 0.8}}
    history = [{"phase": "float", "loss": 1.0 / k, "val": val} for k in range(1, 4)]
    plt = pyplot()
    seen = {}
    real = plt.Axes.plot

    def spy(ax, x, y, *a, **k):
        seen[k.get("label")] = list(y)
        return real(ax, x, y, *a, **k)

    plt.Axes.plot = spy
    try:
        plot_curves(history, tmp_path / "curves.png")
    finally:
        plt.Axes.plot = real
    s = [v for k, v in seen.items() if k and k.startswith("S F1")]
    assert s and all(v != v for v in s[0])  # NaN, not 0
    assert "S F1 (no S beats in validation)" in seen and seen["V F1"] == [80.0] * 3
