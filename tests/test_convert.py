"""edge-ecg convert: a small trained CNN+LSTM converted end to end and checked.

One module-scoped fixture builds a fake MIT-BIH folder (every DS1 and DS2 record name, a
minute of synthetic ECG each), trains a tiny tf_keras Conv1D+BN+ReLU+MaxPool -> LSTM ->
Dense model on its DS1 beats, writes a run folder, and converts it once with the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import synthetic_ecg, write_record
from edge_ecg.cli import main
from edge_ecg.config import CLASSES, ModelConfig, RunConfig, WindowConfig, to_json
from edge_ecg.errors import ModelError
from edge_ecg.records.aami import DS1, DS2

pytestmark = pytest.mark.tf

# 64-sample windows at 90 Hz: 36 before the R peak, 27 after.
WINDOW = WindowConfig(fs=90.0, pre_s=0.4, post_s=0.3)
L, F = WINDOW.length, len(WINDOW.rr_features)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private beat cache, so the tests never touch the user's."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("EDGE_ECG_CACHE")
    os.environ["EDGE_ECG_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("EDGE_ECG_CACHE", None)
    else:
        os.environ["EDGE_ECG_CACHE"] = old


@pytest.fixture(scope="module")
def fake_mitdb(tmp_path_factory, env) -> Path:
    """Every DS1/DS2 record name as a short synthetic record with N, S (A) and V beats."""
    folder = tmp_path_factory.mktemp("mitdb")
    pattern = ["N", "N", "A", "N", "N", "V", "N", "N"]
    for i, name in enumerate(DS1 + DS2):
        syms = (pattern * 6)[: 40 + i % 5]
        x, s, c = synthetic_ecg(len(syms), fs=360.0, rr_s=0.75 + 0.01 * (i % 7), seed=i, classes=syms)
        write_record(folder, name, x, s, c)
    return folder


def build_tiny_model(keras, seed: int = 0):
    """Conv1D+BN+ReLU+MaxPool x2 -> LSTM(16) -> concat rr -> Dense(16) -> Dense(5) softmax."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = keras.layers
    beat = keras.Input((L, 1), name="beat")
    rr = keras.Input((F,), name="rr")
    x = beat
    for i, filters in enumerate((8, 8)):
        x = layers.Conv1D(filters, 5, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = layers.LSTM(16, name="lstm")(x)
    x = layers.Concatenate(name="concat")([x, rr])
    x = layers.Dense(16, activation="relu", name="dense")(x)
    out = layers.Dense(len(CLASSES), activation="softmax", name="probs")(x)
    return keras.Model([beat, rr], out)


def expected_macs() -> int:
    """MACs of :func:`build_tiny_model` worked out by hand from its layer sizes."""
    conv0 = L * 8 * (5 * 1)
    conv1 = (L // 2) * 8 * (5 * 8)
    steps = L // 4
    lstm = steps * (4 * 16 * 8 + 4 * 16 * 16)
    dense = 16 * (16 + F)
    probs = 5 * 16
    return conv0 + conv1 + lstm + dense + probs


@pytest.fixture(scope="module")
def trained(fake_mitdb):
    """The tiny model trained on the fake DS1 beats; ``(model, ds1 beats, ds2 beats)``."""
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.tfcompat import load_tf

    _, keras = load_tf()
    ds1 = build_beatset(fake_mitdb, DS1, WINDOW, progress=False)
    ds2 = build_beatset(fake_mitdb, DS2, WINDOW, progress=False)
    model = build_tiny_model(keras)
    model.compile(keras.optimizers.Adam(5e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit({"beat": ds1.X[..., None], "rr": ds1.rr}, ds1.y, epochs=25, batch_size=64, verbose=0)
    return model, ds1, ds2


@pytest.fixture(scope="module")
def run_dir(trained, tmp_path_factory) -> Path:
    """A training run folder as `edge-ecg train` writes it (model.keras + config.json)."""
    model, _, _ = trained
    folder = tmp_path_factory.mktemp("run")
    model.save(folder / "model.keras")
    cfg = RunConfig(window=WINDOW, model=ModelConfig(conv_filters=(8, 8), conv_kernel=5, lstm_units=16, dense_units=16))
    (folder / "config.json").write_text(to_json(cfg))
    (folder / "metrics.json").write_text(json.dumps({"train_records": ["mitdb/101"], "val_records": ["mitdb/106"]}))
    return folder


@pytest.fixture(scope="module")
def cli_int8(run_dir, fake_mitdb, tmp_path_factory):
    """`edge-ecg convert RUN --int8 --edgetpu --c-array --json` with no edgetpu_compiler on PATH."""
    out = tmp_path_factory.mktemp("out") / "ecg_int8.tflite"
    env = {"PATH": str(tmp_path_factory.mktemp("emptybin"))}  # no edgetpu_compiler
    result = CliRunner().invoke(
        main,
        ["convert", "--model", str(run_dir), "--int8", "--edgetpu", "--c-array", "--out", str(out), "--data", str(fake_mitdb),
         "--calibration", "300", "--micro-beats", "200", "--json", "--quiet"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


# --------------------------------------------------------------------------- the acceptance test


def test_int8_end_to_end_loads_in_litert_with_metadata_and_agrees(cli_int8, trained):
    from ai_edge_litert.interpreter import Interpreter

    from edge_ecg.runtime import TFLiteClassifier, read_metadata

    report, path = cli_int8
    model, _, ds2 = trained
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inputs = {d["name"]: d for d in interp.get_input_details()}
    output = interp.get_output_details()[0]
    assert all(d["dtype"] == np.int8 for d in inputs.values())
    assert output["dtype"] == np.int8
    shapes = sorted(tuple(d["shape"]) for d in inputs.values())
    assert shapes == sorted([(1, L, 1), (1, F)])  # batch fixed at 1
    assert tuple(output["shape"]) == (1, len(CLASSES))

    meta = read_metadata(path)
    assert meta.window == WINDOW
    assert meta.classes == CLASSES
    assert meta.rr_features == WINDOW.rr_features
    assert meta.quantization == "int8"
    assert meta.toolkit_version
    assert set(meta.rr_definitions) >= set(WINDOW.rr_features)
    assert meta.normalisation.startswith("robust")
    assert meta.conversion["variable_tensors"] == 2  # LSTM hidden and cell state
    assert meta.training_records == ("mitdb/101", "mitdb/106")  # from the run's metrics.json, in the file itself
    from edge_ecg.evaluate.trained import training_records

    assert training_records(path) == {"mitdb/101", "mitdb/106"}  # nothing beside it: the file says
    beat_info = meta.input("beat")
    assert inputs[beat_info.name]["quantization"] == pytest.approx((beat_info.scale, beat_info.zero_point))

    clf = TFLiteClassifier(path)
    probs = clf.predict_batch(ds2.X, ds2.rr)
    keras_probs = model.predict({"beat": ds2.X[..., None], "rr": ds2.rr}, verbose=0)
    agreement = np.mean(probs.argmax(1) == keras_probs.argmax(1))
    assert agreement >= 0.97, agreement
    assert np.abs(probs - keras_probs).max() < 0.25
    # the report's own DS2 comparison measured the same thing
    assert report["comparison"]["n_beats"] == len(ds2)
    assert report["comparison"]["agreement_pct"] == pytest.approx(100 * agreement, abs=1e-6)


def test_int8_ops_are_integer_with_the_fused_lstm(cli_int8):
    report, _ = cli_int8
    ops = report["model"]["ops"]
    assert ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    assert "WHILE" not in ops
    assert report["model"]["float_ops"] == []
    assert report["model"]["macs"] == expected_macs()
    assert report["model"]["size_bytes"] == Path(report["output"]).stat().st_size
    for t in report["model"]["inputs"] + report["model"]["outputs"]:
        assert t["dtype"] == "int8" and t["scale"] > 0


def test_inner_tensor_names_are_stripped_and_nothing_else_changes(cli_int8):
    """The converter's fused-op debug names are most of a small model's strings: convert drops
    them; inputs and outputs keep theirs, and a model with or without them computes the same."""
    from edge_ecg.export.flatbuffer import read_model, strip_tensor_names, write_model
    from edge_ecg.runtime import TFLiteClassifier, read_metadata

    report, _ = cli_int8
    blob = Path(report["output"]).read_bytes()
    graph = read_model(blob).subgraphs[0]
    named = {i for i, t in enumerate(graph.tensors) if t.name}  # "" for the others
    assert named == {int(i) for i in list(graph.inputs) + list(graph.outputs)}
    assert "unnamed" in read_metadata(blob).conversion["tensor_names"]
    m = read_model(blob)  # the same model with long names put back: bigger, same outputs
    for i, t in enumerate(m.subgraphs[0].tensors):
        if i not in named:
            t.name = f"cnn_lstm/layer_{i}/Relu;cnn_lstm/layer_{i}/BiasAdd;cnn_lstm/layer_{i}/Conv1D"
    long = write_model(m)
    assert len(long) > len(blob) + 40 * (len(graph.tensors) - len(named))
    assert strip_tensor_names(long) == blob
    rng = np.random.default_rng(0)
    a, b = TFLiteClassifier(blob), TFLiteClassifier(long)
    X = rng.normal(size=(20, a.window.length)).astype(np.float32)
    rr = rng.uniform(0.6, 1.4, size=(20, len(a.window.rr_features))).astype(np.float32)
    np.testing.assert_array_equal(a.predict_batch(X, rr), b.predict_batch(X, rr))


def test_report_has_comparison_micro_and_edgetpu_hint(cli_int8):
    report, path = cli_int8
    cmp = report["comparison"]
    assert set(cmp["tables"]) == {"float", "int8"}
    assert 0 <= cmp["tables"]["int8"]["macro_f1"] <= 1
    expected_drop = 100 * (cmp["tables"]["float"]["macro_f1"] - cmp["tables"]["int8"]["macro_f1"])
    assert cmp["macro_f1_drop_points"] == pytest.approx(expected_drop)
    micro = report["micro"]
    assert micro["n_beats"] == 200 and micro["beats_from"] == "DS2"
    assert micro["arena_bytes"] > 0
    assert 0 <= micro["max_diff_steps"] <= 255
    assert 0 <= micro["label_agreement_pct"] <= 100
    assert "edgetpu_compiler" in report["edgetpu"]["skipped"]
    assert path.is_file()  # the int8 model is written even without the compiler
    assert json.loads(path.with_suffix(".json").read_text())["output"] == str(path)


def test_micro_arena_is_the_smallest_that_works(cli_int8):
    from edge_ecg.export.micro import ARENA_STEP, _works
    from edge_ecg.runtime import read_metadata

    report, path = cli_int8
    model = path.read_bytes()
    meta = read_metadata(model)
    probe = [(t.index, np.zeros(t.shape, dtype=t.dtype)) for t in meta.inputs]
    arena = report["micro"]["arena_bytes"]
    assert _works(model, arena, probe)
    assert not _works(model, arena - ARENA_STEP, probe)


def test_micro_outputs_match_litert_closely(cli_int8, trained):
    from edge_ecg.export.micro import micro_parity
    from edge_ecg.runtime import TFLiteClassifier

    _, path = cli_int8
    _, _, ds2 = trained
    model = path.read_bytes()
    parity = micro_parity(model, ds2.X[:50], ds2.rr[:50])
    litert = TFLiteClassifier(model).predict_raw_batch(ds2.X[:50], ds2.rr[:50])
    assert parity["n_beats"] == 50
    assert parity["max_diff_steps"] <= 8  # different LSTM kernels, same int8 model
    assert parity["label_agreement_pct"] >= 90
    assert litert.dtype == np.int8


def test_c_array_holds_the_model_aligned(cli_int8, tmp_path):
    report, path = cli_int8
    c_path, h_path = (Path(p) for p in report["c_array"])
    assert c_path == path.with_suffix(".c") and h_path.is_file()
    header = h_path.read_text()
    assert "extern const unsigned char ecg_int8[];" in header
    assert f"#define ECG_INT8_ARENA_BYTES {report['micro']['arena_bytes']}" in header
    assert f"#define ECG_INT8_WINDOW_LENGTH {L}" in header
    assert "#define ECG_INT8_RESET_BEFORE_INVOKE 1" in header  # the LSTM's state tensors
    data = path.read_bytes()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    main_c = tmp_path / "main.c"
    main_c.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "ecg_int8.h"\n'
        "int main(void) { unsigned long sum = 0; unsigned int i;\n"
        "  for (i = 0; i < ecg_int8_len; i++) sum = (sum * 31u + ecg_int8[i]) % 1000000007u;\n"
        '  printf("%u %lu %d\\n", ecg_int8_len, sum, (int)((uintptr_t)ecg_int8 % 16));\n  return 0; }\n'
    )
    exe = tmp_path / "check"
    subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-I", str(h_path.parent), str(main_c), str(c_path),
                    "-o", str(exe)], check=True)
    length, checksum, misalign = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    expected = 0
    for b in data:
        expected = (expected * 31 + b) % 1000000007
    assert int(length) == len(data)
    assert int(checksum) == expected
    assert int(misalign) == 0


# --------------------------------------------------------------------------- the Python API


def test_float16_keeps_float_io_and_matches_keras(trained):
    from edge_ecg.export import convert_model
    from edge_ecg.runtime import TFLiteClassifier

    model, _, ds2 = trained
    keras_probs = model.predict({"beat": ds2.X[:100, :, None], "rr": ds2.rr[:100]}, verbose=0)
    conv = convert_model(model, WINDOW, "float16")
    assert conv.metadata.quantization == "float16"
    assert all(t.dtype == "float32" for t in conv.metadata.inputs)
    clf = TFLiteClassifier(conv.tflite)
    assert not clf.quantized
    assert np.abs(clf.predict_batch(ds2.X[:100], ds2.rr[:100]) - keras_probs).max() < 2e-2


def test_unquantisable_op_is_named(trained):
    from edge_ecg.export import convert_model
    from edge_ecg.tfcompat import load_tf

    tf, keras = load_tf()
    _, ds1, _ = trained
    beat = keras.Input((L, 1), name="beat")
    rr = keras.Input((F,), name="rr")
    x = keras.layers.Conv1D(4, 5, padding="same")(beat)
    x = keras.layers.Lambda(lambda t: tf.math.cos(t), name="cosine")(x)
    x = keras.layers.LSTM(4)(x)
    x = keras.layers.Concatenate()([x, rr])
    model = keras.Model([beat, rr], keras.layers.Dense(5, activation="softmax")(x))
    with pytest.raises(ModelError) as err:
        convert_model(model, WINDOW, "int8", representative=(ds1.X[:16], ds1.rr[:16]))
    msg = str(err.value)
    assert msg.startswith("int8 conversion failed at op COS") and "\n" not in msg
    # the MLIR quantizer lets it through as a float island, which is caught and named too
    with pytest.raises(ModelError, match=r"left 1 op\(s\) in float.*COS \(.*cosine"):
        convert_model(model, WINDOW, "int8", representative=(ds1.X[:16], ds1.rr[:16]), quantizer="mlir")


def test_stratified_indices_share_evenly():
    from edge_ecg.export.convert import stratified_indices

    y = np.array([0] * 500 + [1] * 30 + [2] * 200 + [4] * 3)
    idx = stratified_indices(y, 100, seed=1)
    counts = np.bincount(y[idx], minlength=5)
    assert len(idx) == len(set(idx)) == 100
    assert counts[4] == 3 and counts[1] == 30  # small classes give all they have
    assert abs(int(counts[0]) - int(counts[2])) <= 1  # the rest is split evenly
    assert np.array_equal(idx, stratified_indices(y, 100, seed=1))
    assert len(stratified_indices(y, 10_000)) == len(y)


# --------------------------------------------------------------------------- the CLI: bad input


def _run(args, **kw):
    return CliRunner().invoke(main, ["convert", *args, "--quiet"], **kw)


def _one_error_line(result) -> str:
    assert result.exit_code != 0
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_missing_model_file(tmp_path):
    line = _one_error_line(_run(["--model", str(tmp_path / "nope.keras"), "--float32", "--no-compare"]))
    assert "nope.keras" in line and "no such" in line


def test_file_that_is_not_a_keras_model(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_text("not a model")
    line = _one_error_line(_run(["--model", str(bad), "--float32", "--no-compare"]))
    assert "model.keras" in line and "not a Keras model" in line


def test_tflite_given_as_model(cli_int8):
    _, path = cli_int8
    line = _one_error_line(_run(["--model", str(path), "--float32", "--no-compare"]))
    assert "already a TFLite model" in line


def test_input_shape_that_does_not_match_the_config(run_dir, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(to_json(RunConfig(window=WindowConfig(fs=90.0, pre_s=0.5, post_s=0.3))))
    line = _one_error_line(_run(["--model", str(run_dir), "--float32", "--no-compare", "--config", str(other),
                                 "--out", str(tmp_path / "x.tflite")]))
    assert "'beat'" in line and f"({L}, 1)" in line and "73" in line


def test_int8_without_data_says_what_is_missing(run_dir, tmp_path):
    line = _one_error_line(_run(["--model", str(run_dir), "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "x.tflite")]))
    assert "calibration" in line and "nodata" in line


def test_float32_cli_without_compare(run_dir, trained, tmp_path):
    from edge_ecg.runtime import TFLiteClassifier

    model, _, ds2 = trained
    out = tmp_path / "f32.tflite"
    result = _run(["--model", str(run_dir), "--float32", "--no-compare", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "float32" in result.output and "DS2 comparison: skipped (--no-compare)" in result.output
    assert "MACs per inference" in result.output and "tflite-micro" not in result.output
    clf = TFLiteClassifier(out)
    assert clf.metadata.quantization == "float32" and not clf.quantized
    keras_probs = model.predict({"beat": ds2.X[:100, :, None], "rr": ds2.rr[:100]}, verbose=0)
    assert np.abs(clf.predict_batch(ds2.X[:100], ds2.rr[:100]) - keras_probs).max() < 1e-4


def test_strict_fails_when_the_acceptance_is_missed(run_dir, fake_mitdb, tmp_path, monkeypatch):
    from edge_ecg.export import report

    monkeypatch.setattr(report, "MIN_AGREEMENT_PCT", 100.5)  # unreachable: the check must fail
    strict = _run(["--model", str(run_dir), "--data", str(fake_mitdb), "--calibration", "100", "--no-micro", "--strict",
                   "--out", str(tmp_path / "s.tflite")])
    assert strict.exit_code == 1
    assert "MISSES the int8 acceptance" in strict.output  # the report is printed first
    last = strict.output.strip().splitlines()[-1]
    assert last.startswith("Error: int8 model misses the acceptance") and "100.5" in last


def test_edgetpu_with_a_compiler_on_path(cli_int8, tmp_path):
    """A stand-in compiler (same CLI and summary format) checks the wiring and parsing."""
    from edge_ecg.export.edgetpu import compile_edgetpu

    _, path = cli_int8
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "edgetpu_compiler"
    fake.write_text(
        "#!/bin/sh\n"
        "# usage: edgetpu_compiler -s -o DIR MODEL\n"
        'out="$3"; model="$4"; stem=$(basename "$model" .tflite)\n'
        'cp "$model" "$out/${stem}_edgetpu.tflite"\n'
        "echo 'Edge TPU Compiler version 16.0'\n"
        "echo 'Number of operations that will run on Edge TPU: 9'\n"
        "echo 'Number of operations that will run on CPU: 6'\n"
        "echo ''\n"
        "echo 'Operator                       Count      Status'\n"
        "echo ''\n"
        "echo 'CONV_2D                        2          Mapped to Edge TPU'\n"
        "echo 'UNIDIRECTIONAL_SEQUENCE_LSTM   1          Operation not supported'\n"
        "echo 'FULLY_CONNECTED                2          More than one subgraph is not supported'\n"
    )
    fake.chmod(0o755)
    from edge_ecg.export import ConvertedModel
    from edge_ecg.export.pipeline import _edgetpu_step
    from edge_ecg.runtime import read_metadata

    local = tmp_path / path.name
    local.write_bytes(path.read_bytes())
    converted = ConvertedModel(local.read_bytes(), read_metadata(local), "int8")
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}{os.pathsep}{old}"
    try:
        res = compile_edgetpu(path, tmp_path / "tpu")
        step = _edgetpu_step(local, converted, echo=lambda msg: None)
    finally:
        os.environ["PATH"] = old
    assert res.model_path == tmp_path / "tpu" / f"{path.stem}_edgetpu.tflite"
    assert (res.tpu_ops, res.cpu_ops) == (9, 6)
    placement = {r["op"]: r["on"] for r in res.ops}
    assert placement == {"CONV_2D": "tpu", "UNIDIRECTIONAL_SEQUENCE_LSTM": "cpu", "FULLY_CONNECTED": "cpu"}
    # the pipeline step marks the compiled model as an Edge TPU model in its metadata
    compiled = tmp_path / f"{path.stem}_edgetpu.tflite"
    assert step["model"] == str(compiled) and step["tpu_ops"] == 9
    assert read_metadata(compiled).edgetpu and not read_metadata(local).edgetpu
    assert any("UNIDIRECTIONAL_SEQUENCE_LSTM" in line and "CPU" in line for line in step["lines"])


def test_help_documents_units_and_examples():
    result = CliRunner().invoke(main, ["convert", "--help"])
    assert result.exit_code == 0
    for word in ("--int8", "--edgetpu", "--c-array", "--strict", "--calibration", "bytes", "Examples"):
        assert word in result.output


def test_convert_module_does_not_import_tensorflow_at_import():
    code = "import sys, edge_ecg.cli.convert, edge_ecg.export; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --------------------------------------------------------------------------- QAT models


@pytest.fixture(scope="module")
def qat_run(trained, tmp_path_factory):
    """A run folder holding a tensorflow-model-optimization QAT model (LSTM left in float)."""
    from edge_ecg.model.qat import qat_scope
    from edge_ecg.tfcompat import load_tf, load_tfmot

    tf, keras = load_tf()
    tfmot = load_tfmot()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )
    _, ds1, _ = trained
    tf.keras.utils.set_random_seed(3)
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    beat = keras.Input((L, 1), name="beat")
    rr = keras.Input((F,), name="rr")
    x = beat
    for i in range(2):
        conv = keras.layers.Conv1D(8, 5, padding="same", activation="relu", name=f"conv{i}")
        x = annotate(conv, registry.Default8BitQuantizeConfig(["kernel"], ["activation"], False))(x)
        x = annotate(keras.layers.MaxPooling1D(2, name=f"pool{i}"), configs.NoOpQuantizeConfig())(x)
    x = keras.layers.LSTM(16, name="lstm")(x)
    x = annotate(keras.layers.Concatenate(name="concat"))([x, rr])
    x = annotate(keras.layers.Dense(16, activation="relu", name="dense"))(x)
    out = annotate(keras.layers.Dense(len(CLASSES), activation="softmax", name="probs"))(x)
    with qat_scope():
        model = tfmot.quantization.keras.quantize_apply(keras.Model([beat, rr], out))
    model.compile(keras.optimizers.Adam(5e-3), "sparse_categorical_crossentropy")
    model.fit({"beat": ds1.X[..., None], "rr": ds1.rr}, ds1.y, epochs=20, batch_size=64, verbose=0)
    folder = tmp_path_factory.mktemp("qat_run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy": what the training side writes
        model.save(folder / "model_qat.h5")
    (folder / "config.json").write_text(to_json(RunConfig(window=WINDOW)))
    return folder


def test_qat_run_converts_from_its_trained_weights(qat_run, trained, fake_mitdb):
    from edge_ecg.export import convert_source, float_ops, load_source_model
    from edge_ecg.export.flatbuffer import buffer_alignment_ok
    from edge_ecg.export.pipeline import compare_on_ds2, keras_predict
    from edge_ecg.runtime import TFLiteClassifier

    _, ds1, ds2 = trained
    source = load_source_model(qat_run)
    assert source.qat and source.path.name == "model_qat.h5"
    conv = convert_source(source, "int8", representative=(ds1.X[:200], ds1.rr[:200]))  # arrays, not a database
    assert conv.metadata.qat and "QAT weights" in conv.metadata.conversion["qat"]
    assert conv.metadata.conversion["calibration"]["beats"] == 200
    assert conv.metadata.source == f"{qat_run.name}/model_qat.h5"
    assert buffer_alignment_ok(conv.tflite)
    assert float_ops(conv.tflite) == []
    qat_probs = keras_predict(source.model, ds2.X, ds2.rr)
    float_probs = keras_predict(conv.float_model, ds2.X, ds2.rr)
    int8_probs = TFLiteClassifier(conv.tflite).predict_batch(ds2.X, ds2.rr)
    # stripping the fake quantisation keeps the trained function
    assert np.mean(qat_probs.argmax(1) == float_probs.argmax(1)) >= 0.97
    assert np.mean(int8_probs.argmax(1) == float_probs.argmax(1)) >= 0.97
    assert not any(type(layer).__name__.startswith("Quantize") for layer in conv.float_model.layers)
    cmp, _ = compare_on_ds2(source, conv, fake_mitdb, progress=False)
    assert cmp["n_beats"] == len(ds2)
    assert cmp["agreement_pct"] == pytest.approx(100 * np.mean(int8_probs.argmax(1) == float_probs.argmax(1)))
    qat = cmp["qat_model"]
    assert qat["agreement_with_float_pct"] == pytest.approx(100 * np.mean(qat_probs.argmax(1) == float_probs.argmax(1)))
    assert 0 <= qat["macro_f1"] <= 1

    # the training side's layout: the stripped QAT model plus the wrapped one beside it
    layout = qat_run.parent / "qat_layout"
    layout.mkdir()
    conv.float_model.save(layout / "model_qat.keras")
    shutil.copy(qat_run / "model_qat.h5", layout / "qat_wrapped.h5")
    shutil.copy(qat_run / "config.json", layout / "config.json")
    plain = load_source_model(layout)
    assert plain.path.name == "model_qat.keras" and plain.qat
    reference = plain.qat_reference()
    assert reference is not None and any(type(x).__name__ == "QuantizeWrapperV2" for x in reference.layers)
    np.testing.assert_allclose(keras_predict(plain.model, ds2.X[:20], ds2.rr[:20]), float_probs[:20], atol=1e-5)
