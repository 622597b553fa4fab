"""Training on several databases (two rates, different leads and patient groupings), fine-tuning
with --init, --lead, and evaluate on any annotated folder: `--epochs 1` smokes on small records
made by conftest."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge_ecg.cli import main

from conftest import BEATS

pytest.importorskip("tf_keras")
pytestmark = [pytest.mark.tf, pytest.mark.slow]

SMOKE = {
    "model": {"conv_filters": [8, 8], "lstm_units": 8, "dense_units": 8},
    "augment": {"noise_prob": 0.0},
    "train": {"batch_size": 32, "qat_epochs": 1, "val_fraction": 0.4},
}


def _config(tmp_path, data=SMOKE, name="smoke.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line(result, *needles):
    assert result.exit_code != 0
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def test_two_databases_train_patient_wise_then_fine_tune_and_evaluate(two_databases, tmp_path):
    out = tmp_path / "multi"
    res = _invoke("train", "--train-data", two_databases / "svdb", "--train-data", "incartdb@2",
                  "--data-root", two_databases, "--config", _config(tmp_path), "--epochs", 1, "--no-qat",
                  "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["data"] == [str(two_databases / "svdb"), "incartdb@2"]  # recorded as given
    m = json.loads((out / "metrics.json").read_text())
    assert {d["database"] for d in m["data"]} == {"svdb", "incartdb"}
    assert [d["weight"] for d in m["data"]] == [1.0, 2.0]
    ids = m["train_records"] + m["val_records"]
    assert sorted(ids) == sorted([f"svdb/{r}" for r in ("800", "802", "804")] + [f"incartdb/I0{i}" for i in (1, 2, 3)])
    # whole patients: incartdb I01 and I02 (patient 1) are on the same side; each database validates
    assert ("incartdb/I01" in m["val_records"]) == ("incartdb/I02" in m["val_records"])
    assert any(r.startswith("svdb/") for r in m["val_records"]) and any(r.startswith("incartdb/") for r in m["val_records"])
    assert not set(m["train_records"]) & set(m["val_records"])
    n_train = sum(m["train_class_counts"].values()) + sum(m["val_class_counts"].values())
    assert n_train == 6 * len(BEATS)  # every annotated beat at 128 and 257 Hz, resampled to 180 Hz

    # fine-tune on one database from that run: same window and network, its config by default
    tuned = tmp_path / "tuned"
    res = _invoke("train", "--init", out, "--train-data", two_databases / "incartdb", "--epochs", 1, "--no-qat",
                  "--out", tuned, "--quiet")
    assert res.exit_code == 0, res.output
    m2 = json.loads((tuned / "metrics.json").read_text())
    assert m2["init"].endswith("model.keras") and [d["database"] for d in m2["data"]] == ["incartdb"]
    assert json.loads((tuned / "config.json").read_text())["model"]["lstm_units"] == 8

    # a fine-tune whose window differs: one line, nothing written
    other = {**SMOKE, "window": {"pre_s": 1.0}}
    res = _invoke("train", "--init", out, "--config", _config(tmp_path, other, "other.json"), "--train-data",
                  two_databases / "incartdb", "--out", tmp_path / "bad", "--quiet")
    _one_line(res, "window.pre_s", "--init")
    assert not (tmp_path / "bad").exists()

    # evaluate scores any annotated folder, all of its records by default, on its default lead
    res = _invoke("evaluate", "--model", out, "--data", two_databases / "svdb", "--json", "--quiet")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)  # the JSON on stdout; the training-overlap warning also goes to stderr
    assert report["gross"]["n_ref"] == 3 * len(BEATS)
    assert report["warnings"] and "trained" in report["warnings"][0]  # its own training records: not a test
    res = _invoke("evaluate", "--model", out, "--data", two_databases / "svdb", "--lead", "MLII", "--quiet")
    _one_line(res, "has no lead 'MLII'", "ECG1, ECG2")


def test_bad_multi_database_input_is_one_line(two_databases, tmp_path):
    cfg = _config(tmp_path)
    res = _invoke("train", "--train-data", "nosuchdb:1,2", "--config", cfg, "--out", tmp_path / "x")
    _one_line(res, "Error:")
    res = _invoke("train", "--train-data", two_databases / "svdb", "--lead", "II", "--config", cfg,
                  "--out", tmp_path / "x", "--quiet")
    _one_line(res, "has no lead 'II'", "ECG1")
    res = _invoke("train", "--init", tmp_path / "nothing", "--train-data", two_databases / "svdb",
                  "--out", tmp_path / "x")
    _one_line(res, "--init")
    assert not (tmp_path / "x").exists()
