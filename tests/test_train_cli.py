"""`edge-ecg train` and `edge-ecg evaluate` end to end on tiny synthetic records, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edge_ecg.cli import main

pytest.importorskip("tf_keras")
pytestmark = pytest.mark.tf

SMOKE_CONFIG = {
    "model": {"conv_filters": [8, 8], "lstm_units": 8, "dense_units": 8},
    "augment": {"noise_prob": 0.0},
    "train": {"records": ["900", "901"], "val_records": ["901"], "batch_size": 32, "qat_epochs": 1},
}


def _write_config(tmp_path, data=SMOKE_CONFIG, name="smoke.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _train(tiny_db, tmp_path, out, *extra):
    args = ["train", "--data", str(tiny_db), "--config", str(_write_config(tmp_path)), "--epochs", "1",
            "--out", str(out), "--quiet", *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_smoke_training_writes_a_complete_run_folder_and_evaluates(tiny_db, tmp_path):
    out = tmp_path / "run"
    result = _train(tiny_db, tmp_path, out)
    assert result.exit_code == 0, result.output
    assert "done:" in result.output
    for name in ("config.json", "model.keras", "model_qat.keras", "qat_wrapped.h5", "metrics.json", "curves.png"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["model"]["lstm_units"] == 8
    assert config["window"]["fs"] == 180.0  # the full resolved configuration, defaults included
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["phase"] for h in metrics["history"]] == ["float", "qat"]
    # the old form train.records = ["900", "901"] was read as the spec mitdb:900,901
    assert config["train"]["data"] == ["mitdb:900,901"] and "records" not in config["train"]
    assert metrics["val_records"] == ["mitdb/901"] and metrics["train_records"] == ["mitdb/900"]
    assert metrics["train_class_counts"]["V"] == 3 and metrics["val_class_counts"]["S"] == 3

    # the QAT model (default) and the float model both score, as text and JSON
    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--records", "900,901", "--data", str(tiny_db),
                                    "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["gross"]["n_ref"] == 2 * 42  # every annotated beat of both records
    plot = tmp_path / "cm.png"
    res = CliRunner().invoke(main, ["evaluate", "--model", str(out / "model.keras"), "--records", "901",
                                    "--data", str(tiny_db), "--plot", str(plot), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "901" in res.output and plot.read_bytes()[:4] == b"\x89PNG"

    # an existing --out is never overwritten without --force
    before = (out / "metrics.json").read_bytes()
    again = _train(tiny_db, tmp_path, out)
    assert again.exit_code != 0
    assert "already exists" in again.output and "--force" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert (out / "metrics.json").read_bytes() == before


def test_same_seed_same_run(tiny_db, tmp_path):
    runs = []
    for name in ("a", "b"):
        result = _train(tiny_db, tmp_path, tmp_path / name, "--no-qat", "--seed", "3")
        assert result.exit_code == 0, result.output
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text())["history"])
    assert runs[0][0]["loss"] == runs[1][0]["loss"]
    assert runs[0][0]["val"] == runs[1][0]["val"]
    assert "qat" not in [h["phase"] for h in runs[0]]


def _one_line_error(result, *needles):
    assert result.exit_code != 0
    text = result.output.strip()
    assert len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text
    assert "Traceback" not in text


def test_unknown_arch_is_rejected(tiny_db, tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", str(tiny_db), "--arch", "transformer", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "transformer" in result.output and "cnn_lstm" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "config, needle",
    [
        ({"train": {"epoch": 3}}, "train.epoch (did you mean 'epochs'?)"),
        ({"model": {"lstm_units": "big"}}, "model.lstm_units must be a whole number"),
        ({"modle": {}}, "unknown key"),
        ({"train": {"imbalance": "smote"}}, "train.imbalance"),
    ],
)
def test_bad_config_file_is_one_line(tiny_db, tmp_path, config, needle):
    path = _write_config(tmp_path, config, "bad.json")
    result = CliRunner().invoke(main, ["train", "--data", str(tiny_db), "--config", str(path), "--out", str(tmp_path / "x")])
    _one_line_error(result, "Error:", needle)
    assert not (tmp_path / "x").exists()


def test_data_folder_without_ds1_records(tiny_db, tmp_path):
    """The default configuration (the shipped model's: DS1 + svdb) reads DS1 from --data."""
    result = CliRunner().invoke(main, ["train", "--data", str(tiny_db), "--out", str(tmp_path / "x")])
    _one_line_error(result, "Error:", str(tiny_db), "record 101 not found")


def test_data_folder_without_ds1_records_ds1_only(tiny_db, tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", str(tiny_db), "--config",
                                       str(_write_config(tmp_path, {}, "ds1.json")), "--out", str(tmp_path / "x")])
    _one_line_error(result, "Error:", str(tiny_db), "record 101 not found")


