"""Runtime: run a converted .tflite without TensorFlow.

- :func:`read_metadata` reads the ``edge_ecg`` description a converted model carries
  (window, classes, inputs and their quantisation, toolkit version).
- :class:`Classifier` is what every classifier offers (the protocol the stream, evaluation and
  adaptation take).
- :class:`TFLiteClassifier` classifies one beat (or a batch, one beat at a time) with
  LiteRT (``ai_edge_litert``), ``tflite_runtime`` or, when installed, ``tensorflow.lite``.

Nothing here imports TensorFlow unless it is the only interpreter installed.
"""

from edge_ecg.runtime.classifier import Classifier
from edge_ecg.runtime.interpreter import (
    DELEGATES,
    RUNTIMES,
    TFLiteClassifier,
    available_runtime,
    dequantize,
    load_interpreter,
    quantize,
)
from edge_ecg.runtime.metadata import METADATA_NAME, ModelMetadata, TensorInfo, parse_metadata, read_metadata

__all__ = [
    "Classifier",
    "DELEGATES",
    "METADATA_NAME",
    "ModelMetadata",
    "RUNTIMES",
    "TFLiteClassifier",
    "TensorInfo",
    "available_runtime",
    "dequantize",
    "load_interpreter",
    "parse_metadata",
    "quantize",
    "read_metadata",
]
