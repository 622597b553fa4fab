"""Beats: from a cleaned signal and R-peak positions to model inputs.

``windows`` cuts and normalises beat-centred windows, ``rr`` computes past-only RR-interval
features, ``sequence`` groups each beat with the ones before it (variant (b) models),
``dataset`` builds (and caches) whole MIT-BIH beat sets for training and evaluation,
``shards`` keeps a training corpus's windows on disk, one file per record, read a batch at a
time (import it as ``edge_ecg.beats.shards``). The
same functions serve the offline builder and the live stream, so a model sees identical
inputs in both.

``dataset`` (whole-record builders and their cache) is loaded only when one of its names is
used: a device streaming from a serial port never pays for it.
"""

from edge_ecg.beats.rr import RRTracker, rr_features
from edge_ecg.beats.sequence import BeatHistory, sequence_beats_of, sequence_index
from edge_ecg.beats.windows import beat_windows, extract_window, normalise_window

_DATASET_NAMES = ("BeatSet", "build_beatset", "record_beats")

__all__ = ["BeatHistory", "RRTracker", "beat_windows", "extract_window", "normalise_window", "rr_features",
           "sequence_beats_of", "sequence_index", *_DATASET_NAMES]


def __getattr__(name: str):
    if name in _DATASET_NAMES:
        from edge_ecg.beats import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'edge_ecg.beats' has no attribute {name!r}")
