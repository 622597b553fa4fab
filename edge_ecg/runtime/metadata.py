"""The description a converted ``.tflite`` carries about itself, read without TensorFlow.

``edge-ecg convert`` stores one JSON document in the model's TFLite metadata list under the
name :data:`METADATA_NAME` (``"edge_ecg"``): sampling rate and window layout, class names,
normalisation and RR-feature definitions, the input/output tensors with their
quantisation, and the toolkit version. With it, ``stream`` and ``evaluate`` need nothing but
the file.

Reading uses a tiny reader of the two tables involved (``metadata`` and ``buffers``) written
here with :mod:`struct` (a board with only ``tflite-runtime`` reads it too, and a stream does
not pay the import of the generated bindings); the TFLite flatbuffer bindings that ship with
``ai-edge-litert`` (``ai_edge_litert.schema_py_generated``) read any file it cannot, and the
tests check that both give the same entries.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_ecg.config import WindowConfig, from_dict, to_dict
from edge_ecg.errors import ConfigError, ModelError

#: Name of the metadata entry edge-ecg writes into a .tflite.
METADATA_NAME = "edge_ecg"
#: Version of the JSON layout below; a reader refuses newer major layouts.
FORMAT_VERSION = 1
#: The TFLite flatbuffer file identifier (bytes 4..8 of every .tflite).
TFLITE_IDENTIFIER = b"TFL3"


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output.

    ``role`` is ``"beat"`` (shape ``(1, L, 1)``), ``"rr"`` (``(1, F)``) or ``"probs"``
    (``(1, 5)``); ``index`` its position in the model's input (or output) list, which is
    what TFLite-Micro's ``set_input(data, index)`` uses; ``name`` the tensor name;
    ``dtype`` a numpy dtype name; ``scale``/``zero_point`` the int8 quantisation
    (``real = scale * (q - zero_point)``), ``0.0``/``0`` for float tensors.
    """

    role: str
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        """True for an integer tensor with a scale (inputs/outputs of an int8 model)."""
        return self.dtype in ("int8", "uint8", "int16") and self.scale > 0


@dataclass(frozen=True)
class ModelMetadata:
    """What a converted model says about itself.

    ``window`` gives the sampling rate (Hz), window layout (samples before/after the R
    peak), filter band and normalisation method; ``rr_features`` the RR features fed to
    the ``rr`` input, in order (seconds and ratios, see ``rr_definitions``);
    ``classes`` the output order; ``inputs``/``outputs`` the tensors with their int8
    scale and zero point; ``quantization`` ``int8``/``float16``/``float32``;
    ``conversion`` how it was made (calibration beats, quantizer, ``variable_tensors``:
    state the runtime must reset before each beat). ``training_records`` names the records
    (``db/record``) the model was trained or validated on, so a score on them is flagged
    wherever the file goes (``()`` when unknown: a model converted outside a run folder).
    """

    toolkit_version: str
    created: str  # ISO 8601, UTC
    classes: tuple[str, ...]
    window: WindowConfig
    rr_features: tuple[str, ...]  # fed to the "rr" input in this order; () when the model has none
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    quantization: str  # "int8" | "float16" | "float32"
    arch: str = ""
    source: str = ""
    qat: bool = False
    edgetpu: bool = False
    normalisation: str = ""
    rr_definitions: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    conversion: dict[str, Any] = field(default_factory=dict)
    training_records: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION

    def input(self, role: str) -> TensorInfo | None:
        """The input with ``role`` (``"beat"`` or ``"rr"``), or None."""
        return next((t for t in self.inputs if t.role == role), None)

    @property
    def uses_rr(self) -> bool:
        """True when the model has an RR-feature input."""
        return self.input("rr") is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the layout stored in the file). ``training_records`` is stored by
        database, ``{"mitdb": ["101", ...], "svdb": [...]}``: a third of the bytes of the full
        names, on a model whose file has a 32 KB budget."""
        out = asdict(self)
        out["window"] = to_dict(self.window)
        out["training_records"] = _records_by_database(self.training_records)
        return json.loads(json.dumps(out))

    def to_json(self) -> str:
        """The JSON document stored in the .tflite (compact, keys sorted)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _records_by_database(records: tuple[str, ...]) -> dict[str, list[str]]:
    """``("mitdb/101", "svdb/800")`` as ``{"mitdb": ["101"], "svdb": ["800"]}`` (a bare name under ``""``)."""
    out: dict[str, list[str]] = {}
    for rid in records:
        db, _, name = rid.rpartition("/")
        out.setdefault(db, []).append(name)
    return out


