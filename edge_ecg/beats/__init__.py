"""Beats: from a cleaned signal and R-peak positions to model inputs.

``windows`` cuts and normalises beat-centred windows, ``rr`` computes past-only RR-interval
features, ``dataset`` builds (and caches) whole MIT-BIH beat sets for training and
evaluation. The same functions serve the offline builder and the live stream, so a model
sees identical inputs in both.
"""

from edge_ecg.beats.dataset import BeatSet, build_beatset, record_beats
from edge_ecg.beats.rr import RRTracker, rr_features
from edge_ecg.beats.windows import beat_windows, extract_window, normalise_window

__all__ = [
    "BeatSet",
    "RRTracker",
    "beat_windows",
    "build_beatset",
    "extract_window",
    "normalise_window",
    "record_beats",
    "rr_features",
]
