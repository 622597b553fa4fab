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

#: Where each public name lives: loaded on first use (PEP 562), so a stream that only needs
#: :class:`ReferenceLabeller` does not import the offline scorers (as ``edge_ecg.beats`` does).
_NAMES: dict[str, str] = {
    "evaluate_classifier": "classify", "predict_records": "classify",
    "MATRIX_LABELS": "ec57", "RecordScore": "ec57", "class_counts": "ec57", "ec57_stats": "ec57",
    "score_record": "ec57",
    "cut_record": "end_to_end", "end_to_end_scores": "end_to_end", "gap_decomposition": "end_to_end",
    "in_run_scores": "end_to_end", "load_record_id": "end_to_end", "offline_labels": "end_to_end",
    "snap_to_reference": "end_to_end", "summarise_scores": "end_to_end",
    "ReferenceLabeller": "live",
    "MATCH_WINDOW_S": "match", "TruthMatcher": "match", "match_beats": "match", "tolerance_samples": "match",
    "Report": "report", "plot_confusion": "report", "score_predictions": "report",
    "IN_RUN_PREV_RR_RATIO": "runs", "in_run_counts": "runs", "in_run_mask": "runs", "s_run_lengths": "runs",
}

__all__ = [
    "IN_RUN_PREV_RR_RATIO", "MATCH_WINDOW_S", "MATRIX_LABELS", "RecordScore", "ReferenceLabeller", "Report",
    "TruthMatcher", "class_counts", "cut_record", "ec57_stats", "end_to_end_scores", "evaluate_classifier",
    "gap_decomposition", "in_run_counts", "in_run_mask", "in_run_scores", "load_record_id", "match_beats",
    "offline_labels", "plot_confusion", "predict_records", "s_run_lengths", "score_predictions", "score_record",
    "snap_to_reference", "summarise_scores", "tolerance_samples",
]


def __getattr__(name: str):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f"edge_ecg.evaluate.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'edge_ecg.evaluate' has no attribute {name!r}")
