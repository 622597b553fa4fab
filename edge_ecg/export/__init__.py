"""Export: a trained Keras model -> a self-describing .tflite for phones, boards and MCUs.

- :func:`convert_model` / :func:`load_source_model`: int8 (full integer, fused
  ``UNIDIRECTIONAL_SEQUENCE_LSTM``), float16 or float32 conversion with ``edge_ecg``
  metadata (:mod:`edge_ecg.export.metadata`).
- :func:`describe_model`: size, op counts, MACs, input/output quantisation.
- :func:`compare_predictions`: Keras vs converted model, EC57 scores of both.
- :mod:`~edge_ecg.export.micro`: TFLite-Micro arena search and parity with LiteRT.
- :mod:`~edge_ecg.export.edgetpu`: ``edgetpu_compiler`` wrapper.
- :func:`write_c_array`: the model as an aligned C array for firmware.
- :func:`run_convert`: all of it, as ``edge-ecg convert`` runs it.

TensorFlow is imported (through :func:`edge_ecg.tfcompat.load_tf`) only inside the
functions that need it.
"""

from edge_ecg.export.c_array import write_c_array
from edge_ecg.export.convert import (
    MODES,
    ConvertedModel,
    SourceModel,
    convert_model,
    convert_source,
    float_ops,
    load_source_model,
    representative_from_db,
    stratified_indices,
)
from edge_ecg.export.metadata import attach_metadata, build_metadata, embed_metadata
from edge_ecg.export.pipeline import run_convert
from edge_ecg.model.run import load_keras_model
from edge_ecg.export.report import compare_predictions, describe_model, render_text

__all__ = [
    "MODES",
    "ConvertedModel",
    "SourceModel",
    "attach_metadata",
    "build_metadata",
    "compare_predictions",
    "convert_model",
    "convert_source",
    "describe_model",
    "embed_metadata",
    "float_ops",
    "load_keras_model",
    "load_source_model",
    "render_text",
    "representative_from_db",
    "run_convert",
    "stratified_indices",
    "write_c_array",
]
