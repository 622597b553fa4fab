"""A training run folder and the models in it: which file to load, loading it, stripping QAT.

The one place that decides what a ``--model`` argument names, for ``evaluate``, ``convert``
and the tools alike (so they never pick different files from the same folder):

- a run folder -> the first of :data:`RUN_MODEL_FILES` it holds: the QAT-trained model
  (``model_qat.keras``, what is converted to int8) before the float one; ``prefer="float"``
  looks for the float files first (``model.keras``, ``model.h5``), then the QAT ones (the
  shipped ``models/`` folder holds only ``model_qat.keras``). A SavedModel folder
  (``saved_model.pb``) is itself the model;
- a ``.keras`` / ``.h5`` / ``.tflite`` file -> itself (its run folder is its parent when a
  ``config.json`` sits beside it).

Path logic imports no TensorFlow, so the runtime side may use it; :func:`load_keras_model`
and :func:`strip_qat` import it (through :func:`edge_ecg.tfcompat.load_tf`) when called.
"""

from __future__ import annotations

from pathlib import Path

from edge_ecg.errors import ModelError, first_line

#: A run folder's layout: the one place its file names are written (train writes them, the rest reads).
RUN_CONFIG = "config.json"
#: The float model (batch norm folded) and the QAT-trained one (quantisation wrappers stripped).
RUN_FLOAT_MODEL = "model.keras"
RUN_QAT_MODEL = "model_qat.keras"
#: The fake-quantised QAT model of a run folder (a reference for the DS2 comparison).
RUN_QAT_WRAPPED = "qat_wrapped.h5"
#: Training figures (history, validation scores, class weights) and their plot.
RUN_METRICS = "metrics.json"
RUN_CURVES = "curves.png"
#: Per-epoch state of a resumable run.
RUN_CHECKPOINTS = "checkpoints"
#: Every file a finished run folder holds.
RUN_FILES: tuple[str, ...] = (RUN_CONFIG, RUN_FLOAT_MODEL, RUN_QAT_MODEL, RUN_QAT_WRAPPED, RUN_METRICS, RUN_CURVES)
#: Files looked for in a training run folder, in order of preference (QAT first; .h5 from older runs).
RUN_MODEL_FILES: tuple[str, ...] = (RUN_QAT_MODEL, "model_qat.h5", RUN_FLOAT_MODEL, "model.h5")
#: File suffixes that name a model.
MODEL_SUFFIXES: tuple[str, ...] = (".keras", ".h5", ".tflite")
#: Which model of a run folder: the QAT-trained one first, or only the float one.
PREFERENCES: tuple[str, ...] = ("qat", "float")


def run_model_files(prefer: str = "qat") -> tuple[str, ...]:
    """The model files of a run folder in the order they are looked for (see the module docstring)."""
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {PREFERENCES}, not {prefer!r}")
    qat = tuple(n for n in RUN_MODEL_FILES if "qat" in n)
    plain = tuple(n for n in RUN_MODEL_FILES if "qat" not in n)
    return qat + plain if prefer == "qat" else plain + qat


