"""Reading and rewriting TFLite flatbuffers through the generated schema bindings.

The bindings come from ``ai-edge-litert`` (``ai_edge_litert.schema_py_generated``) or, when
it is missing, from TensorFlow (``tensorflow.lite.python.schema_py_generated``). Writing
keeps every constant buffer 16-byte aligned, as TFLite-Micro expects of a model that is
used in place from flash.
"""

from __future__ import annotations

import functools

import numpy as np

from edge_ecg.errors import EdgeEcgError, ModelError
from edge_ecg.runtime.metadata import TFLITE_IDENTIFIER, check_tflite

#: Alignment (bytes) of constant buffers in a written model.
BUFFER_ALIGNMENT = 16


@functools.lru_cache(maxsize=1)
def schema():
    """The generated TFLite schema module."""
    try:
        from ai_edge_litert import schema_py_generated as mod
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as mod
        except ImportError:
            raise EdgeEcgError(
                "no TFLite schema bindings found; pip install ai-edge-litert (or tensorflow)"
            ) from None
    return mod


@functools.lru_cache(maxsize=1)
def _names(kind: str) -> dict[int, str]:
    cls = getattr(schema(), kind)
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def op_name(model, opcode_index: int) -> str:
    """Name of an operator (``"CONV_2D"``, or the custom code) of a ``ModelT``."""
    code = model.operatorCodes[opcode_index]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema().BuiltinOperator.CUSTOM:
        custom = code.customCode or b"CUSTOM"
        return custom.decode() if isinstance(custom, bytes) else str(custom)
    return _names("BuiltinOperator").get(builtin, f"OP_{builtin}")


def tensor_type_name(type_code: int) -> str:
    """numpy dtype name of a TFLite tensor type code (``"int8"``, ``"float32"``...)."""
    return _names("TensorType").get(type_code, f"type{type_code}").lower()


def read_model(model: bytes, where: str = "model"):
    """A mutable ``ModelT`` (the schema's object API) of TFLite bytes."""
    check_tflite(model, where)
    try:
        return schema().ModelT.InitFromPackedBuf(bytearray(model), 0)
    except Exception as exc:
        raise ModelError(f"{where}: corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def write_model(model) -> bytes:
    """Serialise a ``ModelT`` back to .tflite bytes, constant buffers 16-byte aligned."""
    import flatbuffers

    aligned = _aligned_buffer_class()
    model.buffers = [aligned.from_buffer(b) for b in (model.buffers or [])]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def strip_tensor_names(model: bytes) -> bytes:
    """``model`` without the names of its inner tensors (the converter's fused-op debug strings,
    about 3 KB of a small model); every graph input and output keeps its name, and signatures are
    kept, so roles (``beat``, ``rr``) still resolve. The kernels never read names: the outputs
    are the same bit for bit."""
    m = read_model(model)
    for graph in m.subgraphs or []:
        keep = {int(i) for i in list(graph.inputs) + list(graph.outputs)}
        for i, tensor in enumerate(graph.tensors or []):
            if i not in keep:
                tensor.name = ""  # not None: TFLite-Micro reads every name (and crashes on a missing one)
    return write_model(m)


@functools.lru_cache(maxsize=1)
def _aligned_buffer_class():
    """A ``BufferT`` whose ``data`` is packed starting on a :data:`BUFFER_ALIGNMENT` boundary."""
    fb = schema()

    class AlignedBufferT(fb.BufferT):
        @classmethod
        def from_buffer(cls, buffer):
            new = cls()
            new.data, new.offset, new.size = buffer.data, buffer.offset, buffer.size
            return new

        def Pack(self, builder):  # noqa: N802 - flatbuffers object API
            data_off = None
            if self.data is not None:
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                # Prep(16, n) inside StartVector pads so the n data bytes end up aligned.
                builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
                builder.head -= len(raw)
                builder.Bytes[builder.head:builder.head + len(raw)] = raw
                data_off = builder.EndVector()
            fb.BufferStart(builder)
            if data_off is not None:
                fb.BufferAddData(builder, data_off)
            fb.BufferAddOffset(builder, self.offset)
            fb.BufferAddSize(builder, self.size)
            return fb.BufferEnd(builder)

    return AlignedBufferT


def buffer_alignment_ok(model: bytes, alignment: int = BUFFER_ALIGNMENT) -> bool:
    """True when every non-empty constant buffer of ``model`` starts on an ``alignment`` boundary."""
    fb = schema()
    root = fb.Model.GetRootAs(model, 0)
    for i in range(root.BuffersLength()):
        buf = root.Buffers(i)
        if buf.DataLength() == 0:
            continue
        vec = buf._tab.Vector(buf._tab.Offset(4))
        if vec % alignment:
            return False
    return True
