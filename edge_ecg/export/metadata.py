"""Writing the ``edge_ecg`` metadata entry into a converted .tflite.

The document's layout is :class:`edge_ecg.runtime.metadata.ModelMetadata` (the reader lives
on the device side and imports no TensorFlow); this module fills it in from the converted
flatbuffer and the configuration, and stores it as one buffer of the model's metadata list.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from edge_ecg import __version__
from edge_ecg.config import CLASSES, RR_DEFINITIONS, RR_HISTORY_NOTE, WindowConfig
from edge_ecg.errors import ModelError
from edge_ecg.export.flatbuffer import read_model, schema, tensor_type_name, write_model
from edge_ecg.runtime.metadata import METADATA_NAME, ModelMetadata, TensorInfo

#: Input roles, matched against signature input names (or tensor names) of the model.
INPUT_ROLES: tuple[str, ...] = ("beat", "rr")


def rr_definitions(features: tuple[str, ...]) -> dict[str, str]:
    """How each RR feature in ``features`` is computed (units: seconds or ratios), from
    :data:`edge_ecg.config.RR_DEFINITIONS`, with the missing-history note under ``_history``."""
    out = {name: RR_DEFINITIONS.get(name, "") for name in features}
    if out:
        out["_history"] = RR_HISTORY_NOTE
    return out


def normalisation_definition(window: WindowConfig) -> str:
    """How one beat window is normalised before the model sees it."""
    if window.normalise == "robust":
        how = "(x - median(x)) / (0.5 * (p99(x) - p1(x)))"
    else:
        how = "(x - mean(x)) / std(x)"
    return (
        f"{window.normalise}: {how} per window of ecg_clean(signal at {window.fs:g} Hz, "
        f"{window.highpass_hz:g}-{window.lowpass_hz:g} Hz); a flat window becomes zeros"
    )


def tensor_infos(model: bytes) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """``(inputs, outputs)`` of a .tflite as :class:`TensorInfo`, inputs labelled by role.

    Roles come from the signature's input names (``beat``, ``rr``), else from tensor names.
    """
    m = read_model(model)
    graph = m.subgraphs[0]
    by_index: dict[int, str] = {}
    for sig in m.signatureDefs or []:
        for tmap in sig.inputs or []:
            by_index[int(tmap.tensorIndex)] = _decode(tmap.name)

    def info(tensor_index: int, position: int, role: str | None) -> TensorInfo:
        t = graph.tensors[tensor_index]
        name = _decode(t.name)
        if role is None:
            sig_name = by_index.get(tensor_index, name)
            role = next((r for r in INPUT_ROLES if _matches(sig_name, r)), None)
            if role is None:
                raise ModelError(f"model input {name!r} is neither 'beat' nor 'rr'")
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
        return TensorInfo(
            role=role, index=position, name=name, shape=tuple(int(s) for s in np.asarray(t.shape)),
            dtype=tensor_type_name(t.type), scale=scale, zero_point=zp,
        )

    inputs = tuple(info(int(ti), i, None) for i, ti in enumerate(graph.inputs))
    outputs = tuple(info(int(ti), i, "probs") for i, ti in enumerate(graph.outputs))
    return inputs, outputs


def variable_tensor_count(model: bytes) -> int:
    """Tensors a .tflite keeps between invocations (the LSTM's hidden and cell state)."""
    m = read_model(model)
    return int(sum(bool(t.isVariable) for g in m.subgraphs for t in g.tensors))


def _decode(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name or "")


def _matches(name: str, role: str) -> bool:
    """True when a tensor/signature name belongs to input ``role`` (``serving_default_rr:0``)."""
    base = name.split(":")[0]
    return base == role or base.endswith("_" + role)


def build_metadata(
    model: bytes,
    window: WindowConfig,
    quantization: str,
    arch: str = "",
    source: str = "",
    qat: bool = False,
    model_config: dict | None = None,
    conversion: dict | None = None,
    edgetpu: bool = False,
    training_records: tuple[str, ...] = (),
) -> ModelMetadata:
    """The :class:`ModelMetadata` for converted ``model`` bytes (tensors read from the file);
    ``training_records``: the ``db/record`` names it was trained or validated on (stored sorted)."""
    inputs, outputs = tensor_infos(model)
    uses_rr = any(t.role == "rr" for t in inputs)
    conversion = dict(conversion or {})
    # The fused LSTM keeps its state in variable tensors between invocations: a runtime
    # must reset them before each beat (TFLiteClassifier and TFLite-Micro's Reset() do).
    conversion["variable_tensors"] = variable_tensor_count(model)
    return ModelMetadata(
        toolkit_version=__version__,
        created=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        classes=tuple(CLASSES),
        window=window,
        rr_features=tuple(window.rr_features) if uses_rr else (),
        inputs=inputs,
        outputs=outputs,
        quantization=quantization,
        arch=arch,
        source=source,
        qat=qat,
        edgetpu=edgetpu,
        normalisation=normalisation_definition(window),
        rr_definitions=rr_definitions(tuple(window.rr_features)) if uses_rr else {},
        model_config=dict(model_config or {}),
        conversion=conversion,
        training_records=tuple(sorted(training_records)),
    )


def embed_metadata(model: bytes, payload: bytes | str, name: str = METADATA_NAME) -> bytes:
    """``model`` with ``payload`` stored in its metadata list under ``name`` (replacing any).

    The result is a new flatbuffer with 16-byte-aligned constant buffers.
    """
    fb = schema()
    if isinstance(payload, str):
        payload = payload.encode()
    m = read_model(model)
    data = np.frombuffer(payload, dtype=np.uint8).copy()
    m.metadata = list(m.metadata or [])
    m.buffers = list(m.buffers or [])
    existing = next((e for e in m.metadata if _decode(e.name) == name), None)
    if existing is not None:  # overwrite in place: no orphaned buffer
        m.buffers[existing.buffer].data = data
        m.buffers[existing.buffer].offset = m.buffers[existing.buffer].size = 0
        return write_model(m)
    buffer = fb.BufferT()
    buffer.data = data
    m.buffers.append(buffer)
    entry = fb.MetadataT()
    entry.name = name
    entry.buffer = len(m.buffers) - 1
    m.metadata.append(entry)
    return write_model(m)


def attach_metadata(model: bytes, meta: ModelMetadata) -> bytes:
    """``model`` carrying ``meta`` as its ``edge_ecg`` metadata entry."""
    return embed_metadata(model, meta.to_json(), METADATA_NAME)
