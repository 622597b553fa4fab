"""What a converted model is and how it compares: size, ops, quantisation, MACs, agreement.

:func:`describe_model` reads a .tflite (no interpreter needed); :func:`compare_predictions`
scores the Keras model and the converted one on the same beats with EC57 statistics
(:mod:`edge_ecg.evaluate`); :func:`render_text` prints a conversion report.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from edge_ecg.config import CLASSES
from edge_ecg.export.flatbuffer import op_name, read_model, tensor_type_name
from edge_ecg.runtime.metadata import ModelMetadata, read_metadata

#: Acceptance for an int8 model against its float source on DS2 (issue 4).
MIN_AGREEMENT_PCT = 99.5
MAX_F1_DROP_POINTS = 0.5


# --------------------------------------------------------------------------- the file


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(tensor.shape if tensor.shape is not None else []))


def _elements(tensor) -> int:
    return int(np.prod(_shape(tensor))) if tensor.shape is not None else 0


def op_macs(name: str, op, graph) -> int:
    """Multiply-accumulates of one op per inference (0 for ops without a weight matrix).

    CONV_2D: output elements x kernel height x width x input channels; DEPTHWISE_CONV_2D:
    output elements x kernel height x width; FULLY_CONNECTED: output elements x input
    features; UNIDIRECTIONAL_SEQUENCE_LSTM: time steps x all gate weight elements (input
    and recurrent, plus projection).
    """
    t = graph.tensors
    inputs = [int(i) for i in op.inputs]
    if name == "CONV_2D":
        out, filt = t[int(op.outputs[0])], t[inputs[1]]
        return _elements(out) * (_elements(filt) // max(_shape(filt)[0], 1))
    if name == "DEPTHWISE_CONV_2D":
        out, filt = t[int(op.outputs[0])], t[inputs[1]]
        kh, kw = _shape(filt)[1:3]
        return _elements(out) * kh * kw
    if name == "FULLY_CONNECTED":
        out, weights = t[int(op.outputs[0])], t[inputs[1]]
        return _elements(out) * _shape(weights)[-1]
    if name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        seq = _shape(t[inputs[0]])
        time_major = bool(getattr(op.builtinOptions, "timeMajor", False))
        steps = seq[0] if time_major else seq[1]
        weight_slots = list(range(1, 9)) + [16]  # input-to-gate, recurrent-to-gate, projection
        return steps * sum(_elements(t[inputs[k]]) for k in weight_slots if k < len(inputs) and inputs[k] >= 0)
    return 0


def describe_model(model: bytes) -> dict:
    """Facts about a .tflite: size, op counts, MACs, inputs/outputs with quantisation.

    Returns ``size_bytes``, ``ops`` (name -> count, in graph order), ``n_ops``, ``macs``
    (per inference), ``macs_by_op``, ``weights_bytes`` (constant buffers), ``float_ops``
    (ops computing in float other than (DE)QUANTIZE), ``inputs``/``outputs`` (name,
    shape, dtype, scale, zero point), and ``metadata`` (the edge_ecg metadata, or None).
    """
    m = read_model(model)
    ops: Counter = Counter()
    macs: Counter = Counter()
    float_ops = []
    for graph in m.subgraphs:
        for op in graph.operators:
            name = op_name(m, op.opcodeIndex)
            ops[name] += 1
            macs[name] += op_macs(name, op, graph)
            tensors = [int(i) for i in list(op.inputs) + list(op.outputs) if int(i) >= 0]
            if name not in ("QUANTIZE", "DEQUANTIZE") and any(
                tensor_type_name(graph.tensors[i].type).startswith("float") for i in tensors
            ):
                float_ops.append(name)
    graph = m.subgraphs[0]

    def io(indices) -> list[dict]:
        out = []
        for i in indices:
            tensor = graph.tensors[int(i)]
            q = tensor.quantization
            has_q = q is not None and q.scale is not None and len(q.scale) > 0
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            out.append({
                "name": name, "shape": list(_shape(tensor)), "dtype": tensor_type_name(tensor.type),
                "scale": float(q.scale[0]) if has_q else None,
                "zero_point": int(q.zeroPoint[0]) if has_q else None,
            })
        return out

    weights = sum(len(b.data) for b in (m.buffers or []) if b.data is not None)
    meta_bytes = 0
    for entry in m.metadata or []:
        buf = m.buffers[entry.buffer]
        meta_bytes += len(buf.data) if buf.data is not None else 0
    try:
        meta: ModelMetadata | None = read_metadata(model)
    except Exception:
        meta = None
    return {
        "size_bytes": len(model),
        "ops": dict(ops),
        "n_ops": int(sum(ops.values())),
        "macs": int(sum(macs.values())),
        "macs_by_op": {k: int(v) for k, v in macs.items() if v},
        "weights_bytes": int(weights - meta_bytes),
        "float_ops": float_ops,
        "inputs": io(graph.inputs),
        "outputs": io(graph.outputs),
        "metadata": meta.to_dict() if meta else None,
    }


# --------------------------------------------------------------------------- agreement


def class_table(report) -> dict:
    """Per-class Se, +P, F1 (fractions) and gross accuracy / macro-F1 of an EC57 ``Report``."""
    gross = report.gross
    table = {c: {k: gross[c][k] for k in ("se", "ppv", "f1", "n_ref")} for c in CLASSES}
    return {"classes": table, "accuracy": gross["accuracy"], "macro_f1": gross["macro_f1"]}


def compare_predictions(
    reference_probs: np.ndarray,
    converted_probs: np.ndarray,
    y_true: np.ndarray,
    records: np.ndarray,
    samples: np.ndarray,
    fs: float,
    excluded: dict | None = None,
    names: tuple[str, str] = ("float", "int8"),
) -> dict:
    """Label agreement and EC57 scores of a reference model and its conversion on the same beats.

    ``*_probs`` ``(n, 5)`` class probabilities; ``y_true`` ``(n,)`` class indices;
    ``records``/``samples`` (R positions at ``fs`` Hz) place each beat for
    :func:`edge_ecg.evaluate.score_predictions`. Returns ``n_beats``, ``agreement_pct``,
    per-model class tables, ``macro_f1_drop_points`` (reference minus converted, in
    percentage points), and whether the int8 acceptance (>= 99.5 % agreement, <= 0.5
    points macro-F1 loss) is met.
    """
    from edge_ecg.evaluate import score_predictions

    ref = np.argmax(reference_probs, axis=1)
    conv = np.argmax(converted_probs, axis=1)
    agreement = 100.0 * float(np.mean(ref == conv)) if len(ref) else math.nan
    tables = {}
    for name, pred in zip(names, (ref, conv)):
        report = score_predictions(records, samples, y_true, pred, fs, excluded=excluded, title=name)
        tables[name] = class_table(report)
    drop = 100.0 * (tables[names[0]]["macro_f1"] - tables[names[1]]["macro_f1"])
    flips = Counter((CLASSES[a], CLASSES[b]) for a, b in zip(ref, conv) if a != b)
    return {
        "n_beats": int(len(ref)),
        "n_records": int(len(np.unique(records))),
        "names": list(names),
        "agreement_pct": agreement,
        "tables": tables,
        "macro_f1_drop_points": drop,
        "changed_labels": {f"{a}->{b}": n for (a, b), n in flips.most_common()},
        "max_prob_diff": float(np.max(np.abs(reference_probs - converted_probs))) if len(ref) else math.nan,
        "thresholds": {"min_agreement_pct": MIN_AGREEMENT_PCT, "max_f1_drop_points": MAX_F1_DROP_POINTS},
        "pass": bool(agreement >= MIN_AGREEMENT_PCT and drop <= MAX_F1_DROP_POINTS),
    }


# --------------------------------------------------------------------------- text


def _pct(x, decimals: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100.0 * x:.{decimals}f}"


def _quant(t: dict) -> str:
    if t.get("scale") is None:
        return f"{t['dtype']}"
    return f"{t['dtype']} scale {t['scale']:.6g} zero point {t['zero_point']}"


def render_model(desc: dict) -> list[str]:
    """Text lines for :func:`describe_model`'s result."""
    lines = [f"size: {desc['size_bytes']} bytes ({desc['weights_bytes']} in constant buffers)"]
    lines.append(f"MACs per inference: {desc['macs']:,}")
    lines.append("ops: " + ", ".join(f"{k} x{v}" for k, v in desc["ops"].items()))
    if desc["float_ops"]:
        lines.append("float ops: " + ", ".join(desc["float_ops"]))
    for kind in ("inputs", "outputs"):
        for t in desc[kind]:
            lines.append(f"{kind[:-1]} {t['name']} {tuple(t['shape'])}: {_quant(t)}")
    return lines