def test_ds2_records_are_refused_for_training(tmp_path):
    from conftest import synthetic_ecg, write_record

    mitdb = tmp_path / "mitdb"
    mitdb.mkdir()
    for name in ("101", "232"):
        write_record(mitdb, name, *synthetic_ecg(12, seed=int(name)))
    path = _write_config(tmp_path, {"train": {"records": ["101", "232"], "val_records": ["101"]}}, "leak.json")
    result = CliRunner().invoke(main, ["train", "--data", str(mitdb), "--config", str(path), "--out", str(tmp_path / "x")])
    _one_line_error(result, "Error:", "DS2 record mitdb/232")


def test_force_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    from edge_ecg.errors import ConfigError
    from edge_ecg.model.train import prepare_run_dir

    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an edge-ecg run folder"):
        prepare_run_dir(keep, force=True)
    assert (keep / "notes.txt").read_text() == "mine"


def test_evaluate_bad_model_path(tiny_db, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--model", str(tmp_path / "nope"), "--data", str(tiny_db),
                                       "--records", "900"])
    _one_line_error(result, "Error:", "no such model")
    result = CliRunner().invoke(main, ["evaluate", "--model", str(tmp_path), "--data", str(tiny_db), "--records", "900"])
    _one_line_error(result, "Error:", "not a run folder")


def test_help_explains_units_and_examples():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    assert "DS1" in result.output and "--qat / --no-qat" in result.output and "Examples" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--help"])
    assert result.exit_code == 0 and "EC57" in result.output and "--records" in result.output


