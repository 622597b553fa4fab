"""A TensorFlow-free classifier around a converted .tflite.

:func:`load_interpreter` finds a TFLite interpreter: ``ai_edge_litert`` (LiteRT, the
``edge`` extra), else ``tflite_runtime`` (older boards), else ``tensorflow.lite`` when
TensorFlow happens to be installed. :class:`TFLiteClassifier` reads the model's
``edge_ecg`` metadata, quantises a normalised beat window and its RR features to the
model's int8 inputs, runs one beat, and returns class probabilities.

The fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` keeps its state in variable tensors between
invocations; every beat is classified from a zero state (as in Keras), so the classifier
resets them before each run.
"""

from __future__ import annotations

import ctypes

import importlib
import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np

from edge_ecg.beats.sequence import BeatHistory, sequence_beats_of
from edge_ecg.errors import DeviceError, EdgeEcgError, ModelError, first_line
from edge_ecg.runtime.classifier import Classifier
from edge_ecg.runtime.metadata import ModelMetadata, TensorInfo, read_metadata, read_model_bytes

log = logging.getLogger(__name__)

#: Interpreter back ends, in the order they are tried.
RUNTIMES: tuple[str, ...] = ("ai_edge_litert", "tflite_runtime", "tensorflow.lite")
#: ``delegate`` choices: no delegate (reference kernels), XNNPACK (fast float/int8 CPU
#: kernels), or a Coral Edge TPU through ``libedgetpu.so.1``.
DELEGATES: tuple[str, ...] = ("none", "xnnpack", "edgetpu")
#: The Edge TPU delegate library (Linux).
EDGETPU_LIBRARY = "libedgetpu.so.1"
INSTALL_HINT = (
    "pip install 'edge-ecg[edge]' (ai-edge-litert); on 32-bit Raspberry Pi OS (armv7l, no LiteRT wheel) "
    "pip install 'tflite-runtime==2.14.*'"
)


def _interpreter_module(name: str):
    """The module holding ``Interpreter`` and ``load_delegate`` for runtime ``name``, or None."""
    if name == "tensorflow.lite":
        if importlib.util.find_spec("tensorflow") is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow as tf  # only when installed anyway (a training machine)

        return tf.lite
    try:
        return importlib.import_module(f"{name}.interpreter")
    except ImportError:
        return None


def available_runtime() -> str | None:
    """The first installed runtime of :data:`RUNTIMES` (without importing TensorFlow), or None."""
    for name in RUNTIMES:
        root = name.split(".")[0]
        if importlib.util.find_spec(root) is not None:
            return name
    return None


