"""TFLite-Micro vs LiteRT parity harness on real DS2 beats with the shipped int8 model."""

import json

import pytest

pytest.importorskip("tflite_micro")

from firmware_harness.micro_parity import DEFAULT_MODEL, format_parity, main, run_parity  # noqa: E402


@pytest.mark.realdata
def test_parity_on_ds2_beats(mitdb_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    if not DEFAULT_MODEL.is_file():
        pytest.skip("no shipped int8 model in models/")
    result = run_parity(DEFAULT_MODEL, mitdb_dir, n_beats=150, records=("100", "208", "232"))
    assert result["n_beats"] == 150
    assert 4096 <= result["arena_bytes"] <= 64 * 1024  # the microcontroller budget
    assert result["label_agreement_pct"] >= 97.0
    assert result["n_disagree"] == len(result["disagreements"])
    for d in result["disagreements"]:
        assert d["record"] in ("100", "208", "232") and d["reference"] in "NSVFQ" and d["litert"] != d["micro"]
    assert "label agreement" in format_parity(result)
    out = tmp_path / "parity.json"
    assert main(["--beats", "40", "--data", str(mitdb_dir), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_beats"] == 40


def test_missing_model_is_a_clear_error(tmp_path, capsys, mitdb_dir):
    assert main(["--model", str(tmp_path / "nope.tflite"), "--data", str(mitdb_dir)]) == 1
    assert "nope.tflite" in capsys.readouterr().err
