"""Classifying and scoring the annotated beats of records with any classifier (TFLite or Keras).

:func:`predict_records` runs a :class:`~edge_ecg.runtime.classifier.Classifier` over a BeatSet,
one record at a time; :func:`evaluate_classifier` builds the beats of records with the
classifier's own window and scores its labels at the reference positions, EC57-style.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_ecg.config import CLASSES
from edge_ecg.runtime.classifier import Classifier


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

    Each record is its own stream: a sequence model is :meth:`~edge_ecg.runtime.classifier.Classifier.reset` at every
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