def find_model_file(path: str | Path, prefer: str = "qat") -> tuple[Path, Path | None]:
    """``(model file, run folder or None)`` for a run folder, a SavedModel folder or a model file.

    See the module docstring for the rule. A missing path, a folder without a model and a
    file of another kind are one-line :class:`ModelError` s.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file or run folder")
    if path.is_dir():
        names = run_model_files(prefer)
        for name in names:
            if (path / name).is_file():
                return path / name, path
        if (path / "saved_model.pb").is_file():
            return path, None
        raise ModelError(f"{path}: not a run folder (no {', '.join(names)}) and not a SavedModel")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelError(f"{path}: not a model (expected {', '.join(MODEL_SUFFIXES)} or a run folder)")
    return path, (path.parent if (path.parent / "config.json").is_file() else None)


def load_keras_model(path: str | Path):
    """Load a tf_keras model (``.keras``, ``.h5`` or SavedModel folder), uncompiled, QAT layers included.

    Raises :class:`ModelError` (one line) when it is missing or not a Keras model.
    """
    from edge_ecg.tfcompat import load_tf

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if path.suffix.lower() == ".tflite":
        raise ModelError(f"{path}: already a TFLite model; convert takes the Keras model or its run folder")
    _, keras = load_tf()
    try:
        with _qat_scope():
            model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # OSError, ValueError, zipfile errors, h5py errors...
        raise ModelError(f"{path}: not a Keras model ({first_line(exc)})") from None
    if not hasattr(model, "inputs") or not model.inputs:
        raise ModelError(f"{path}: not a Keras model with inputs (a SavedModel without a Keras signature?)")
    return model


def load_run_classifier(path: str | Path, prefer: str = "qat", threads: int = 1):
    """A classifier for what a ``--model`` argument names: an ``edge_ecg.runtime.TFLiteClassifier``
    for a ``.tflite``, else an :class:`edge_ecg.model.predict.KerasClassifier` (its window from the
    ``config.json`` beside the model file).

    ``stream``'s :func:`edge_ecg.stream.classifier_files.load_classifier` is the TensorFlow-free one:
    ``.tflite`` only, the shipped model by default, checked to fit the live pipeline.
    """
    path, _ = find_model_file(path, prefer)
    if path.suffix.lower() == ".tflite":
        from edge_ecg.runtime.interpreter import TFLiteClassifier

        return TFLiteClassifier(path, threads=threads)
    from edge_ecg.config import load_config
    from edge_ecg.model.predict import KerasClassifier

    cfg_path = path.parent / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{path}: no config.json beside it (needed for the window the model expects)")
    return KerasClassifier(load_keras_model(path), load_config(cfg_path), path)


def is_qat_model(model) -> bool:
    """True when ``model`` holds tensorflow-model-optimization fake-quantisation layers."""
    return any(type(layer).__name__.startswith("Quantize") for layer in model.layers)


def strip_qat(qat_model):
    """The plain float tf_keras model inside a QAT model: same graph and trained weights, no fake quantisation.

    The graph is the QAT model's own (so no model configuration is needed): every
    ``QuantizeWrapperV2`` becomes the layer it wraps, under that layer's name (a
    ``QuantizeAwareActivation`` back to its activation), and every ``QuantizeLayer`` is
    dropped. For an edge-ecg model that is :func:`edge_ecg.model.arch.build_model_inference`'s
    graph, layer names included. Weights: each layer takes those of the QAT layer of its name
    (or of the wrapper around it), matched by their last name part (``kernel`` of
    ``quant_conv0/kernel:0``; the quantisers' ``*_min``/``*_max`` are left behind).

    TFLite's converter cannot turn a fake-quantised model whose LSTM sits between quantised
    layers into a full-integer model ("cannot duplicate the value since it's not constant");
    converting the stripped model with a representative dataset instead quantises every
    layer by calibration, from weights that quantisation-aware training made robust to 8-bit
    rounding.
    """
    from edge_ecg.tfcompat import load_tf

    _, keras = load_tf()
    config = qat_model.get_config()
    renamed: dict[str, str] = {}  # wrapper name -> wrapped layer name
    dropped: dict[str, list] = {}  # QuantizeLayer name -> its inbound reference
    layers = []
    for entry in config["layers"]:
        kind = entry["class_name"]
        if kind == "QuantizeLayer":
            dropped[entry["name"]] = entry["inbound_nodes"][0][0]
            continue
        if kind == "QuantizeWrapperV2":
            inner = entry["config"]["layer"]
            layer_cfg = dict(inner["config"])
            act = layer_cfg.get("activation")
            if isinstance(act, dict) and act.get("class_name") == "QuantizeAwareActivation":
                layer_cfg["activation"] = act["config"]["activation"]
            renamed[entry["name"]] = layer_cfg["name"]
            entry = {"class_name": inner["class_name"], "config": layer_cfg, "name": layer_cfg["name"],
                     "inbound_nodes": entry["inbound_nodes"]}
        layers.append(entry)

    def source(ref: list) -> list:  # [layer name, node index, tensor index, (kwargs)]
        while ref[0] in dropped:
            ref = dropped[ref[0]]
        return [renamed.get(ref[0], ref[0]), *ref[1:]]

    for entry in layers:
        entry["inbound_nodes"] = [[source(ref) for ref in node] for node in entry["inbound_nodes"]]
    config["layers"] = layers
    config["input_layers"] = [source(ref) for ref in config["input_layers"]]
    config["output_layers"] = [source(ref) for ref in config["output_layers"]]
    with _qat_scope():
        stripped = keras.Model.from_config(config)
    by_layer = {}
    for layer in qat_model.layers:
        wrapped = layer.layer if type(layer).__name__ == "QuantizeWrapperV2" else layer
        by_layer[wrapped.name] = layer
    for layer in stripped.layers:
        if layer.weights:
            weights = {_weight_name(v): v for v in by_layer[layer.name].weights}
            layer.set_weights([weights[_weight_name(v)].numpy() for v in layer.weights])
    return stripped


def _weight_name(variable) -> str:
    """``kernel`` from ``quant_conv0/kernel:0`` (the last path part, no ``:0``)."""
    return variable.name.split("/")[-1].split(":")[0]


def _qat_scope():
    """The custom-object scope that lets tf_keras load QAT (tensorflow-model-optimization) models."""
    from edge_ecg.model.qat import qat_scope

    return qat_scope()