def _records_from_stored(stored: Any) -> tuple[str, ...]:
    """``training_records`` as stored (by database, or the first layout's list of ``db/record``
    names), as sorted ``db/record`` names."""
    if isinstance(stored, dict):
        return tuple(sorted(f"{db}/{name}" if db else str(name) for db, names in stored.items() for name in names))
    return tuple(str(r) for r in stored or ())


#: Fields a metadata document must have; anything else has a default.
REQUIRED_FIELDS: tuple[str, ...] = (
    "toolkit_version", "created", "classes", "window", "rr_features", "inputs", "outputs", "quantization",
)
_TENSOR_REQUIRED = ("role", "index", "name", "shape", "dtype")


def parse_metadata(text: str | bytes, where: str = "model") -> ModelMetadata:
    """A :class:`ModelMetadata` from the stored JSON; :class:`ModelError` naming a missing field."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{where}: {METADATA_NAME} metadata is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{where}: {METADATA_NAME} metadata must be a JSON object")
    for key in REQUIRED_FIELDS:
        if key not in data:
            raise ModelError(f"{where}: {METADATA_NAME} metadata is missing field {key!r}")
    version = data.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(
            f"{where}: metadata format_version {version!r} is newer than this edge-ecg reads "
            f"({FORMAT_VERSION}); upgrade edge-ecg"
        )
    try:
        window = from_dict(WindowConfig, data["window"], where="metadata.window")
    except ConfigError as exc:
        raise ModelError(f"{where}: {exc}") from None
    known = set(ModelMetadata.__dataclass_fields__)
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs["window"] = window
    kwargs["classes"] = tuple(data["classes"])
    kwargs["rr_features"] = tuple(data["rr_features"])
    kwargs["training_records"] = _records_from_stored(data.get("training_records"))
    kwargs["inputs"] = tuple(_tensor(t, f"{where}: metadata input") for t in data["inputs"])
    kwargs["outputs"] = tuple(_tensor(t, f"{where}: metadata output") for t in data["outputs"])
    meta = ModelMetadata(**kwargs)
    if not meta.inputs or meta.input("beat") is None:
        raise ModelError(f"{where}: {METADATA_NAME} metadata is missing field 'inputs[role=beat]'")
    if len(meta.outputs) != 1:
        raise ModelError(f"{where}: {METADATA_NAME} metadata must describe exactly one output")
    return meta


def _tensor(data: Any, where: str) -> TensorInfo:
    if not isinstance(data, dict):
        raise ModelError(f"{where} must be an object")
    for key in _TENSOR_REQUIRED:
        if key not in data:
            raise ModelError(f"{where} is missing field {key!r}")
    return TensorInfo(
        role=str(data["role"]), index=int(data["index"]), name=str(data["name"]),
        shape=tuple(int(s) for s in data["shape"]), dtype=str(data["dtype"]),
        scale=float(data.get("scale", 0.0)), zero_point=int(data.get("zero_point", 0)),
    )


# --------------------------------------------------------------------------- reading files


def read_model_bytes(path: str | Path) -> bytes:
    """The bytes of a .tflite file; :class:`ModelError` when missing or not TFLite."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if not path.is_file():
        raise ModelError(f"{path}: not a file (give the .tflite model)")
    data = path.read_bytes()
    check_tflite(data, str(path))
    return data


