"""Quantisation-aware training (QAT) with tensorflow-model-optimization on tf_keras.

:func:`quantize_model` takes a trained model, folds its batch norms into the convolutions
(:func:`edge_ecg.model.arch.fold_batch_norm`) and wraps it for fake quantisation:

- ``Conv1D`` (with its fused ReLU): int8 per-channel kernel and int8 output, through an
  explicit ``Default8BitQuantizeConfig`` (the default registry does not know ``Conv1D``);
- ``Conv2D`` (variant (b)'s per-beat convolutions), ``Dense``, ``Concatenate``: the default
  8-bit configs (the softmax output is handled as the converter expects);
- ``MaxPooling1D``/``2D``, ``Reshape``, ``Cropping1D``, ``Flatten``: no quantiser of their own
  (they pass int8 values through unchanged);
- ``LSTM``: left in float during training (``lstm="calibrate"``) and calibrated to int8 by
  the converter from a representative dataset. ``lstm="fake_quant"`` instead wraps it with
  an 8-bit kernel/recurrent-kernel quantiser and output quantiser (:class:`LSTMQuantizeConfig`).

Loading a saved QAT model needs :func:`qat_scope` (:func:`edge_ecg.model.run.load_keras_model`
uses it); :func:`edge_ecg.model.run.strip_qat` takes the wrappers off again for conversion.
"""

from __future__ import annotations

from edge_ecg.config import ModelConfig, WindowConfig
from edge_ecg.model._tf import keras

LSTM_MODES: tuple[str, ...] = ("calibrate", "fake_quant")


def _tfmot():
    from edge_ecg.tfcompat import load_tfmot

    return load_tfmot()


def _configs():
    from tensorflow_model_optimization.python.core.quantization.keras import quantizers
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    return quantizers, configs, registry


def lstm_quantize_config():
    """A QuantizeConfig for ``LSTM``: 8-bit kernels (per-tensor, symmetric) and an 8-bit output."""
    tfmot = _tfmot()
    quantizers, _, _ = _configs()

    class LSTMQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Fake-quantise an LSTM's kernel and recurrent kernel to int8 and its output to int8."""

        def get_weights_and_quantizers(self, layer):
            wq = quantizers.LastValueQuantizer(num_bits=8, symmetric=True, narrow_range=True, per_axis=False)
            cell = layer.cell
            return [(cell.kernel, wq), (cell.recurrent_kernel, wq)]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            layer.cell.kernel = quantize_weights[0]
            layer.cell.recurrent_kernel = quantize_weights[1]

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {}

    return LSTMQuantizeConfig()


def qat_scope(extra: dict | None = None):
    """The custom-object scope needed to build or load a QAT model."""
    tfmot = _tfmot()
    _, configs, registry = _configs()
    objects = {
        "Default8BitQuantizeConfig": registry.Default8BitQuantizeConfig,
        "NoOpQuantizeConfig": configs.NoOpQuantizeConfig,
        "LSTMQuantizeConfig": type(lstm_quantize_config()),
        **(extra or {}),
    }
    return tfmot.quantization.keras.quantize_scope(objects)


def annotate(folded_model, lstm: str = "calibrate"):
    """``folded_model`` (BN folded) with every quantisable layer annotated for QAT."""
    if lstm not in LSTM_MODES:
        raise ValueError(f"lstm must be one of {LSTM_MODES}")
    tfmot = _tfmot()
    _, configs, registry = _configs()
    annotate_layer = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        name = type(layer).__name__
        if name == "Conv1D":
            return annotate_layer(layer, registry.Default8BitQuantizeConfig(["kernel"], ["activation"], False))
        if name in ("Conv2D", "Dense", "Concatenate", "Add", "Softmax"):
            return annotate_layer(layer)
        if name in ("MaxPooling1D", "MaxPooling2D", "Reshape", "Cropping1D", "Flatten", "Dropout"):
            return annotate_layer(layer, configs.NoOpQuantizeConfig())
        if name == "LSTM" and lstm == "fake_quant":
            return annotate_layer(layer, lstm_quantize_config())
        return layer

    return keras.models.clone_model(folded_model, clone_function=clone)


def quantize_model(model, model_cfg: ModelConfig, window: WindowConfig, lstm: str = "calibrate"):
    """A QAT model (fake-quantised, BN folded) initialised from trained float ``model``."""
    from edge_ecg.model.arch import fold_batch_norm

    folded = fold_batch_norm(model, model_cfg, window)
    annotated = annotate(folded, lstm)
    with qat_scope():
        return _tfmot().quantization.keras.quantize_apply(annotated)
