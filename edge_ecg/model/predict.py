"""Keras models as classifiers with the same interface as the TFLite one, and scoring them.

:class:`KerasClassifier` mirrors :class:`edge_ecg.runtime.interpreter.TFLiteClassifier`
(``window``, ``classes``, ``uses_rr``, ``predict``, ``predict_batch``), so evaluation code
takes either; :func:`edge_ecg.model.run.load_run_classifier` opens whichever a ``--model``
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


def evaluate_classifier(classifier, db_dir: str | Path, records, progress: bool = True, title: str = "",
                        lead: str | None = None, beats=None):
    """Score ``classifier`` on the annotated beats of ``records`` (reference positions), EC57-style.

    Windows are built with the classifier's own ``window``, on ``lead`` (default: the model's
    lead where a record has it, else the database's default lead), unless ``beats`` (the
    BeatSet of ``records`` built so before, e.g. once for several models) is given. Returns
    ``(report, probs (n, 5), beats)`` where ``report`` is an :class:`edge_ecg.evaluate.Report`.
    """
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.evaluate.report import score_predictions
    from edge_ecg.records.load import vf_episodes

    if beats is None:
        beats = build_beatset(db_dir, list(records), classifier.window, progress=progress, lead=lead)
    probs = predict_records(classifier, beats, progress=progress)
    report = score_predictions(
        beats.record, beats.sample, beats.y, probs, fs=classifier.window.fs,
        excluded=vf_episodes(db_dir, records, classifier.window.fs), title=title,
    )
    return report, probs, beats


def predict_records(classifier: Classifier, beats, progress: bool = False, batch: int = 4096) -> np.ndarray:
    """Probabilities ``(n, 5)`` of ``classifier`` for a BeatSet, one record at a time.

    Each record is its own stream: a sequence model is :meth:`~KerasClassifier.reset` at every
    record's start, so no beat is classified with another patient's beats. Beats go to the
    model ``batch`` at a time; ``progress`` shows a bar (beats classified) on stderr.
    """
    from tqdm import tqdm

    uses_rr = classifier.uses_rr
    probs = np.zeros((len(beats), len(CLASSES)), dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, beats.record[1:] != beats.record[:-1], True])
    with tqdm(total=len(beats), desc="classifying", unit="beat", disable=not progress, leave=False) as bar:
        for a, b in zip(starts[:-1], starts[1:]):
            classifier.reset()
            for lo in range(a, b, batch):
                hi = min(b, lo + batch)
                probs[lo:hi] = classifier.predict_batch(beats.X[lo:hi], beats.rr[lo:hi] if uses_rr else None)
                bar.update(hi - lo)
    return probs
