"""Keras model -> self-describing .tflite (int8, float16 or float32).

The model is converted from a concrete function with a fixed batch of one (``beat``
``[1, L, 1]``, ``rr`` ``[1, F]``), so the LSTM becomes TFLite's fused
``UNIDIRECTIONAL_SEQUENCE_LSTM``. ``int8`` is full-integer: int8 weights and activations and
int8 input and output tensors, calibrated on a class-stratified sample of DS1 windows; a
float op left in the graph is an error that names it. Every output carries the ``edge_ecg``
metadata (:mod:`edge_ecg.export.metadata`).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_ecg.config import CLASSES, ModelConfig, WindowConfig, from_dict, read_config_data, to_dict
from edge_ecg.errors import ConfigError, EdgeEcgError, ModelError, first_line
from edge_ecg.export.flatbuffer import op_name, read_model, strip_tensor_names, tensor_type_name
from edge_ecg.export.metadata import attach_metadata, build_metadata
from edge_ecg.model.run import RUN_CONFIG, RUN_QAT_WRAPPED, find_model_file, is_qat_model, load_keras_model, strip_qat
from edge_ecg.runtime.metadata import ModelMetadata
from edge_ecg.tfcompat import quiet_native_stderr

log = logging.getLogger(__name__)

#: Conversion modes.
MODES: tuple[str, ...] = ("int8", "float16", "float32")
#: Ops allowed to touch float tensors in an int8 model (explicit (de)quantisation only).
QUANTIZE_OPS: frozenset[str] = frozenset({"QUANTIZE", "DEQUANTIZE"})
#: Beats drawn from DS1 for int8 calibration by default.
DEFAULT_CALIBRATION = 1000


@dataclass
class SourceModel:
    """A Keras model to convert, with the configuration that made it.

    ``window`` sizes the inputs; ``model_config`` is the run's ModelConfig as a dict (empty
    when unknown); ``run_dir`` is set when ``path`` came from a training run folder.
    """

    model: Any
    path: Path
    window: WindowConfig
    arch: str = ""
    model_config: dict = field(default_factory=dict)
    qat: bool = False
    run_dir: Path | None = None
    window_source: str = "default"

    @property
    def sequence_beats(self) -> int:
        """K for a variant (b) model (input ``beat`` ``(K, L, 1)``), else 0."""
        from edge_ecg.beats.sequence import sequence_beats_of

        return sequence_beats_of(model_input_shapes(self.model).get("beat", ()))

    def qat_reference(self):
        """The fake-quantised QAT Keras model behind this source, or None.

        The source itself when it is wrapped for QAT, else a run folder's ``qat_wrapped.h5``.
        """
        if is_qat_model(self.model):
            return self.model
        wrapped = self.run_dir / RUN_QAT_WRAPPED if self.run_dir else None
        return load_keras_model(wrapped) if wrapped is not None and wrapped.is_file() else None


@dataclass
class ConvertedModel:
    """A converted model: ``tflite`` bytes (metadata included), its ``metadata`` and ``mode``."""

    tflite: bytes
    metadata: ModelMetadata
    mode: str
    calibration: dict = field(default_factory=dict)
    float_model: Any = None  # the Keras model converted (a QAT model's float form)

    def save(self, path: str | Path) -> Path:
        """Write the .tflite to ``path`` (parent folders created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(self.tflite)
        except OSError as exc:
            raise EdgeEcgError(f"{path}: cannot write the model ({exc.strerror or exc})") from None
        return path


# --------------------------------------------------------------------------- loading


def read_run_config(path: str | Path) -> tuple[WindowConfig, dict]:
    """``(window, model config dict)`` from a run's ``config.json`` or a RunConfig JSON/TOML file.

    Only ``window`` (strictly: it sizes the inputs) and ``model`` (descriptive, kept as
    written if it does not parse) are read; the rest is ignored so a newer training config
    still converts.
    """
    path = Path(path)
    data = read_config_data(path)
    window = from_dict(WindowConfig, data.get("window", {}), where=f"{path.name}.window")
    model_section = data.get("model", {})
    try:
        model_cfg = to_dict(from_dict(ModelConfig, model_section, where=f"{path.name}.model"))
    except ConfigError:  # only descriptive here: keep what the file says
        model_cfg = dict(model_section) if isinstance(model_section, dict) else {}
    return window, model_cfg


def load_source_model(path: str | Path, config: str | Path | None = None, prefer: str = "qat") -> SourceModel:
    """The model named on the command line: a run folder (QAT model preferred) or a model file.

    The window comes from ``config`` (a RunConfig JSON/TOML) when given, else from the run
    folder's ``config.json`` (also beside a model file), else the default
    :class:`WindowConfig`. The model's inputs must match it (:func:`check_signature`).
    ``prefer``: ``"qat"`` or ``"float"``, which model of a run folder.
    """
    model_file, run_dir = find_model_file(path, prefer)
    window, model_cfg, source = WindowConfig(), {}, "default"
    if config is not None:
        window, model_cfg = read_run_config(config)
        source = str(config)
    elif run_dir is not None and (run_dir / RUN_CONFIG).is_file():
        window, model_cfg = read_run_config(run_dir / RUN_CONFIG)
        source = str(run_dir / RUN_CONFIG)
    model = load_keras_model(model_file)
    check_signature(model, window, str(model_file), window_source=source)
    return SourceModel(
        model=model, path=model_file, window=window, arch=str(model_cfg.get("arch", "")),
        model_config=model_cfg, qat=is_qat_model(model) or model_file.name.startswith("model_qat"),
        run_dir=run_dir, window_source=source,
    )


def model_input_shapes(model) -> dict[str, tuple]:
    """Input name -> shape without the batch axis, for a Keras model."""
    names = list(getattr(model, "input_names", None) or [t.name.split(":")[0] for t in model.inputs])
    return {n: tuple(t.shape[1:]) for n, t in zip(names, model.inputs)}


def check_signature(model, window: WindowConfig, where: str = "model", window_source: str = "default") -> bool:
    """Check ``model`` against the agreed signature; return True when it has an ``rr`` input.

    Inputs ``beat`` ``(window.length, 1)`` and optionally ``rr`` ``(len(rr_features),)``, or
    for a variant (b) model ``(K, window.length, 1)`` and ``(K, len(rr_features))``; one
    output ``(5,)``. A mismatch is a one-line :class:`ModelError` naming it.
    """
    shapes = model_input_shapes(model)
    unknown = [n for n in shapes if n not in ("beat", "rr")]
    if "beat" not in shapes or unknown:
        raise ModelError(
            f"{where}: model inputs are {', '.join(shapes) or 'none'}; expected 'beat' (L, 1) and optionally 'rr' (F,)"
        )
    hint = f"the window config ({window_source})" if window_source != "default" else "the default window config"
    beat = shapes["beat"]
    seq = tuple(beat[:1]) if len(beat) == 3 else ()  # variant (b): (K, L, 1), the last K beats
    if len(beat) - len(seq) != 2 or beat[-1] != 1 or beat[-2] != window.length or (seq and not seq[0]):
        need = _shape(seq + (window.length, 1))
        raise ModelError(
            f"{where}: input 'beat' has shape {_shape(beat)} but {hint} needs {need} "
            f"({window.pre_s} s + {window.post_s} s at {window.fs:g} Hz); pass the run's config with --config"
        )
    if "rr" in shapes and tuple(shapes["rr"]) != seq + (len(window.rr_features),):
        raise ModelError(
            f"{where}: input 'rr' has shape {_shape(shapes['rr'])} but {hint} names "
            f"{len(window.rr_features)} RR features ({', '.join(window.rr_features)})"
            + (f" for each of {seq[0]} beats" if seq else "")
        )
    if len(model.outputs) != 1 or tuple(model.outputs[0].shape[1:]) != (len(CLASSES),):
        shapes_out = ", ".join(_shape(tuple(o.shape[1:])) for o in model.outputs)
        raise ModelError(f"{where}: model output is {shapes_out}; expected one ({len(CLASSES)},) softmax")
    return "rr" in shapes


def _shape(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# --------------------------------------------------------------------------- calibration data


def stratified_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices into labels ``y``, as equal a share per class as the classes allow.

    A class with fewer beats than its share gives all of them and the rest goes to the
    others. Sorted; deterministic for a given ``seed``.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    pools = {c: rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)}
    take = {c: 0 for c in pools}
    left = min(int(n), len(y))
    while left > 0:
        open_classes = [c for c in pools if take[c] < len(pools[c])]
        share = max(1, left // len(open_classes))
        for c in open_classes:
            add = min(share, len(pools[c]) - take[c], left)
            take[c] += add
            left -= add
            if left == 0:
                break
    return np.sort(np.concatenate([pools[c][: take[c]] for c in pools]).astype(np.int64))


def representative_from_db(
    db_dir: str | Path, window: WindowConfig, n: int = DEFAULT_CALIBRATION, seed: int = 0, progress: bool = True,
    sequence_beats: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Calibration beats: ``(X (n, L), rr (n, F), class counts)`` stratified from DS1 windows.

    With ``sequence_beats`` K (a variant (b) model) each drawn beat comes with the K - 1 beats
    before it: ``X (n, K, L)``, ``rr (n, K, F)``.
    """
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.beats.sequence import sequence_index
    from edge_ecg.records.aami import DS1

    beats = build_beatset(db_dir, DS1, window, progress=progress)
    idx = stratified_indices(beats.y, n, seed)
    counts = {c: int(np.sum(beats.y[idx] == i)) for i, c in enumerate(CLASSES)}
    if sequence_beats:
        idx = sequence_index(beats.record, sequence_beats)[idx]
    return beats.X[idx], beats.rr[idx], counts


def _representative_gen(X: np.ndarray, rr: np.ndarray | None, uses_rr: bool) -> Iterator[dict]:
    X = np.asarray(X, dtype=np.float32)
    for i in range(len(X)):
        sample = {"beat": X[i][None, ..., None]}
        if uses_rr:
            sample["rr"] = np.asarray(rr[i], dtype=np.float32)[None]
        yield sample


# --------------------------------------------------------------------------- conversion


def concrete_function(model, window: WindowConfig, uses_rr: bool):
    """The model as a TF concrete function with a fixed batch of one (named inputs)."""
    from edge_ecg.tfcompat import load_tf

    tf, _ = load_tf()
    shapes = model_input_shapes(model)  # checked against window by check_signature
    beat_spec = tf.TensorSpec([1, *shapes["beat"]], tf.float32, name="beat")
    if uses_rr:
        rr_spec = tf.TensorSpec([1, *shapes["rr"]], tf.float32, name="rr")
        fn = tf.function(lambda beat, rr: model({"beat": beat, "rr": rr}, training=False),
                         input_signature=[beat_spec, rr_spec])
    else:
        fn = tf.function(lambda beat: model({"beat": beat}, training=False), input_signature=[beat_spec])
    return fn.get_concrete_function()


#: Quantizers of the TFLite converter: ``legacy`` requantizes the inputs of ops that need
#: one shared scale (CONCATENATION of the LSTM output with the RR features); ``mlir``
#: propagates that scale into the LSTM's recurrent state instead, which costs accuracy.
QUANTIZERS: tuple[str, ...] = ("legacy", "mlir")


def convert_model(
    model,
    window: WindowConfig,
    mode: str = "int8",
    representative: tuple[np.ndarray, np.ndarray | None] | None = None,
    arch: str = "",
    source: str = "",
    model_config: dict | None = None,
    allow_float_ops: bool = False,
    calibration_info: dict | None = None,
    quantizer: str = "legacy",
    qat: bool | None = None,
    training_records: tuple[str, ...] = (),
) -> ConvertedModel:
    """Convert a tf_keras ``model`` to a .tflite carrying ``edge_ecg`` metadata.

    ``mode``: ``int8`` (full integer; needs ``representative`` = ``(X (n, L), rr (n, F))``
    normalised windows and RR features, e.g. from :func:`representative_from_db`),
    ``float16`` (float16 weights, float32 I/O) or ``float32``. In ``int8`` a float op left
    in the graph raises :class:`ModelError` naming it unless ``allow_float_ops``. A QAT
    model is converted from its trained weights (:func:`strip_qat`) and calibrated.
    ``quantizer``: one of :data:`QUANTIZERS`. ``qat`` marks QAT-trained weights in the
    metadata (default: whether ``model`` is wrapped for QAT). The result's ``float_model``
    is the Keras model actually converted (the float reference for comparisons).
    ``training_records`` (``db/record`` names) are written into the metadata.
    """
    from edge_ecg.tfcompat import load_tf

    if mode not in MODES:
        raise ConfigError(f"unknown conversion mode {mode!r}; choose one of {', '.join(MODES)}")
    if quantizer not in QUANTIZERS:
        raise ConfigError(f"unknown quantizer {quantizer!r}; choose one of {', '.join(QUANTIZERS)}")
    tf, _ = load_tf()
    uses_rr = check_signature(model, window)
    wrapped = is_qat_model(model)
    qat = wrapped if qat is None else bool(qat)
    float_model = strip_qat(model) if wrapped else model
    if mode == "int8":
        if representative is None or len(representative[0]) == 0:
            raise ConfigError("int8 conversion needs representative beats (calibration data)")
        X, rr = representative
        if uses_rr and rr is None:
            raise ConfigError("int8 conversion of a model with an 'rr' input needs representative RR features")
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete_function(float_model, window, uses_rr)], float_model
    )
    if mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative_gen(X, rr, uses_rr)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        converter.experimental_new_quantizer = quantizer == "mlir"
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        with warnings.catch_warnings(), quiet_native_stderr():
            warnings.simplefilter("ignore")  # the calibrator's tf.lite.Interpreter deprecation notice
            raw = converter.convert()
    except Exception as exc:
        raise ModelError(describe_conversion_error(exc, mode)) from None
    if mode == "int8":
        leftover = float_ops(raw)
        if leftover and not allow_float_ops:
            raise ModelError(
                f"int8 conversion left {len(leftover)} op(s) in float, which the int8 converter cannot quantise: "
                f"{', '.join(leftover)}; replace those layers or convert with --float16/--float32"
            )
    raw = strip_tensor_names(raw)  # after float_ops, which names the layers it finds
    conversion: dict = {"tensor_names": "inner tensors unnamed (smaller file; inputs and outputs keep theirs)"}
    calibration = dict(calibration_info or {})
    if mode == "int8":
        calibration.setdefault("beats", int(len(representative[0])))
        conversion.update({"calibration": calibration, "quantizer": quantizer})
    if qat:
        conversion["qat"] = "QAT weights; fake-quantisation ranges replaced by calibration"
    meta = build_metadata(
        raw, window, mode, arch=arch, source=source, qat=qat, model_config=model_config, conversion=conversion,
        training_records=training_records,
    )
    return ConvertedModel(
        tflite=attach_metadata(raw, meta), metadata=meta, mode=mode, calibration=calibration, float_model=float_model,
    )


def convert_source(source: SourceModel, mode: str = "int8", representative=None, calibration_info=None,
                   allow_float_ops: bool = False, quantizer: str = "legacy") -> ConvertedModel:
    """:func:`convert_model` for a :class:`SourceModel` (its window, arch and file name, and the
    training records its run folder's ``metrics.json`` lists, embedded in the metadata)."""
    from edge_ecg.evaluate.trained import training_records

    name = source.run_dir.name + "/" + source.path.name if source.run_dir else source.path.name
    trained = training_records(source.path, source.run_dir) or set()
    return convert_model(
        source.model, source.window, mode, representative, arch=source.arch, source=name,
        model_config=source.model_config, allow_float_ops=allow_float_ops, calibration_info=calibration_info,
        quantizer=quantizer, qat=source.qat, training_records=tuple(trained),
    )


def float_ops(model: bytes) -> list[str]:
    """Ops of a .tflite that compute in float (any float input or output tensor).

    Explicit ``QUANTIZE``/``DEQUANTIZE`` are not counted. Each entry is ``"NAME (tensor)"``
    with the op's first output tensor name, which carries the Keras layer's name.
    """
    m = read_model(model)
    out = []
    for graph in m.subgraphs:
        for op in graph.operators:
            name = op_name(m, op.opcodeIndex)
            if name in QUANTIZE_OPS:
                continue
            tensors = [int(i) for i in list(op.inputs) + list(op.outputs) if int(i) >= 0]
            if any(tensor_type_name(graph.tensors[i].type).startswith("float") for i in tensors):
                first = int(op.outputs[0]) if len(op.outputs) else tensors[0]
                label = graph.tensors[first].name
                label = label.decode() if isinstance(label, bytes) else str(label)
                out.append(f"{name} ({label})")
    return out


_OP_PATTERN = re.compile(r"'(tfl?\.[A-Za-z0-9_]+)'|op: '([A-Z0-9_]+)'")


def describe_conversion_error(exc: BaseException, mode: str) -> str:
    """One line for a failed conversion, naming the op(s) the converter could not handle."""
    text = str(exc)
    ops = sorted({a or b for a, b in _OP_PATTERN.findall(text)})
    errors = [ln.split("error:", 1)[1].strip() for ln in text.splitlines() if "error:" in ln]
    detail = errors[0] if errors else first_line(exc)
    if len(detail) > 200:
        detail = detail[:197] + "..."
    if ops:
        return f"{mode} conversion failed at op {', '.join(ops)}: {detail}"
    return f"{mode} conversion failed: {detail}"
