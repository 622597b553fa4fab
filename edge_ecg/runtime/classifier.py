"""The seam between a model and everything that runs one: the :class:`Classifier` protocol.

The stream (:class:`edge_ecg.stream.pipeline.StreamPipeline`), the offline evaluation
(:func:`edge_ecg.evaluate.classify.predict_records`), end-to-end scoring
(:func:`edge_ecg.evaluate.end_to_end_scores`) and the wearer's adaptation
(:func:`edge_ecg.runtime.adapt.make_adapter`) take any object that has these members. The
package's classifiers say so explicitly (they subclass :class:`Classifier`):
:class:`edge_ecg.runtime.interpreter.TFLiteClassifier` (a converted ``.tflite``, no
TensorFlow) and :class:`edge_ecg.model.predict.KerasClassifier` (a tf_keras model).

Pure typing: importing this module imports no model runtime (the device side stays
TensorFlow-free).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from edge_ecg.config import WindowConfig


@runtime_checkable
class Classifier(Protocol):
    """A beat classifier: normalised beat windows and their RR features in, class probabilities out.

    - ``window``: the :class:`~edge_ecg.config.WindowConfig` the model expects (rate ``fs`` in
      Hz, ``pre_s`` + ``post_s`` seconds around the R peak: ``window.length`` samples L; lead,
      filter, normalisation);
    - ``classes``: the class letters in the order of the model's outputs (C of them; the AAMI
      ``N S V F Q`` for every edge-ecg model);
    - ``rr_features``: the names of the F past-only RR features the model reads, in order
      (:data:`edge_ecg.config.RR_FEATURES`); for a converted model, those its metadata names;
    - ``uses_rr``: whether the model has an RR input at all (if not, callers pass ``rr=None``);
    - :meth:`reset`: start a new stream of beats (a new record, or after a gap); a model with
      beat history (a sequence model, variant (b)) forgets the beats it has seen, a model
      without does nothing;
    - :meth:`predict_batch`: the classify call.
    """

    window: WindowConfig
    classes: tuple[str, ...]
    rr_features: tuple[str, ...]
    uses_rr: bool

    def reset(self) -> None:
        """Start a new stream of beats: no later beat is classified with an earlier one's history."""
        ...

    def predict_batch(self, X: np.ndarray, rr: np.ndarray | None) -> np.ndarray:
        """Class probabilities ``(n, C)`` float32, rows summing to 1, for ``n`` beats in time order.

        ``X``: normalised windows ``(n, L)`` float32 (``L = window.length``, the R peak at
        index ``window.pre``); ``rr``: their RR features ``(n, F)`` float32 (seconds and
        ratios, in the order of ``rr_features``), or None when ``uses_rr`` is False. A model
        with beat history takes successive calls as one stream (until :meth:`reset`).
        """
        ...
