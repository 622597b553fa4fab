"""Signal: filtering, resampling and QRS detection, offline and streaming alike.

Every filter here is causal and keeps its state across chunks, so a record processed in
one call and the same samples arriving 10 at a time from a serial port give the same
numbers. That is what lets a model trained offline run unchanged on a live stream.
"""

from edge_ecg.signal.detect import QRSDetector, ecg_peaks
from edge_ecg.signal.filter import StreamFilter, ecg_clean
from edge_ecg.signal.quality import QualityMonitor
from edge_ecg.signal.resample import StreamResampler, ecg_resample

__all__ = [
    "QRSDetector",
    "QualityMonitor",
    "StreamFilter",
    "StreamResampler",
    "ecg_clean",
    "ecg_peaks",
    "ecg_resample",
]
