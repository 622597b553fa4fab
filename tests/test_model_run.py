"""One home for a run folder and its models (edge_ecg.model.run): `evaluate` and `convert` pick
the same file from the same folder, and QAT wrappers are stripped by one function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_ecg.cli import main
from edge_ecg.config import ModelConfig, RunConfig, WindowConfig, to_json
from edge_ecg.errors import ModelError
from edge_ecg.model.run import RUN_MODEL_FILES, find_model_file

ROOT = Path(__file__).resolve().parents[1]

#: Run folders holding several candidates (SavedModel: a folder with saved_model.pb), and what
#: each preference must pick (None: the folder itself, a SavedModel).
FOLDERS = [
    (("model_qat.keras", "model_qat.h5", "model.keras", "model.h5", "saved_model.pb"),
     {"qat": "model_qat.keras", "float": "model.keras"}),
    (("model_qat.h5", "model.keras", "model.h5"), {"qat": "model_qat.h5", "float": "model.keras"}),
    (("model.keras", "model.h5", "saved_model.pb"), {"qat": "model.keras", "float": "model.keras"}),
    (("model.h5", "saved_model.pb"), {"qat": "model.h5", "float": "model.h5"}),
    (("model_qat.keras",), {"qat": "model_qat.keras", "float": "model_qat.keras"}),  # the shipped models/
    (("saved_model.pb",), {"qat": None, "float": None}),
]


def _run_folder(tmp_path: Path, names) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("not a model")  # loading fails, naming the file that was picked
    (folder / "config.json").write_text(to_json(RunConfig()))
    return folder


@pytest.mark.parametrize("names,expected", FOLDERS)
def test_find_model_file_prefers_the_qat_model_then_the_float_one(tmp_path, names, expected):
    folder = _run_folder(tmp_path, names)
    for prefer, want in expected.items():
        path, run_dir = find_model_file(folder, prefer)
        assert path == (folder if want is None else folder / want)
        assert run_dir == (None if want is None else folder)


def test_find_model_file_errors_are_one_line(tmp_path):
    with pytest.raises(ModelError, match="no such model file or run folder"):
        find_model_file(tmp_path / "nope")
    with pytest.raises(ModelError, match="not a run folder"):
        find_model_file(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="not a model"):
        find_model_file(tmp_path / "notes.txt")
    (tmp_path / "m.keras").write_text("x")
    assert find_model_file(tmp_path / "m.keras") == (tmp_path / "m.keras", None)
    (tmp_path / "config.json").write_text(to_json(RunConfig()))
    assert find_model_file(tmp_path / "m.keras") == (tmp_path / "m.keras", tmp_path)


def test_path_logic_imports_no_tensorflow():
    code = ("import sys; import edge_ecg.model.run, edge_ecg.model; "
            "print(sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _error_line(result) -> str:
    assert result.exit_code != 0
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def _picked(line: str, folder: Path) -> str:
    """The file of ``folder`` an error line names (``Error: <path>: ...``)."""
    path = Path(line[len("Error: "):].split(": ", 1)[0])
    return "." if path == folder else str(path.relative_to(folder))


@pytest.mark.tf
@pytest.mark.parametrize("names,expected", FOLDERS[:4])
def test_evaluate_and_convert_pick_the_same_file(tiny_db, tmp_path, names, expected):
    """Both commands, run on one folder of unloadable candidates, fail on the same file."""
    pytest.importorskip("tf_keras")
    folder = _run_folder(tmp_path, names)
    for prefer, want in expected.items():
        flags_eval = ["--float"] if prefer == "float" else []
        flags_conv = ["--float-source"] if prefer == "float" else []
        ev = CliRunner().invoke(main, ["evaluate", "--model", str(folder), "--data", str(tiny_db),
                                       "--records", "900", "--quiet", *flags_eval])
        cv = CliRunner().invoke(main, ["convert", "--model", str(folder), "--float32", "--no-compare", "--quiet", *flags_conv])
        picked = _picked(_error_line(ev), folder)
        assert picked == _picked(_error_line(cv), folder) == (want or ".")


def _qat_model(cfg: ModelConfig, window: WindowConfig, lstm: str = "calibrate", seed: int = 0):
    from edge_ecg.model import arch
    from edge_ecg.model._tf import keras
    from edge_ecg.model.qat import quantize_model

    keras.utils.set_random_seed(seed)
    model = arch.build_model(cfg, window)
    qat = quantize_model(model, cfg, window, lstm=lstm)
    rng = np.random.default_rng(seed)
    K = cfg.sequence_beats
    x = {"beat": rng.standard_normal((32, *((K,) if K else ()), window.length, 1)).astype(np.float32)}
    if cfg.use_rr:
        x["rr"] = rng.uniform(0.4, 1.6, (32, *((K,) if K else ()), len(window.rr_features))).astype(np.float32)
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(x, np.arange(32) % 5, epochs=1, batch_size=16, verbose=0)  # weights away from the float ones
    return qat, x


@pytest.mark.tf
@pytest.mark.parametrize("cfg,window,lstm", [
    (ModelConfig(), WindowConfig(), "calibrate"),
    (ModelConfig(), WindowConfig(), "fake_quant"),
    (ModelConfig(arch="lstm"), WindowConfig(), "calibrate"),
    (ModelConfig(use_rr=False, rr_logits=False, wave_dropout=0.0, rr_scale=0.0), WindowConfig(), "calibrate"),
    (ModelConfig(sequence_beats=3, conv_filters=(8, 8), lstm_units=8, dense_units=8, embed_units=8),
     WindowConfig(pre_s=0.3, post_s=0.45), "calibrate"),
], ids=["cnn_lstm", "fake_quant_lstm", "lstm", "no_rr", "sequence"])
def test_strip_qat_is_the_inference_graph_with_the_trained_weights(cfg, window, lstm):
    """The stripped model has build_model_inference's layers and exactly the QAT model's trained
    weights, also after a save/load round trip of the QAT model as .h5 (what a run folder holds)."""
    pytest.importorskip("tf_keras")
    from edge_ecg.model.arch import build_model_inference
    from edge_ecg.model.run import strip_qat

    qat, x = _qat_model(cfg, window, lstm)
    plain = strip_qat(qat)
    assert not any("Quantize" in type(layer).__name__ for layer in plain.layers)
    assert [layer.name for layer in plain.layers] == [layer.name for layer in build_model_inference(cfg, window).layers]
    inner = {(getattr(layer, "layer", None) or layer).name: layer for layer in qat.layers}
    for layer in plain.layers:
        trained = {v.name.split("/")[-1].split(":")[0]: v.numpy() for v in inner[layer.name].weights}
        for v, w in zip(layer.weights, layer.get_weights()):
            np.testing.assert_array_equal(w, trained[v.name.split("/")[-1].split(":")[0]])
    assert np.abs(plain.predict(x, verbose=0) - qat.predict(x, verbose=0)).max() < 0.05


def test_one_strip_route():
    """strip_qat lives in edge_ecg.model.run only: no other module defines or re-implements it."""
    defining = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "edge_ecg").rglob("*.py")
                      if "def strip_qat" in p.read_text() or "QuantizeWrapperV2\"" in p.read_text())
    assert defining == ["edge_ecg/model/run.py"]
    import edge_ecg.export.convert as convert
    from edge_ecg.model import run

    assert convert.strip_qat is run.strip_qat and convert.find_model_file is run.find_model_file
    assert "def load_qat_model" not in (ROOT / "edge_ecg" / "model" / "qat.py").read_text()
    assert set(RUN_MODEL_FILES) == {"model_qat.keras", "model_qat.h5", "model.keras", "model.h5"}
