"""The networks: a CNN+LSTM hybrid (the product) and two ablations at a similar size.

Every model takes ``beat`` ``(L, 1)`` float32 (a normalised window, R peak at index
``window.pre``) and, when ``ModelConfig.use_rr``, ``rr`` ``(F,)`` float32 (past-only RR
features in seconds and ratios); it returns a softmax ``(5,)`` over
:data:`edge_ecg.config.CLASSES`.

- ``cnn_lstm``: ``[Conv1D -> BatchNorm -> ReLU -> MaxPool] x n`` turns the window into a
  sequence of local waveform features (``L / pool**n`` steps); an LSTM reads that sequence;
  its last state, beside the RR features, feeds a small dense head.
- ``cnn``: the same convolutional front end plus one more conv block, flattened into the
  head (no recurrence). Its extra block's width is chosen to match ``cnn_lstm``'s size.
- ``lstm``: no convolutions; the window is cut into frames of ``pool**n`` samples and an
  LSTM reads the frames. Its width is chosen to match ``cnn_lstm``'s size.

With ``ModelConfig.sequence_beats = K`` (variant (b), ``cnn_lstm`` only) the inputs are
``beat`` ``(K, L, 1)`` and ``rr`` ``(K, F)``, the last K beats oldest first: the same
convolutions (as ``Conv2D`` with ``(1, kernel)`` kernels, so each beat is filtered on its own)
and a ``Dense(embed_units)`` turn each beat into a vector, the LSTM runs across the K beats
(each vector beside that beat's RR features), and the head classifies the last beat.

``batch_norm=False`` builds the inference form used for quantisation-aware training: each
conv has a bias and a fused ReLU, and :func:`fold_batch_norm` copies a trained model into it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge_ecg.config import CLASSES, ModelConfig, WindowConfig
from edge_ecg.model._tf import keras


def build_model(model_cfg: ModelConfig, window: WindowConfig, batch_norm: bool = True):
    """A tf_keras model for ``model_cfg.arch`` with inputs sized by ``window``.

    Inputs ``beat`` ``(window.length, 1)`` and (if ``use_rr``) ``rr``
    ``(len(window.rr_features),)``; output ``probs`` ``(5,)`` softmax. Weights are drawn from
    the global seed (set it first for reproducible models).
    """
    if model_cfg.sequence_beats:
        return _build_sequence(model_cfg, window, batch_norm)
    if model_cfg.arch == "cnn_lstm":
        return _build(model_cfg, window, batch_norm, extra=None)
    return _build(model_cfg, window, batch_norm, extra=matched_width(model_cfg, window))


def count_params(model) -> int:
    """Trainable plus non-trainable parameters of a model."""
    return int(model.count_params())


def matched_width(model_cfg: ModelConfig, window: WindowConfig) -> int:
    """The width (extra conv filters for ``cnn``, LSTM units for ``lstm``) whose model has
    the parameter count closest to ``cnn_lstm`` with the same configuration."""
    reference = dataclasses.replace(model_cfg, arch="cnn_lstm")
    target = count_params(_build(reference, window, False, extra=None))
    best, best_err = 4, None
    for width in range(4, 257, 2):
        n = count_params(_build(model_cfg, window, False, extra=width))
        err = abs(n - target)
        if best_err is None or err < best_err:
            best, best_err = width, err
        if n > target:
            break
    return best


def _conv_block(x, i: int, filters: int, cfg: ModelConfig, batch_norm: bool, per_beat: bool = False):
    """Conv -> (BatchNorm -> ReLU | fused ReLU) -> MaxPool; ``per_beat``: 2-D over ``(beats, time)``
    with ``(1, k)`` kernels, i.e. the same 1-D convolution on every beat of a sequence."""
    L = keras.layers
    conv, kernel, pool = (L.Conv2D, (1, cfg.conv_kernel), (1, cfg.pool)) if per_beat else \
        (L.Conv1D, cfg.conv_kernel, cfg.pool)
    if batch_norm:
        x = conv(filters, kernel, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}")(x)
        x = L.ReLU(name=f"relu{i}")(x)
    else:
        x = conv(filters, kernel, padding="same", activation="relu", name=f"conv{i}")(x)
    pooling = L.MaxPooling2D if per_beat else L.MaxPooling1D
    return pooling(pool, name=f"pool{i}")(x)


def _build(cfg: ModelConfig, window: WindowConfig, batch_norm: bool, extra: int | None):
    L = keras.layers
    beat = keras.Input((window.length, 1), name="beat")
    inputs = [beat]
    x = beat
    if cfg.arch in ("cnn_lstm", "cnn"):
        for i, f in enumerate(cfg.conv_filters):
            x = _conv_block(x, i, f, cfg, batch_norm)
        if cfg.arch == "cnn_lstm":
            x = L.LSTM(cfg.lstm_units, name="lstm")(x)
        else:
            x = _conv_block(x, len(cfg.conv_filters), int(extra), cfg, batch_norm)
            x = L.Flatten(name="flatten")(x)
    else:  # lstm over frames of pool**n samples
        frame = cfg.pool ** len(cfg.conv_filters)
        steps = window.length // frame
        crop = window.length - steps * frame
        if crop:
            x = L.Cropping1D((crop // 2, crop - crop // 2), name="crop")(x)
        x = L.Reshape((steps, frame), name="frames")(x)
        x = L.LSTM(int(extra), name="lstm")(x)
    rr = None
    if cfg.use_rr:
        rr = keras.Input((len(window.rr_features),), name="rr")
        inputs.append(rr)
        if cfg.rr_scale > 0:
            rr = L.Rescaling(cfg.rr_scale, offset=-cfg.rr_scale, name="rr_scale")(rr)
    return _head(inputs, x, rr, cfg)


def _build_sequence(cfg: ModelConfig, window: WindowConfig, batch_norm: bool):
    """Variant (b): per-beat CNN embeddings of the last K beats, an LSTM across them."""
    L = keras.layers
    k, n_rr = cfg.sequence_beats, len(window.rr_features)
    beat = keras.Input((k, window.length, 1), name="beat")
    inputs = [beat]
    x = beat
    for i, f in enumerate(cfg.conv_filters):
        x = _conv_block(x, i, f, cfg, batch_norm, per_beat=True)
    x = L.Reshape((k, int(x.shape[2]) * int(x.shape[3])), name="beat_features")(x)
    x = L.Dense(cfg.embed_units, activation="relu", name="embed")(x)
    rr_now = None
    if cfg.use_rr:
        rr_seq = keras.Input((k, n_rr), name="rr")
        inputs.append(rr_seq)
        if cfg.rr_scale > 0:
            rr_seq = L.Rescaling(cfg.rr_scale, offset=-cfg.rr_scale, name="rr_scale")(rr_seq)
        x = L.Concatenate(name="beat_and_rr")([x, rr_seq])
        rr_now = L.Reshape((n_rr,), name="rr_now")(L.Cropping1D((k - 1, 0), name="last_beat")(rr_seq))
    x = L.LSTM(cfg.lstm_units, name="lstm")(x)
    return _head(inputs, x, rr_now, cfg)


def _head(inputs, x, rr, cfg: ModelConfig):
    """Dense head on features ``x`` (beside the beat's RR features ``rr`` when given), plus the
    optional RR-only logit path; softmax over the classes."""
    L = keras.layers
    if rr is not None:
        x = L.Concatenate(name="features")([x, rr])
    x = L.Dense(cfg.dense_units, activation="relu", name="dense")(x)
    if cfg.dropout > 0:
        x = L.Dropout(cfg.dropout, name="dropout")(x)
    if not cfg.rr_logits:
        out = L.Dense(len(CLASSES), activation="softmax", name="probs")(x)
        return keras.Model(inputs, out, name=cfg.arch)
    main = L.Dense(len(CLASSES), name="main_logits")(x)
    if cfg.wave_dropout > 0:  # whole-sample dropout of the main head (identity at inference)
        main = L.Dropout(cfg.wave_dropout, noise_shape=(None, 1), name="wave_dropout")(main)
    r = rr
    if cfg.rr_hidden > 0:
        r = L.Dense(cfg.rr_hidden, activation="relu", name="rr_dense")(r)
    r = L.Dense(len(CLASSES), name="rr_logits")(r)
    logits = L.Add(name="logits")([main, r])
    out = L.Softmax(name="probs")(logits)
    return keras.Model(inputs, out, name=cfg.arch)


def fold_batch_norm(model, model_cfg: ModelConfig, window: WindowConfig):
    """The inference form of a trained ``batch_norm=True`` model, with each BatchNorm folded.

    ``conv(x) * g / sqrt(var + eps) + (b - mean * g / sqrt(var + eps))`` becomes one conv
    with that kernel and bias, followed by the ReLU fused into the conv. Outputs match the
    original (in inference mode) to float rounding.
    """
    folded = build_model_inference(model_cfg, window)
    for layer in folded.layers:
        if not layer.weights:
            continue
        src = model.get_layer(layer.name)
        if layer.name.startswith("conv"):
            bn = model.get_layer("bn" + layer.name[4:])
            kernel = src.get_weights()[0]
            gamma, beta, mean, var = bn.get_weights()
            scale = gamma / np.sqrt(var + bn.epsilon)
            layer.set_weights([kernel * scale[None, None, :], beta - mean * scale])
        else:
            layer.set_weights(src.get_weights())
    return folded


def build_model_inference(model_cfg: ModelConfig, window: WindowConfig):
    """The ``batch_norm=False`` form of :func:`build_model` (same widths, same layer names)."""
    return build_model(model_cfg, window, batch_norm=False)
