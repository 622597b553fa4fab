"""edge_ecg.runtime: the TensorFlow-free metadata reader and TFLite classifier.

A small CNN+LSTM is converted once (module fixture, TensorFlow on the test side only);
everything else works on the .tflite bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from edge_ecg.config import CLASSES, RR_FEATURES, WindowConfig
from edge_ecg.errors import DeviceError, EdgeEcgError, ModelError

WINDOW = WindowConfig(fs=100.0, pre_s=0.3, post_s=0.2, rr_features=RR_FEATURES[:6])  # 51 samples, 6 RR features
L, F = WINDOW.length, len(WINDOW.rr_features)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    t = np.arange(L)
    X = np.exp(-0.5 * ((t[None, :] - rng.integers(15, 35, (300, 1))) / 3.0) ** 2) + 0.1 * rng.standard_normal((300, L))
    rr = np.abs(0.8 + 0.2 * rng.standard_normal((300, F)))
    return X.astype(np.float32), rr.astype(np.float32)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    """``{"int8": path, "float32": path}`` of a small Conv1D -> LSTM -> Dense model."""
    from edge_ecg.export import convert_model
    from edge_ecg.tfcompat import load_tf

    tf, keras = load_tf()
    tf.keras.utils.set_random_seed(1)
    beat = keras.Input((L, 1), name="beat")
    rr = keras.Input((F,), name="rr")
    x = keras.layers.Conv1D(6, 5, padding="same", activation="relu")(beat)
    x = keras.layers.MaxPooling1D(3)(x)
    x = keras.layers.LSTM(8)(x)
    x = keras.layers.Concatenate()([x, rr])
    model = keras.Model([beat, rr], keras.layers.Dense(len(CLASSES), activation="softmax")(x))
    X, R = data
    y = (X.argmax(1) > L // 2).astype(int) * 2  # N or V by peak position
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit({"beat": X[..., None], "rr": R}, y, epochs=3, verbose=0)
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for mode in ("int8", "float32"):
        conv = convert_model(model, WINDOW, mode, representative=(X[:100], R[:100]))
        out[mode] = conv.save(folder / f"m_{mode}.tflite")
    return out


def _rewrite_metadata(path, tmp_path, change) -> bytes:
    """The model at ``path`` with its edge_ecg JSON passed through ``change(dict) -> dict | None``."""
    from edge_ecg.export.metadata import embed_metadata
    from edge_ecg.export.flatbuffer import read_model, write_model
    from edge_ecg.runtime.metadata import metadata_entries

    model = path.read_bytes()
    doc = change(json.loads(metadata_entries(model)["edge_ecg"]))
    if doc is None:  # drop the entry
        m = read_model(model)
        m.metadata = [e for e in m.metadata if e.name not in (b"edge_ecg", "edge_ecg")]
        return write_model(m)
    return embed_metadata(model, json.dumps(doc))


# --------------------------------------------------------------------------- metadata


def test_metadata_reader_without_litert_schema_gives_the_same(models, monkeypatch):
    from edge_ecg.runtime import metadata as md

    model = models["int8"].read_bytes()
    with_schema = md._entries_with_schema(md._schema_module(), model)
    by_hand = md._entries_with_struct(model)
    assert with_schema == by_hand
    assert {"edge_ecg", "min_runtime_version"} <= set(by_hand)
    monkeypatch.setattr(md, "_schema_module", lambda: None)
    meta = md.read_metadata(models["int8"])
    assert meta.window == WINDOW and meta.classes == CLASSES
    monkeypatch.undo()  # a layout the struct reader cannot follow: the generated bindings read it

    def cannot(_model):
        raise ValueError("vector runs past the end of the file")

    monkeypatch.setattr(md, "_entries_with_struct", cannot)
    assert md.metadata_entries(model) == with_schema
    monkeypatch.setattr(md, "_schema_module", lambda: None)
    with pytest.raises(ModelError, match="corrupt TFLite flatbuffer"):
        md.metadata_entries(model)
    code = ("import sys; from edge_ecg.runtime import read_metadata; read_metadata(sys.argv[1]); "
            "print('ai_edge_litert.schema_py_generated' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(models["int8"])], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr  # reading metadata imports no bindings


def test_metadata_round_trip(models):
    from edge_ecg.runtime import parse_metadata, read_metadata

    meta = read_metadata(models["int8"])
    assert parse_metadata(meta.to_json()) == meta
    assert meta.input("beat").shape == (1, L, 1) and meta.input("rr").shape == (1, F)
    assert meta.outputs[0].shape == (1, len(CLASSES))
    assert meta.uses_rr and meta.rr_features == WINDOW.rr_features


def test_training_records_are_stored_by_database_and_either_layout_reads_back(models):
    from edge_ecg.runtime import parse_metadata, read_metadata

    meta = replace(read_metadata(models["int8"]), training_records=("mitdb/101", "mitdb/106", "svdb/800", "x"))
    stored = json.loads(meta.to_json())["training_records"]
    assert stored == {"mitdb": ["101", "106"], "svdb": ["800"], "": ["x"]}
    assert parse_metadata(meta.to_json()) == meta
    first_layout = json.loads(meta.to_json())
    first_layout["training_records"] = ["mitdb/101", "mitdb/106", "svdb/800", "x"]  # files converted before
    assert parse_metadata(json.dumps(first_layout)).training_records == meta.training_records


def test_model_without_metadata_names_the_missing_field(models, tmp_path):
    from edge_ecg.runtime import read_metadata

    stripped = _rewrite_metadata(models["int8"], tmp_path, lambda doc: None)
    path = tmp_path / "bare.tflite"
    path.write_bytes(stripped)
    with pytest.raises(ModelError, match=r"bare\.tflite: missing metadata field 'edge_ecg'"):
        read_metadata(path)


@pytest.mark.parametrize("field", ["window", "classes", "inputs", "quantization", "toolkit_version"])
def test_metadata_missing_a_field_is_named(models, tmp_path, field):
    from edge_ecg.runtime import read_metadata

    def drop(doc):
        doc.pop(field)
        return doc

    with pytest.raises(ModelError, match=f"missing field '{field}'"):
        read_metadata(_rewrite_metadata(models["int8"], tmp_path, drop))


def test_metadata_from_a_newer_toolkit_is_refused(models, tmp_path):
    from edge_ecg.runtime import read_metadata

    newer = _rewrite_metadata(models["int8"], tmp_path, lambda doc: {**doc, "format_version": 99})
    with pytest.raises(ModelError, match="format_version 99"):
        read_metadata(newer)


def test_not_a_tflite_and_missing_file(tmp_path):
    from edge_ecg.runtime import TFLiteClassifier, read_metadata

    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="junk.tflite: not a TFLite model"):
        read_metadata(junk)
    with pytest.raises(ModelError, match="no such model file"):
        TFLiteClassifier(tmp_path / "absent.tflite")


def test_input_shape_that_disagrees_with_the_metadata(models, tmp_path):
    from edge_ecg.config import to_dict
    from edge_ecg.runtime import TFLiteClassifier

    longer = to_dict(replace(WINDOW, post_s=0.5))
    bad = _rewrite_metadata(models["int8"], tmp_path, lambda doc: {**doc, "window": longer})
    with pytest.raises(ModelError, match=r"input 'beat' holds 51 samples but the metadata window is 81"):
        TFLiteClassifier(bad)


# --------------------------------------------------------------------------- the classifier


def test_predict_matches_a_direct_litert_run(models, data):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edge_ecg.runtime import TFLiteClassifier, read_metadata

    X, R = data
    clf = TFLiteClassifier(models["int8"])  # delegate "none": the reference kernels
    assert clf.runtime_name == "ai_edge_litert" and clf.quantized and clf.uses_rr
    meta = read_metadata(models["int8"])
    interp = Interpreter(model_path=str(models["int8"]),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    details = {d["name"]: d for d in interp.get_input_details()}
    for role, x in (("beat", X[7]), ("rr", R[7])):
        info = meta.input(role)
        d = details[info.name]
        scale, zp = d["quantization"]
        q = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8).reshape(d["shape"])
        interp.set_tensor(d["index"], q)
    interp.invoke()
    out = interp.get_output_details()[0]
    raw = interp.get_tensor(out["index"]).reshape(-1)
    scale, zp = out["quantization"]
    probs = clf.predict(X[7], R[7])
    assert probs.dtype == np.float32 and probs.shape == (len(CLASSES),)
    np.testing.assert_allclose(probs, scale * (raw.astype(np.float32) - zp), atol=1e-7)


def test_each_beat_starts_from_a_zero_lstm_state(models, data):
    """The fused LSTM keeps state between invocations; the classifier resets it per beat."""
    from edge_ecg.runtime import TFLiteClassifier

    X, R = data
    clf = TFLiteClassifier(models["int8"])
    first = clf.predict_raw_batch(X[:1], R[:1])[0]
    clf.predict_batch(X[1:20], R[1:20])
    again = clf.invoke_raw(clf.quantize_inputs(X[0], R[0]))
    np.testing.assert_array_equal(first, again)
    # without the reset the state would leak: prove the model is stateful at all
    clf._reset = None
    leaked = [clf.invoke_raw(clf.quantize_inputs(X[0], R[0])) for _ in range(3)]
    assert any(not np.array_equal(first, x) for x in leaked)


def test_predict_batch_equals_predict(models, data):
    from edge_ecg.runtime import TFLiteClassifier

    X, R = data
    clf = TFLiteClassifier(models["int8"])
    batch = clf.predict_batch(X[:10], R[:10])
    single = np.stack([clf.predict(X[i], R[i]) for i in range(10)])
    np.testing.assert_array_equal(batch, single)
    assert np.allclose(batch.sum(1), 1.0, atol=0.03)


def test_float_model_and_tensorflow_lite_fallback(models, data):
    from edge_ecg.runtime import TFLiteClassifier

    X, R = data
    litert = TFLiteClassifier(models["float32"])
    assert not litert.quantized
    tf_lite = TFLiteClassifier(models["float32"], runtime="tensorflow.lite")
    assert tf_lite.runtime_name == "tensorflow.lite"
    np.testing.assert_allclose(litert.predict_batch(X[:20], R[:20]), tf_lite.predict_batch(X[:20], R[:20]), atol=1e-5)


def test_threads_and_xnnpack_give_the_same_labels(models, data):
    from edge_ecg.runtime import TFLiteClassifier

    X, R = data
    ref = TFLiteClassifier(models["int8"]).predict_raw_batch(X[:50], R[:50]).astype(int)
    fast = TFLiteClassifier(models["int8"], threads=2, delegate="xnnpack").predict_raw_batch(X[:50], R[:50]).astype(int)
    assert np.abs(ref - fast).max() <= 2
    assert np.mean(ref.argmax(1) == fast.argmax(1)) >= 0.95


def test_quantize_and_dequantize():
    from edge_ecg.runtime import TensorInfo, dequantize, quantize

    info = TensorInfo("beat", 0, "b", (1, 4, 1), "int8", scale=0.05, zero_point=-10)
    x = np.array([0.0, 1.0, -100.0, 100.0], dtype=np.float32)
    q = quantize(x, info)
    assert q.dtype == np.int8 and q.shape == (1, 4, 1)
    assert q.reshape(-1).tolist() == [-10, 10, -128, 127]  # clipped at the int8 range
    assert abs(dequantize(q, info).reshape(-1)[1] - 1.0) <= info.scale / 2


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # no half-built Delegate left behind
def test_bad_delegate_and_missing_runtimes(models, monkeypatch):
    import ctypes.util

    from edge_ecg.runtime import TFLiteClassifier, interpreter

    with pytest.raises(EdgeEcgError, match="unknown delegate 'gpu'"):
        TFLiteClassifier(models["int8"], delegate="gpu")
    if ctypes.util.find_library("edgetpu") is None:  # no Edge TPU runtime on this machine
        with pytest.raises(DeviceError, match=r"libedgetpu\.so\.1 not found.*libedgetpu1-std") as err:
            TFLiteClassifier(models["int8"], delegate="edgetpu")
        assert "\n" not in str(err.value)
    monkeypatch.setattr(interpreter, "_interpreter_module", lambda name: None)
    with pytest.raises(EdgeEcgError, match="no TFLite interpreter found.*ai-edge-litert.*tflite-runtime"):
        TFLiteClassifier(models["int8"])


def test_runtime_never_imports_tensorflow(models, data):
    X, R = data
    code = (
        "import sys, numpy as np\n"
        "from edge_ecg.runtime import TFLiteClassifier\n"
        f"clf = TFLiteClassifier({str(models['int8'])!r})\n"
        f"p = clf.predict(np.array({X[0].tolist()}, dtype=np.float32), np.array({R[0].tolist()}, dtype=np.float32))\n"
        "assert p.shape == (5,)\n"
        "print(clf.runtime_name, sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    assert out == "ai_edge_litert []"