def test_real_evaluate_scores_reference_beats(mitdb_dir, tmp_path):
    """A freshly built (untrained) model scores every beat of a real record, none missed or extra."""
    from edge_ecg.config import RunConfig, to_json
    from edge_ecg.model.arch import build_model

    cfg = RunConfig()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(to_json(cfg))
    build_model(cfg.model, cfg.window).save(run / "model.keras")
    res = CliRunner().invoke(main, ["evaluate", "--model", str(run), "--records", "100", "--data", str(mitdb_dir),
                                    "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["gross"]["n_ref"] == 2273  # record 100's annotated beats
    assert report["gross"]["qrs"]["se"] == 1.0
    assert np.isfinite(report["gross"]["accuracy"])


def test_committed_int8_model_evaluates_on_a_real_record(mitdb_dir):
    """The committed int8 model scores record 100 through the TFLite runtime (no Keras)."""
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "models" / "edge_ecg_int8.tflite"
    if not model.is_file():
        pytest.skip("no committed model in models/")
    res = CliRunner().invoke(main, ["evaluate", "--model", str(model), "--records", "100", "--data", str(mitdb_dir),
                                    "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    gross = json.loads(res.output)["gross"]
    assert gross["n_ref"] == 2273
    assert gross["accuracy"] > 0.9  # record 100 is mostly normal beats; a broken model or window fails this


def test_variant_b_sequence_model_trains_and_evaluates_record_by_record(tiny_db, tmp_path):
    seq = {**SMOKE_CONFIG, "model": {**SMOKE_CONFIG["model"], "sequence_beats": 3, "embed_units": 8},
           "window": {"pre_s": 0.3, "post_s": 0.45}}
    out = tmp_path / "seq"
    args = ["train", "--data", str(tiny_db), "--config", str(_write_config(tmp_path, seq, "seq.json")),
            "--epochs", "1", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["model"]["sequence_beats"] == 3
    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--records", "900,901", "--data", str(tiny_db),
                                    "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["gross"]["n_ref"] == 2 * 42

    # each record is its own stream: predicting both records at once equals one at a time
    from edge_ecg.beats import build_beatset
    from edge_ecg.evaluate.classify import predict_records
    from edge_ecg.model.run import load_run_classifier

    clf = load_run_classifier(out)
    beats = build_beatset(tiny_db, ["900", "901"], clf.window, progress=False)
    both = predict_records(clf, beats)
    clf.reset()
    alone = clf.predict_batch(beats.X[beats.record == "901"], beats.rr[beats.record == "901"])
    np.testing.assert_allclose(both[beats.record == "901"], alone, atol=1e-6)


def test_force_replaces_a_run_only_when_the_new_one_is_complete(tiny_db, tmp_path, monkeypatch):
    from edge_ecg.model import train as train_mod

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "model_qat.keras").write_bytes(b"the old model")

    def interrupted(self, epochs):
        (self.run_dir / "half-written").write_text("x")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(train_mod._Phase, "run", interrupted)
        result = _train(tiny_db, tmp_path, out, "--force")
    assert result.exit_code != 0  # Ctrl-C during training
    assert (out / "model_qat.keras").read_bytes() == b"the old model"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model_qat.keras"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left

    result = _train(tiny_db, tmp_path, out, "--force")
    assert result.exit_code == 0, result.output
    assert f"done: {out}" in result.output
    assert (out / "metrics.json").is_file() and (out / "model_qat.keras").read_bytes() != b"the old model"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resume_continues_an_interrupted_run_from_its_last_finished_epoch(tiny_db, tmp_path, monkeypatch):
    """Ctrl-C after float epoch 2 of 3 with --resume keeps the progress; the same command again
    runs only epoch 3 and the QAT phase, and epochs 1-2 are those of an uninterrupted run."""
    from edge_ecg.model import train as train_mod

    def train(out, *extra):
        args = ["train", "--data", str(tiny_db), "--config", str(_write_config(tmp_path)), "--epochs", "3",
                "--out", str(out), *extra]
        return CliRunner().invoke(main, args, catch_exceptions=False)

    straight = train(tmp_path / "straight", "--quiet")
    assert straight.exit_code == 0, straight.output
    out = tmp_path / "run"
    real_save = train_mod._Phase._save_progress

    def save_then_stop(self, ckpt, epochs_done, done):
        real_save(self, ckpt, epochs_done, done)
        if self.name == "float" and epochs_done == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(train_mod._Phase, "_save_progress", save_then_stop)
        first = train(out, "--resume", "--quiet")
    assert first.exit_code != 0 and not out.exists()
    partial = train_mod.resume_dir(out)
    assert json.loads((partial / "checkpoints" / "float_progress.json").read_text())["epochs_done"] == 2

    again = train(out, "--resume")
    assert again.exit_code == 0, again.output
    assert "float: resuming after epoch 2" in again.output
    assert "float epoch 1/3" not in again.output and "float epoch 3/3" in again.output
    assert not partial.exists() and (out / "model_qat.keras").is_file()
    resumed = json.loads((out / "metrics.json").read_text())
    plain = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert resumed["resumed"] == [{"phase": "float", "epoch": 3}] and plain["resumed"] == []
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 1]
    assert [h["loss"] for h in resumed["history"][:2]] == [h["loss"] for h in plain["history"][:2]]


def test_resume_refuses_a_partial_run_of_another_configuration(tiny_db, tmp_path):
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    (partial / "checkpoints").mkdir(parents=True)
    (partial / "config.json").write_text('{"something": "else"}\n')
    result = CliRunner().invoke(main, ["train", "--data", str(tiny_db), "--config", str(_write_config(tmp_path)),
                                       "--epochs", "1", "--out", str(out), "--resume", "--quiet"])
    _one_line_error(result, "another configuration")
    assert (partial / "config.json").read_text() == '{"something": "else"}\n'  # left as it was
