"""Keras models as classifiers with the same interface as the TFLite one, and scoring them.

:class:`KerasClassifier` mirrors :class:`edge_ecg.runtime.interpreter.TFLiteClassifier`
(``window``, ``classes``, ``uses_rr``, ``predict``, ``predict_batch``), so evaluation code
(:func:`edge_ecg.evaluate.evaluate_classifier`, :func:`edge_ecg.evaluate.predict_records`) takes either; :func:`edge_ecg.model.run.load_run_classifier` opens whichever a ``--model``
argument names (a run folder, ``.keras``, ``.h5`` or ``.tflite``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_ecg.config import CLASSES, RunConfig
from edge_ecg.errors import ModelError
from edge_ecg.runtime.classifier import Classifier


class KerasClassifier(Classifier):
    """A tf_keras edge-ecg model with its window configuration (a :class:`Classifier`).

    ``model`` is a loaded tf_keras model with inputs ``beat`` ``(L, 1)`` and optionally
    ``rr`` ``(F,)``; ``config`` the :class:`RunConfig` it was trained with.

    A sequence model (variant (b), ``(K, L, 1)`` and ``(K, F)`` inputs) sees each beat with
    the K - 1 beats before it: successive :meth:`predict_batch` calls are then one stream of
    beats in time order (a :class:`edge_ecg.beats.BeatHistory`); call :meth:`reset` at the
    start of every record or after a gap.
    """

    def __init__(self, model, config: RunConfig, path: Path | None = None):
        self.model = model
        self.config = config
        self.window = config.window
        self.classes = CLASSES
        self.rr_features = self.window.rr_features
        self.path = path
        names = [t.name.split(":")[0] for t in model.inputs]
        self.uses_rr = "rr" in names
        beat_shape = tuple(model.inputs[names.index("beat")].shape[1:]) if "beat" in names else (-1, 1)
        length = int(beat_shape[-2])
        if length != self.window.length:
            raise ModelError(
                f"{path or 'model'}: input 'beat' has {length} samples but config.json's window has {self.window.length}"
            )
        from edge_ecg.beats.sequence import BeatHistory, sequence_beats_of

        self.sequence_beats = sequence_beats_of(beat_shape)
        self.history = BeatHistory(self.sequence_beats) if self.sequence_beats else None
        self.runtime_name = "tf_keras"

    def reset(self) -> None:
        """Start a new stream of beats (a sequence model forgets the beats it has seen)."""
        if self.history is not None:
            self.history.reset()

    def predict_batch(self, X: np.ndarray, rr: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
        """Probabilities ``(n, 5)`` float32 for normalised windows ``X`` ``(n, L)`` and RR features ``rr`` ``(n, F)``."""
        X = np.asarray(X, dtype=np.float32)
        if self.uses_rr and rr is None:
            raise ValueError("this model needs the beats' RR features (rr)")
        if len(X) == 0:
            return np.zeros((0, len(CLASSES)), dtype=np.float32)
        rr = np.asarray(rr if rr is not None else np.zeros((len(X), 0)), dtype=np.float32)
        if self.history is not None:
            X, rr = self.history.push(X, rr)
        feed = {"beat": X[..., None]}
        if self.uses_rr:
            feed["rr"] = rr
        if len(X) <= 64:  # a stream's few beats: a direct call is ~10x cheaper than predict()
            return np.asarray(self.model(feed, training=False), dtype=np.float32)
        return np.asarray(self.model.predict(feed, batch_size=batch_size, verbose=0), dtype=np.float32)

    def predict(self, beat: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``(5,)`` float32 for one normalised window ``(L,)`` and its RR features ``(F,)``."""
        return self.predict_batch(np.asarray(beat)[None], None if rr is None else np.asarray(rr)[None])[0]