def render_comparison(cmp: dict) -> list[str]:
    """Text lines for :func:`compare_predictions`' result (an AAMI class table per model)."""
    a, b = cmp["names"]
    lines = [
        f"{a} vs {b} on {cmp['n_beats']} beats of {cmp['n_records']} records: label agreement "
        f"{cmp['agreement_pct']:.2f} %, macro-F1 {_pct(cmp['tables'][a]['macro_f1'])} -> "
        f"{_pct(cmp['tables'][b]['macro_f1'])} (drop {cmp['macro_f1_drop_points']:+.2f} points)",
        f"  {'class':<6}" + "".join(f"{h:>9}" for h in (f"{a} Se", "+P", "F1", f"{b} Se", "+P", "F1", "beats")),
    ]
    for c in CLASSES:
        ra, rb = cmp["tables"][a]["classes"][c], cmp["tables"][b]["classes"][c]
        cells = [_pct(ra["se"]), _pct(ra["ppv"]), _pct(ra["f1"]), _pct(rb["se"]), _pct(rb["ppv"]), _pct(rb["f1"])]
        lines.append(f"  {c:<6}" + "".join(f"{x:>9}" for x in cells) + f"{ra['n_ref']:>9}")
    qat = cmp.get("qat_model")
    if qat:
        lines.append(
            f"  QAT Keras model (fake quantisation): agrees with {b} on {qat['agreement_with_converted_pct']:.2f} %, "
            f"with {a} on {qat['agreement_with_float_pct']:.2f} %; macro-F1 {_pct(qat['macro_f1'])}"
        )
    if cmp["changed_labels"]:
        lines.append("  changed labels: " + ", ".join(f"{k} {v}" for k, v in list(cmp["changed_labels"].items())[:8]))
    t = cmp["thresholds"]
    verdict = "meets" if cmp["pass"] else "MISSES"
    lines.append(
        f"  {verdict} the int8 acceptance: agreement {cmp['agreement_pct']:.3f} % (>= {t['min_agreement_pct']}), "
        f"macro-F1 loss {cmp['macro_f1_drop_points']:.3f} points (<= {t['max_f1_drop_points']})"
    )
    return lines


