"""Evaluate: beat-by-beat scoring the way AAMI EC57 (PhysioNet's ``bxb``) does.

- :func:`match_beats` pairs test beats with reference beats (150 ms window, bxb's rules);
  :class:`TruthMatcher` gives a live stream's beats their reference label as they come, and
  :class:`ReferenceLabeller` does it as a consumer of ``run_stream`` (the stream emits beats,
  evaluation consumes them).
- :func:`score_record` turns one record into a 6 x 6 confusion matrix (``N S V F Q`` and
  ``O`` for "no beat"; rows reference, columns test) in a :class:`RecordScore`.
- :func:`ec57_stats` derives Se, +P, FPR and F1 per class (EC57's VEB/SVEB FP rules), QRS
  Se/+P, accuracy and macro-F1 from a matrix.
- :class:`Report` gathers records: gross (summed) and average figures, text, JSON, a PNG.
- :func:`predict_records` runs any classifier (TFLite or Keras) over a BeatSet, record by record;
  :func:`evaluate_classifier` scores it at the reference beats of records.
- :func:`score_predictions` builds a :class:`Report` from beats classified at their
  reference positions (offline evaluation of a classifier).
- :func:`end_to_end_scores` runs a classifier through the whole stream (our own detector)
  and offline, per record; :func:`gap_decomposition` and :func:`summarise_scores` pool them.
- :func:`in_run_counts` (and :func:`in_run_scores` for a classifier on records): S beats
  inside runs (reference ``prev_rr_ratio`` < 0.85) and by run length, labelled S or not.

Pure numpy; matplotlib is imported only to plot, the stream only to score end to end.
Evaluation sits above the stream and below the model: it imports records, signal, beats,
runtime and stream, never model, export or cli (``tests/test_layers.py``).
"""

from edge_ecg.evaluate.classify import evaluate_classifier, predict_records
from edge_ecg.evaluate.ec57 import MATRIX_LABELS, RecordScore, class_counts, ec57_stats, score_record
from edge_ecg.evaluate.end_to_end import (
    cut_record,
    end_to_end_scores,
    gap_decomposition,
    in_run_scores,
    load_record_id,
    offline_labels,
    snap_to_reference,
    summarise_scores,
)
from edge_ecg.evaluate.live import ReferenceLabeller
from edge_ecg.evaluate.match import MATCH_WINDOW_S, TruthMatcher, match_beats, tolerance_samples
from edge_ecg.evaluate.report import Report, plot_confusion, score_predictions
from edge_ecg.evaluate.runs import IN_RUN_PREV_RR_RATIO, in_run_counts, in_run_mask, s_run_lengths

__all__ = [
    "IN_RUN_PREV_RR_RATIO", "MATCH_WINDOW_S", "MATRIX_LABELS", "RecordScore", "ReferenceLabeller", "Report",
    "TruthMatcher", "class_counts", "cut_record", "ec57_stats", "end_to_end_scores", "evaluate_classifier",
    "gap_decomposition", "in_run_counts", "in_run_mask", "in_run_scores", "load_record_id", "match_beats",
    "offline_labels", "plot_confusion", "predict_records", "s_run_lengths", "score_predictions", "score_record",
    "snap_to_reference", "summarise_scores", "tolerance_samples",
]