def check_tflite(model: bytes, where: str = "model") -> None:
    """Raise :class:`ModelError` unless ``model`` looks like a TFLite flatbuffer."""
    if len(model) < 16 or model[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{where}: not a TFLite model (no 'TFL3' flatbuffer identifier)")


def metadata_entries(model: bytes, where: str = "model") -> dict[str, bytes]:
    """All entries of a TFLite model's metadata list: name -> buffer bytes."""
    check_tflite(model, where)
    try:
        try:
            return _entries_with_struct(model)  # no 25 ms import of the generated bindings at start-up
        except (struct.error, ValueError, IndexError, UnicodeDecodeError):
            schema = _schema_module()  # an unusual layout: the generated bindings read it, or say why not
            if schema is None:
                raise
            return _entries_with_schema(schema, model)
    except ModelError:
        raise
    except Exception as exc:  # a truncated or corrupt flatbuffer
        raise ModelError(f"{where}: corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def read_metadata(model: str | Path | bytes, name: str = METADATA_NAME, where: str | None = None) -> ModelMetadata:
    """The :class:`ModelMetadata` of a .tflite file (a path) or of model bytes.

    Raises :class:`ModelError` naming the problem: no such file, not TFLite, no
    ``edge_ecg`` entry, or a missing field inside it (``where`` names the model in messages).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, where = bytes(model), where or "model"
    else:
        data, where = read_model_bytes(model), where or str(model)
    entries = metadata_entries(data, where)
    if name not in entries:
        raise ModelError(
            f"{where}: missing metadata field {name!r} (convert the model with `edge-ecg convert` "
            f"so it describes its window, classes and inputs)"
        )
    return parse_metadata(entries[name], where)


# --------------------------------------------------------------------------- flatbuffer access


def _schema_module():
    """The generated TFLite schema bindings, or None (then the struct reader is used)."""
    try:
        from ai_edge_litert import schema_py_generated
    except Exception:  # ImportError, or a broken install on a board
        return None
    return schema_py_generated


def _buffer_bytes(model: bytes, data, offset: int, size: int) -> bytes:
    if offset > 1:  # large models keep buffers after the flatbuffer, addressed by offset
        return bytes(model[offset:offset + size])
    return bytes(data) if data is not None else b""


def _entries_with_schema(schema, model: bytes) -> dict[str, bytes]:
    root = schema.Model.GetRootAs(model, 0)
    out = {}
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        buf = root.Buffers(entry.Buffer())
        data = None if buf.DataIsNone() else buf.DataAsNumpy().tobytes()
        out[(entry.Name() or b"").decode()] = _buffer_bytes(model, data, buf.Offset(), buf.Size())
    return out


class _Table:
    """A flatbuffer table at ``pos`` in ``buf`` (just enough to read TFLite metadata)."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, slot: int) -> int:
        at = 4 + 2 * slot
        if at >= self.vsize:
            return 0
        off = struct.unpack_from("<H", self.buf, self.vtable + at)[0]
        return self.pos + off if off else 0

    def scalar(self, slot: int, fmt: str, default=0):
        at = self._field(slot)
        return struct.unpack_from("<" + fmt, self.buf, at)[0] if at else default

    def _vector(self, slot: int) -> tuple[int, int] | None:
        at = self._field(slot)
        if not at:
            return None
        start = at + struct.unpack_from("<I", self.buf, at)[0]
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def bytes(self, slot: int) -> bytes | None:
        vec = self._vector(slot)
        if vec is None:
            return None
        start, n = vec
        if start + n > len(self.buf):
            raise ValueError("vector runs past the end of the file")
        return bytes(self.buf[start:start + n])

    def tables(self, slot: int) -> list["_Table"]:
        vec = self._vector(slot)
        if vec is None:
            return []
        start, n = vec
        out = []
        for i in range(n):
            at = start + 4 * i
            out.append(_Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0]))
        return out


# Field slots of the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs).
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_METADATA_NAME, _METADATA_BUFFER = 0, 1


def _entries_with_struct(model: bytes) -> dict[str, bytes]:
    root = _Table(model, struct.unpack_from("<I", model, 0)[0])
    buffers = root.tables(_MODEL_BUFFERS)
    out = {}
    for entry in root.tables(_MODEL_METADATA):
        name = (entry.bytes(_METADATA_NAME) or b"").decode()
        buf = buffers[entry.scalar(_METADATA_BUFFER, "I")]
        out[name] = _buffer_bytes(
            model, buf.bytes(_BUFFER_DATA), buf.scalar(_BUFFER_OFFSET, "Q"), buf.scalar(_BUFFER_SIZE, "Q")
        )
    return out