def render_micro(micro: dict) -> list[str]:
    """Text lines for the TFLite-Micro check (:func:`edge_ecg.export.micro.micro_check`)."""
    if micro.get("skipped"):
        return [f"tflite-micro: skipped ({micro['skipped']})"]
    return [
        f"tflite-micro {micro.get('version', '')}: smallest working arena {micro['arena_bytes']:,} bytes "
        f"({micro.get('platform', '')})",
        f"  parity vs {micro['reference']} on {micro['n_beats']} {micro['beats_from']} windows: max difference "
        f"{micro['max_diff_steps']} int8 steps (mean {micro['mean_abs_diff_steps']:.3f}), label agreement "
        f"{micro['label_agreement_pct']:.2f} %",
    ]


def render_text(result: dict) -> str:
    """The whole conversion report (what ``edge-ecg convert`` prints) from its result dict."""
    lines = [f"converted {result['source']} -> {result['output']} ({result['mode']})"]
    lines += render_model(result["model"])
    cmp = result.get("comparison")
    if cmp and not cmp.get("skipped"):
        lines += render_comparison(cmp)
    elif cmp:
        lines.append(f"DS2 comparison: skipped ({cmp['skipped']})")
    if result.get("micro"):
        lines += render_micro(result["micro"])
    tpu = result.get("edgetpu")
    if tpu:
        lines += tpu.get("lines", [])
    for path in result.get("c_array") or []:
        lines.append(f"C array: {path}")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
