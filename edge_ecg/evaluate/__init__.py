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
- :func:`in_run_counts` (and :func:`in_run_scores` for a classifier on records): S beats
  inside runs (reference ``prev_rr_ratio`` < 0.85) and by run length, labelled S or not.

Pure numpy; matplotlib is imported only to plot. The names are loaded on first use (PEP 562):
the stream, which needs only :class:`TruthMatcher`, does not pay for the reports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Each public name and the submodule that defines it.
_WHERE = {
    "MATRIX_LABELS": "ec57", "RecordScore": "ec57", "class_counts": "ec57", "ec57_stats": "ec57",
    "score_record": "ec57",
    "cut_record": "end_to_end", "end_to_end_scores": "end_to_end", "gap_decomposition": "end_to_end",
    "load_record_id": "end_to_end", "snap_to_reference": "end_to_end", "summarise_scores": "end_to_end",
    "in_run_scores": "end_to_end", "offline_labels": "end_to_end",
    "IN_RUN_PREV_RR_RATIO": "runs", "in_run_counts": "runs", "in_run_mask": "runs", "s_run_lengths": "runs",
    "MATCH_WINDOW_S": "match", "TruthMatcher": "match", "match_beats": "match", "tolerance_samples": "match",
    "Report": "report", "plot_confusion": "report", "score_predictions": "report",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:  # for readers and static tools; at run time __getattr__ loads them
    from edge_ecg.evaluate.ec57 import MATRIX_LABELS, RecordScore, class_counts, ec57_stats, score_record  # noqa: F401
    from edge_ecg.evaluate.end_to_end import (  # noqa: F401
        cut_record,
        end_to_end_scores,
        gap_decomposition,
        in_run_scores,
        load_record_id,
        offline_labels,
        snap_to_reference,
        summarise_scores,
    )
    from edge_ecg.evaluate.match import MATCH_WINDOW_S, TruthMatcher, match_beats, tolerance_samples  # noqa: F401
    from edge_ecg.evaluate.report import Report, plot_confusion, score_predictions  # noqa: F401
    from edge_ecg.evaluate.runs import IN_RUN_PREV_RR_RATIO, in_run_counts, in_run_mask, s_run_lengths  # noqa: F401


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'edge_ecg.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"edge_ecg.evaluate.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
