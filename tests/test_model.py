"""The model stage: architectures, batch-norm folding, QAT wrapping, loss, Keras prediction
(augmentation and imbalance, numpy only: tests/test_augment.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ecg.config import AugmentConfig, ModelConfig, WindowConfig
from edge_ecg.errors import ConfigError

tf_keras = pytest.importorskip("tf_keras")
pytestmark = pytest.mark.tf

WINDOW = WindowConfig()
NO_RR = ModelConfig(use_rr=False, rr_logits=False, wave_dropout=0.0, rr_scale=0.0)


@pytest.fixture(scope="module")
def arch():
    from edge_ecg.model import arch as module

    return module


def _inputs(n, window=WINDOW, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "beat": rng.standard_normal((n, window.length, 1)).astype(np.float32),
        "rr": rng.uniform(0.4, 1.6, (n, len(window.rr_features))).astype(np.float32),
    }


@pytest.mark.parametrize("name", ["cnn_lstm", "cnn", "lstm"])
def test_every_arch_has_the_agreed_signature_and_a_similar_size(arch, name):
    model = arch.build_model(ModelConfig(arch=name), WINDOW)
    assert [t.name.split(":")[0] for t in model.inputs] == ["beat", "rr"]
    assert tuple(model.inputs[0].shape[1:]) == (WINDOW.length, 1)
    assert tuple(model.inputs[1].shape[1:]) == (len(WINDOW.rr_features),)
    probs = model.predict(_inputs(4), verbose=0)
    assert probs.shape == (4, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    reference = arch.count_params(arch.build_model(ModelConfig(arch="cnn_lstm"), WINDOW, batch_norm=False))
    assert abs(arch.count_params(model) - reference) / reference < 0.12
    kinds = {type(layer).__name__ for layer in model.layers}
    assert ("LSTM" in kinds) == (name != "cnn")
    assert ("Conv1D" in kinds) == (name != "lstm")


def test_model_without_rr_has_one_input(arch):
    model = arch.build_model(NO_RR, WINDOW)
    assert [t.name.split(":")[0] for t in model.inputs] == ["beat"]


def test_folding_batch_norm_keeps_the_outputs(arch):
    cfg = ModelConfig()
    model = arch.build_model(cfg, WINDOW)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # give the batch norms non-trivial statistics
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.3, n), rng.normal(0, 0.5, n), rng.uniform(0.2, 3, n)])
    folded = arch.fold_batch_norm(model, cfg, WINDOW)
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in folded.layers)
    x = _inputs(16)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_qat_model_fake_quantises_convs_and_dense_and_round_trips(arch, tmp_path):
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.model.run import load_keras_model

    cfg = ModelConfig()
    model = arch.build_model(cfg, WINDOW)
    qat = quantize_model(model, cfg, WINDOW)
    wrapped = {layer.layer.name for layer in qat.layers if type(layer).__name__ == "QuantizeWrapperV2"}
    assert {"conv0", "conv1", "conv2", "dense", "probs"} <= wrapped
    assert "lstm" not in wrapped  # calibrated at conversion
    x = _inputs(32)
    qat(x, training=True)  # the first training step sets the activation ranges
    p_float, p_qat = model.predict(x, verbose=0), qat.predict(x, verbose=0)
    assert np.abs(p_qat - p_float).max() < 0.05  # 8-bit fake quantisation, not a different model
    assert np.abs(p_qat - p_float).max() > 0  # ... but quantised
    path = tmp_path / "qat.h5"
    qat.save(path)
    np.testing.assert_allclose(load_keras_model(path).predict(x, verbose=0), p_qat, atol=1e-6)


def test_bad_model_config_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown arch"):
        ModelConfig(arch="transformer")
    with pytest.raises(ConfigError, match="dropout"):
        ModelConfig(dropout=1.5)
    with pytest.raises(ConfigError, match="noise_minutes"):
        AugmentConfig(noise_minutes=20)
    with pytest.raises(ConfigError, match="rr_logits"):
        ModelConfig(rr_logits=False, wave_dropout=0.3)
    with pytest.raises(ConfigError, match="use_rr"):
        ModelConfig(rr_logits=True, use_rr=False)
    with pytest.raises(ConfigError, match="rr_hidden"):
        ModelConfig(rr_logits=True, rr_hidden=-1)
    with pytest.raises(ConfigError, match="rr_scale"):
        ModelConfig(rr_scale=-1.0)


def test_rr_scale_centres_and_scales_the_rr_input_and_converts_to_int8(arch):
    from edge_ecg.model._tf import keras
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.model.run import strip_qat

    cfg = ModelConfig(rr_scale=5.0)
    model = arch.build_model(cfg, WINDOW)
    x = _inputs(16)
    scaled = keras.Model(model.inputs, model.get_layer("rr_scale").output).predict(x, verbose=0)
    np.testing.assert_allclose(scaled, 5.0 * (x["rr"] - 1.0), atol=1e-5)
    assert "rr_scale" not in {layer.name for layer in arch.build_model(ModelConfig(rr_scale=0.0), WINDOW).layers}
    qat = quantize_model(model, cfg, WINDOW)
    qat(x, training=True)
    plain = strip_qat(qat)
    from edge_ecg.export.convert import convert_model

    converted = convert_model(plain, WINDOW, "int8", (x["beat"][..., 0], x["rr"]))
    assert converted.metadata.quantization == "int8" and len(converted.tflite) < 64 * 1024


def test_rr_logit_path_adds_rr_only_logits_and_wave_dropout_is_training_only(arch):
    cfg = ModelConfig(rr_logits=True, rr_hidden=8, wave_dropout=0.5)
    model = arch.build_model(cfg, WINDOW)
    assert [t.name.split(":")[0] for t in model.inputs] == ["beat", "rr"]
    x = _inputs(64)
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # the output is softmax(main logits + RR-only logits), and the RR-only part sees only rr
    from edge_ecg.model._tf import keras

    sub = keras.Model(model.inputs, [model.get_layer("main_logits").output, model.get_layer("rr_logits").output])
    main, rr_part = sub.predict(x, verbose=0)
    z = main + rr_part
    expected = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-5)
    rr_only = keras.Model(model.inputs, model.get_layer("rr_logits").output)
    other = dict(x, beat=np.zeros_like(x["beat"]))
    np.testing.assert_allclose(rr_only.predict(other, verbose=0), rr_part, atol=1e-6)
    # in training mode about half the samples lose their main logits: output = softmax(rr logits)
    train_probs = model(x, training=True).numpy()
    rr_soft = np.exp(rr_part - rr_part.max(1, keepdims=True))
    rr_soft /= rr_soft.sum(1, keepdims=True)
    dropped = np.all(np.abs(train_probs - rr_soft) < 1e-5, axis=1)
    assert 10 <= dropped.sum() <= 54
    # the QAT model strips to a plain model that converts to full int8
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.model.run import strip_qat

    qat = quantize_model(model, cfg, WINDOW)
    qat(x, training=True)
    plain = strip_qat(qat)
    assert np.abs(plain.predict(x, verbose=0) - qat.predict(x, verbose=0)).max() < 0.05
    from edge_ecg.export.convert import convert_model

    converted = convert_model(plain, WINDOW, "int8", (x["beat"][..., 0], x["rr"]))
    assert converted.metadata.quantization == "int8" and len(converted.tflite) < 64 * 1024


# --------------------------------------------------------------------------- loss, predictor


def test_focal_loss_matches_its_formula():
    from edge_ecg.model.train import focal_loss

    probs = np.array([[0.7, 0.1, 0.1, 0.05, 0.05], [0.2, 0.5, 0.1, 0.1, 0.1]], dtype=np.float32)
    y = np.array([0, 2])
    got = np.asarray(focal_loss(2.0)(y, probs))
    expected = [-(0.3**2) * np.log(0.7), -(0.9**2) * np.log(0.1)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_keras_classifier_batch_equals_single(arch):
    from edge_ecg.config import RunConfig
    from edge_ecg.model.predict import KerasClassifier

    model = arch.build_model(ModelConfig(), WINDOW)
    clf = KerasClassifier(model, RunConfig())
    x = _inputs(5)
    batch = clf.predict_batch(x["beat"][..., 0], x["rr"])
    assert batch.shape == (5, 5) and batch.dtype == np.float32
    np.testing.assert_allclose(clf.predict(x["beat"][2, :, 0], x["rr"][2]), batch[2], atol=1e-5)
    with pytest.raises(ValueError, match="RR"):
        clf.predict_batch(x["beat"][..., 0])


def test_stripped_qat_model_keeps_trained_weights_and_converts_to_int8(arch):
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.model.run import strip_qat

    cfg = ModelConfig()
    model = arch.build_model(cfg, WINDOW)
    qat = quantize_model(model, cfg, WINDOW)
    x = _inputs(64)
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(x, np.arange(64) % 5, epochs=1, batch_size=32, verbose=0)  # move the weights away from the float ones
    plain = strip_qat(qat)
    assert not any("Quantize" in type(layer).__name__ for layer in plain.layers)
    conv = plain.get_layer("conv1").get_weights()[0]
    assert not np.allclose(conv, arch.fold_batch_norm(model, cfg, WINDOW).get_layer("conv1").get_weights()[0])
    # the stripped model computes what the QAT model computes, up to 8-bit rounding
    assert np.abs(plain.predict(x, verbose=0) - qat.predict(x, verbose=0)).max() < 0.05
    from edge_ecg.export.convert import convert_model

    converted = convert_model(plain, WINDOW, "int8", (x["beat"][..., 0], x["rr"]))
    assert converted.metadata.quantization == "int8" and len(converted.tflite) < 64 * 1024


def test_variant_b_converts_to_int8_and_the_runtime_builds_its_sequences(arch, tmp_path):
    """A variant (b) model converts to a full-int8 flatbuffer; the TFLite runtime, fed one
    window at a time, builds the same sequences as the offline gather, and reset() restarts it."""
    from edge_ecg.beats import sequence_index
    from edge_ecg.export.c_array import write_c_array
    from edge_ecg.export.convert import convert_model
    from edge_ecg.runtime import TFLiteClassifier

    window = WindowConfig(pre_s=0.3, post_s=0.45)
    cfg = ModelConfig(sequence_beats=3, conv_filters=(8, 8), lstm_units=8, dense_units=8, embed_units=8)
    model = arch.build_model(cfg, window, batch_norm=False)
    rng = np.random.default_rng(1)
    record = np.array(["a"] * 20 + ["b"] * 20)
    X = rng.standard_normal((40, window.length)).astype(np.float32)
    rr = rng.uniform(0.5, 1.5, (40, len(window.rr_features))).astype(np.float32)
    seq = sequence_index(record, 3)
    converted = convert_model(model, window, "int8", (X[seq], rr[seq]))
    assert converted.metadata.quantization == "int8" and len(converted.tflite) < 64 * 1024
    clf = TFLiteClassifier(converted.tflite)
    assert clf.sequence_beats == 3
    whole = clf.predict_batch(X[seq], rr[seq])  # sequences given: no history involved
    clf.reset()
    first = clf.predict_batch(X[:20], rr[:20])
    clf.reset()
    second = clf.predict_batch(X[20:], rr[20:])
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    keras_probs = model.predict({"beat": X[seq][..., None], "rr": rr[seq]}, verbose=0)
    assert np.abs(whole - keras_probs).max() < 0.1  # int8 close to the float model it came from
    header = write_c_array(converted.tflite, tmp_path / "m.c", metadata=converted.metadata)[1].read_text()
    assert "_SEQUENCE_BEATS 3 " in header


def test_variant_b_reads_the_last_k_beats_and_folds_and_quantises(arch):
    """Sequence model: (K, L, 1) + (K, F) in, the last beat classified; BN folding exact;
    QAT wraps the per-beat Conv2D and strips back to a plain model."""
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.model.run import strip_qat

    window = WindowConfig(pre_s=0.3, post_s=0.45)
    cfg = ModelConfig(sequence_beats=3, conv_filters=(8, 8), lstm_units=8, dense_units=8, embed_units=8)
    model = arch.build_model(cfg, window)
    assert tuple(model.inputs[0].shape[1:]) == (3, window.length, 1)
    assert tuple(model.inputs[1].shape[1:]) == (3, len(window.rr_features))
    rng = np.random.default_rng(0)
    x = {"beat": rng.standard_normal((16, 3, window.length, 1)).astype(np.float32),
         "rr": rng.uniform(0.5, 1.5, (16, 3, len(window.rr_features))).astype(np.float32)}
    p = model.predict(x, verbose=0)
    assert p.shape == (16, 5)
    # the oldest beat reaches the output (the LSTM runs across beats)
    older = {"beat": x["beat"].copy(), "rr": x["rr"]}
    older["beat"][:, 0] = rng.standard_normal(older["beat"][:, 0].shape)
    assert np.abs(model.predict(older, verbose=0) - p).max() > 1e-4
    folded = arch.fold_batch_norm(model, cfg, window)
    np.testing.assert_allclose(folded.predict(x, verbose=0), p, atol=1e-5)
    qat = quantize_model(model, cfg, window)
    assert any(type(layer).__name__ == "QuantizeWrapperV2" and "conv0" in layer.name for layer in qat.layers)
    qat(x, training=True)
    plain = strip_qat(qat)
    assert plain.predict(x, verbose=0).shape == (16, 5)
    with pytest.raises(ConfigError, match="cnn_lstm"):
        ModelConfig(arch="cnn", sequence_beats=3)
    with pytest.raises(ConfigError, match="sequence_beats"):
        ModelConfig(sequence_beats=1)


def test_ema_makes_the_weight_average_the_model_after_each_epoch(arch):
    from edge_ecg.config import RunConfig, TrainConfig
    from edge_ecg.model._tf import keras
    from edge_ecg.model.train import _compile

    window = WindowConfig(pre_s=0.2, post_s=0.2)
    cfg = ModelConfig(conv_filters=(4,), lstm_units=4, dense_units=4)
    x = _inputs(64, window)
    y = np.arange(64) % 5
    finals = []
    for m in (0.0, 0.9):
        keras.utils.set_random_seed(0)  # the same start for both
        model = arch.build_model(cfg, window, batch_norm=False)
        _compile(model, RunConfig(window=window, model=cfg, train=TrainConfig(ema_momentum=m)), 1e-2, steps=8)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        finals.append(model.get_weights()[0])
        assert bool(getattr(model.optimizer, "use_ema", False)) == (m > 0)
        if m:  # after the epoch the model holds the optimizer's moving average
            for var, avg in zip(model.trainable_variables, model.optimizer._model_variables_moving_average):
                np.testing.assert_array_equal(var.numpy(), avg.numpy())
    assert not np.allclose(finals[0], finals[1])  # same start, same batches, a different model
    with pytest.raises(ConfigError, match="ema_momentum"):
        TrainConfig(ema_momentum=1.0)
