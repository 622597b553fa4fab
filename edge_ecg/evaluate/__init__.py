"""Evaluate: beat-by-beat scoring the way AAMI EC57 (PhysioNet's ``bxb``) does.

- :func:`match_beats` pairs test beats with reference beats (150 ms window, bxb's rules);
  :class:`TruthMatcher` gives a live stream's beats their reference label as they come.
- :func:`score_record` turns one record into a 6 x 6 confusion matrix (``N S V F Q`` and
  ``O`` for "no beat"; rows reference, columns test) in a :class:`RecordScore`.
- :func:`ec57_stats` derives Se, +P, FPR and F1 per class (EC57's VEB/SVEB FP rules), QRS
  Se/+P, accuracy and macro-F1 from a matrix.
- :class:`Report` gathers records: gross (summed) and average figures, text, JSON, a PNG.
- :func:`score_predictions` builds a :class:`Report` from beats classified at their
  reference positions (offline evaluation of a classifier).
- :func:`end_to_end_scores` runs a classifier through the whole stream (our own detector)
  and offline, per record; :func:`gap_decomposition` and :func:`summarise_scores` pool them.

Pure numpy; matplotlib is imported only to plot.
"""

from edge_ecg.evaluate.ec57 import MATRIX_LABELS, RecordScore, class_counts, ec57_stats, score_record
from edge_ecg.evaluate.end_to_end import (
    cut_record,
    end_to_end_scores,
    gap_decomposition,
    load_record_id,
    snap_to_reference,
    summarise_scores,
)
from edge_ecg.evaluate.match import MATCH_WINDOW_S, TruthMatcher, match_beats, tolerance_samples
from edge_ecg.evaluate.report import Report, plot_confusion, score_predictions

__all__ = [
    "MATCH_WINDOW_S",
    "MATRIX_LABELS",
    "RecordScore",
    "Report",
    "TruthMatcher",
    "class_counts",
    "cut_record",
    "ec57_stats",
    "end_to_end_scores",
    "gap_decomposition",
    "load_record_id",
    "match_beats",
    "plot_confusion",
    "score_predictions",
    "score_record",
    "snap_to_reference",
    "summarise_scores",
    "tolerance_samples",
]
