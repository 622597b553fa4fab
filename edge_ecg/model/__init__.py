"""Model: the networks, the training loop, QAT and Keras prediction (TensorFlow side; augmentation and
class balancing are numpy, in :mod:`edge_ecg.beats.augment` and :mod:`edge_ecg.beats.sampling`).

- :mod:`~edge_ecg.model.arch`: :func:`build_model` (``cnn_lstm``, ``cnn``, ``lstm``), :func:`fold_batch_norm`.
- :mod:`~edge_ecg.model.qat`: :func:`quantize_model`, :func:`qat_scope`.
- :mod:`~edge_ecg.model.run`: a run folder's models: :func:`find_model_file`, :func:`load_keras_model`,
  :func:`strip_qat`, :func:`load_run_classifier` (imports no TensorFlow until they load a model).
- :mod:`~edge_ecg.model.train`: :func:`train_run` (DS1, patient-wise validation, run folder).
- :mod:`~edge_ecg.model.distribute`: the tf.data epoch pipeline, ``tf.distribute`` strategies, ``TF_CONFIG``.
- :mod:`~edge_ecg.model.predict`: :class:`KerasClassifier` (scored by :func:`edge_ecg.evaluate.evaluate_classifier`).

Names are imported lazily so that ``import edge_ecg.model`` does not start TensorFlow.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "build_model": "arch", "fold_batch_norm": "arch", "count_params": "arch",
    "quantize_model": "qat", "qat_scope": "qat",
    "find_model_file": "run", "load_keras_model": "run", "strip_qat": "run", "load_run_classifier": "run",
    "train_run": "train", "TrainResult": "train",
    "KerasClassifier": "predict",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"edge_ecg.model.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'edge_ecg.model' has no attribute {name!r}")