def load_interpreter(model: str | Path | bytes, threads: int = 1, delegate: str = "none", runtime: str | None = None):
    """A TFLite interpreter for ``model`` (a path or the model bytes), tensors allocated.

    Returns ``(interpreter, runtime_name)``. ``threads``: CPU threads for the kernels;
    ``delegate``: one of :data:`DELEGATES`; ``runtime`` forces one of :data:`RUNTIMES`.
    Raises :class:`EdgeEcgError` listing what to install when no runtime is found, and
    :class:`DeviceError` when the Edge TPU library or device is missing.
    """
    if delegate not in DELEGATES:
        raise EdgeEcgError(f"unknown delegate {delegate!r}; choose one of {', '.join(DELEGATES)}")
    if int(threads) < 1:
        raise EdgeEcgError(f"threads must be >= 1, got {threads}")
    content = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else read_model_bytes(model)
    names = [runtime] if runtime else list(RUNTIMES)
    for name in names:
        mod = _interpreter_module(name)
        if mod is None:
            continue
        kwargs: dict = {"model_content": content, "num_threads": int(threads)}
        resolver = getattr(mod, "OpResolverType", None)
        if delegate == "none" and resolver is not None:
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if delegate == "edgetpu":
            kwargs["experimental_delegates"] = [_edgetpu_delegate(mod)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            try:
                interpreter = mod.Interpreter(**kwargs)
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                where = "model" if not isinstance(model, (str, Path)) else str(model)
                raise ModelError(f"{where}: {name} cannot load it ({first_line(exc)})") from None
        return interpreter, name
    if runtime:
        raise EdgeEcgError(f"TFLite runtime {runtime!r} is not installed; {INSTALL_HINT}")
    raise EdgeEcgError(f"no TFLite interpreter found (tried {', '.join(RUNTIMES)}); {INSTALL_HINT}")


def _edgetpu_delegate(mod):
    hint = ("install the Edge TPU runtime (Debian package libedgetpu1-std from the Coral repository) "
            "and plug in the Coral device")
    try:
        # Probe the library first: a failed load_delegate leaves a half-built Delegate whose
        # destructor prints a traceback after our one-line error.
        ctypes.CDLL(EDGETPU_LIBRARY)
    except OSError as exc:
        raise DeviceError(f"Edge TPU library {EDGETPU_LIBRARY} not found ({first_line(exc)}); {hint}") from None
    try:
        return mod.load_delegate(EDGETPU_LIBRARY)
    except (ValueError, OSError, RuntimeError) as exc:
        raise DeviceError(f"Edge TPU delegate {EDGETPU_LIBRARY} could not be loaded ({first_line(exc)}); {hint}") from None


# --------------------------------------------------------------------------- (de)quantisation


def quantize(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Real values ``x`` as the tensor's dtype: ``round(x / scale) + zero_point``, clipped.

    Float tensors get ``x`` as float32. The result has ``info.shape`` (batch of one).
    """
    return quantize_rows(np.asarray(x, dtype=np.float32).reshape(info.shape), info)


def quantize_rows(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """:func:`quantize` of any array of real values, element by element, keeping its shape (so
    a batch of inputs is quantized at once, each row exactly as :func:`quantize` would)."""
    x = np.asarray(x, dtype=np.float32)
    if not info.quantized:
        return x.astype(info.dtype if info.dtype.startswith("float") else np.float32)
    dtype = np.dtype(info.dtype)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    q = np.round(x / np.float32(info.scale)) + info.zero_point
    return np.clip(q, lo, hi).astype(dtype)


def dequantize(q: np.ndarray, info: TensorInfo) -> np.ndarray:
    """The real values of tensor data ``q``: ``scale * (q - zero_point)`` (float32)."""
    if not info.quantized:
        return np.asarray(q, dtype=np.float32)
    return (np.float32(info.scale) * (np.asarray(q, dtype=np.float32) - np.float32(info.zero_point))).astype(
        np.float32
    )


# --------------------------------------------------------------------------- the classifier


class TFLiteClassifier(Classifier):
    """Classify one beat at a time with a converted edge-ecg .tflite (a :class:`Classifier`).

    ``model``: a .tflite path (or its bytes) carrying ``edge_ecg`` metadata; ``threads``:
    CPU threads; ``delegate``: ``none`` | ``xnnpack`` | ``edgetpu``. Attributes:
    ``metadata`` (:class:`ModelMetadata`), ``window`` (its WindowConfig), ``classes``,
    ``runtime_name`` (which interpreter runs it).

    A variant (b) model (input ``beat`` ``(1, K, L, 1)``: the last K beats) keeps the beats it
    has been given: successive calls with single windows ``(L,)`` are one stream in time order
    (:class:`edge_ecg.beats.BeatHistory`), :meth:`reset` starts a new one. Whole sequences
    ``(K, L)`` with RR ``(K, F)`` may be given instead, and bypass the history.
    """

    def __init__(self, model: str | Path | bytes, threads: int = 1, delegate: str = "none", runtime: str | None = None):
        if isinstance(model, (bytes, bytearray, memoryview)):
            content, self.path = bytes(model), None
        else:
            self.path = Path(model)
            content = read_model_bytes(self.path)
        where = str(self.path) if self.path else "model"
        self.metadata: ModelMetadata = read_metadata(content, where=where)
        self.window = self.metadata.window
        self.classes = self.metadata.classes
        if delegate == "edgetpu" and not self.metadata.edgetpu:
            log.warning("%s was not compiled for the Edge TPU; every op runs on the CPU", where)
        self.interpreter, self.runtime_name = load_interpreter(content, threads, delegate, runtime)
        self._inputs = self._map_inputs(where)
        self._output = self.metadata.outputs[0]
        self._output_index = self.interpreter.get_output_details()[self._output.index]["index"]
        stateful = self.metadata.conversion.get("variable_tensors", 1)  # unknown: assume state
        self._reset = getattr(self.interpreter, "reset_all_variables", None) if stateful else None
        self.sequence_beats = sequence_beats_of(self._inputs["beat"][1].shape[1:])
        self.history = BeatHistory(self.sequence_beats) if self.sequence_beats else None

    def reset(self) -> None:
        """Start a new stream of beats (a variant (b) model forgets the beats it has seen)."""
        if self.history is not None:
            self.history.reset()

    def _map_inputs(self, where: str) -> dict[str, tuple[int, TensorInfo]]:
        details = self.interpreter.get_input_details()
        if len(details) != len(self.metadata.inputs):
            raise ModelError(
                f"{where}: the model has {len(details)} inputs but its metadata describes {len(self.metadata.inputs)}"
            )
        by_name = {d["name"]: d for d in details}
        out = {}
        for info in self.metadata.inputs:
            d = by_name.get(info.name, details[info.index])
            shape = tuple(int(s) for s in d["shape"])
            if shape != tuple(info.shape):
                raise ModelError(
                    f"{where}: input {info.role!r} has shape {shape} but the metadata says {tuple(info.shape)}"
                )
            out[info.role] = (d["index"], info)
        beat = out["beat"][1]
        k = sequence_beats_of(beat.shape[1:]) or 1  # variant (b): (1, K, L, 1)
        each = " per beat" if k > 1 else ""
        if int(np.prod(beat.shape)) != k * self.window.length:
            raise ModelError(
                f"{where}: input 'beat' holds {int(np.prod(beat.shape)) // k} samples{each} but the metadata "
                f"window is {self.window.length} samples ({self.window.pre_s} s + {self.window.post_s} s at "
                f"{self.window.fs:g} Hz)"
            )
        if "rr" in out and int(np.prod(out["rr"][1].shape)) != k * len(self.metadata.rr_features):
            raise ModelError(
                f"{where}: input 'rr' holds {int(np.prod(out['rr'][1].shape)) // k} values{each} but the "
                f"metadata names {len(self.metadata.rr_features)} RR features"
            )
        return out

    @property
    def uses_rr(self) -> bool:
        """True when the model takes RR features."""
        return "rr" in self._inputs

    @property
    def rr_features(self) -> tuple[str, ...]:
        """The RR features the model reads, in order: its metadata's (else its window's)."""
        return tuple(self.metadata.rr_features or ()) or self.window.rr_features

    @property
    def quantized(self) -> bool:
        """True when the model's input ``beat`` is an integer (int8) tensor."""
        return self._inputs["beat"][1].quantized

    def input_info(self, role: str) -> TensorInfo | None:
        """The :class:`TensorInfo` of input ``role`` (``"beat"``/``"rr"``), or None."""
        entry = self._inputs.get(role)
        return entry[1] if entry else None

    def quantize_inputs(self, beat: np.ndarray, rr: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Model-ready input arrays (role -> array in the model's dtype and shape) for one beat
        (for a variant (b) model: one whole sequence, ``(K, L)`` and ``(K, F)``)."""
        out = {"beat": quantize(beat, self._inputs["beat"][1])}
        if self.uses_rr:
            if rr is None:
                raise ValueError("this model needs the beat's RR features (rr)")
            out["rr"] = quantize(rr, self._inputs["rr"][1])
        return out

    def _model_inputs(self, beat: np.ndarray, rr: np.ndarray | None) -> dict[str, np.ndarray]:
        """:meth:`quantize_inputs` after the history has made a single beat of a variant (b)
        model into its sequence."""
        beat = np.asarray(beat, dtype=np.float32)
        if self.history is not None and beat.ndim == 1:
            r = np.zeros((1, 0), np.float32) if rr is None else np.asarray(rr, dtype=np.float32)[None]
            seq_x, seq_r = self.history.push(beat[None], r)
            beat, rr = seq_x[0], (seq_r[0] if rr is not None else None)
        return self.quantize_inputs(beat, rr)

    def invoke_raw(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run the model on model-ready ``inputs``; the raw output ``(5,)`` (int8 for int8 models)."""
        if self._reset is not None:
            self._reset()  # the LSTM starts every beat from a zero state
        for role, (index, _) in self._inputs.items():
            self.interpreter.set_tensor(index, inputs[role])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output_index).reshape(-1).copy()

    def predict(self, beat: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities ``(5,)`` float32 for one beat.

        ``beat``: the normalised window ``(L,)`` float32 (``edge_ecg.beats.extract_window``);
        ``rr``: its RR features ``(F,)`` float32 (seconds and ratios), ignored when the model
        has no RR input. A variant (b) model takes the next beat of its stream, or a whole
        sequence ``(K, L)`` with ``(K, F)``.
        """
        return dequantize(self.invoke_raw(self._model_inputs(beat, rr)), self._output)

    def predict_batch(self, X: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``(n, 5)`` float32 for windows ``X`` ``(n, L)`` and ``rr`` ``(n, F)``.

        The inputs are quantized for all beats at once (the same numbers as beat by beat); the
        model still runs one beat per call, its LSTM state reset for each."""
        X = np.asarray(X, dtype=np.float32)
        out = np.zeros((len(X), len(self.classes)), dtype=np.float32)
        if self.history is not None or len(X) == 0:  # variant (b): each beat extends a sequence
            for i in range(len(X)):
                out[i] = self.predict(X[i], None if rr is None else rr[i])
            return out
        if self.uses_rr and rr is None:
            raise ValueError("this model needs the beat's RR features (rr)")
        roles = [("beat", X)] + ([("rr", np.asarray(rr, dtype=np.float32).reshape(len(X), -1))] if self.uses_rr else [])
        rows = {role: quantize_rows(x, self._inputs[role][1]) for role, x in roles}
        shapes = {role: self._inputs[role][1].shape for role in rows}
        for i in range(len(X)):
            raw = self.invoke_raw({role: q[i].reshape(shapes[role]) for role, q in rows.items()})
            out[i] = dequantize(raw, self._output)
        return out

    def predict_raw_batch(self, X: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
        """Raw model outputs ``(n, 5)`` (int8 steps for an int8 model) for windows ``X``."""
        X = np.asarray(X, dtype=np.float32)
        out = np.zeros((len(X), len(self.classes)), dtype=np.dtype(self._output.dtype))
        for i in range(len(X)):
            out[i] = self.invoke_raw(self._model_inputs(X[i], None if rr is None else rr[i]))
        return out

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"TFLiteClassifier({self.path or 'model'}, {m.quantization}, window {self.window.length} samples at "
            f"{self.window.fs:g} Hz, runtime {self.runtime_name})"
        )

