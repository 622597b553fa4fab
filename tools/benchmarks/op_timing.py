"""Microseconds per op of a .tflite in LiteRT, where Python has no per-op profiler.

LiteRT's Python interpreter times a whole ``invoke`` only. To see where one inference goes,
each op of the model is cut out into its own one-op model (the same tensors, weights,
quantisation and options; its non-constant inputs become the model's inputs, its outputs the
model's outputs), fed the values that op really sees on a real beat (read from the full model
with ``experimental_preserve_all_tensors``), and timed alone. All one-op models and the full
model are timed in the same rounds, interleaved, so load on the machine spreads over all of
them. The sum over ops against the full model's ``invoke`` shows what the cut leaves out
(per-invoke interpreter work).
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np


def _is_constant(model, graph, index: int) -> bool:
    buf = graph.tensors[index].buffer
    data = model.buffers[buf].data if 0 < buf < len(model.buffers) else None
    return data is not None and len(data) > 0


def single_op_models(model_bytes: bytes) -> list[dict]:
    """One dict per op of subgraph 0, in execution order: ``index``, ``op`` (name),
    ``model`` (the one-op .tflite bytes) and ``inputs`` (tensor indices it must be fed)."""
    from edge_ecg.export.flatbuffer import op_name, read_model, write_model

    base = read_model(model_bytes)
    out = []
    for k, op in enumerate(base.subgraphs[0].operators):
        m = read_model(model_bytes)
        g = m.subgraphs[0]
        kept = g.operators[k]
        inputs = [int(i) for i in kept.inputs
                  if int(i) >= 0 and not _is_constant(m, g, int(i)) and not g.tensors[int(i)].isVariable]
        g.operators = [kept]
        g.inputs = inputs
        g.outputs = [int(i) for i in kept.outputs]
        m.signatureDefs = []
        out.append({"index": k, "op": op_name(base, op.opcodeIndex), "model": write_model(m), "inputs": inputs})
    return out


def _interpreter(model_bytes: bytes, **kwargs):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes, num_threads=1, **kwargs)
    it.allocate_tensors()
    return it


def _block_us(invoke, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        invoke()
    return (time.perf_counter() - t0) * 1e6 / calls


def time_ops(model_bytes: bytes, feed: dict[int, np.ndarray], rounds: int = 30, calls: int = 20) -> dict:
    """Per-op and per-op-type time (µs, median over ``rounds`` blocks of ``calls`` invokes).

    ``feed`` maps the full model's input positions (its input list) to model-ready arrays (one beat).
    Returns ``ops`` (one row per op: index, op, p50_us), ``by_type`` (op name -> µs summed
    over its ops), ``sum_us``, and ``full_us`` (the full model's invoke, timed alike).
    """
    full = _interpreter(model_bytes, experimental_preserve_all_tensors=True)
    positions = [d["index"] for d in full.get_input_details()]
    for pos, arr in feed.items():
        full.set_tensor(positions[pos], arr)
    full.invoke()
    values = {}
    parts = single_op_models(model_bytes)
    for part in parts:
        for i in part["inputs"]:
            values[i] = full.get_tensor(i).copy()
    plain = _interpreter(model_bytes)
    for pos, arr in feed.items():
        plain.set_tensor(positions[pos], arr)
    runners = {"full": plain.invoke}
    for part in parts:
        it = _interpreter(part["model"])
        for i in part["inputs"]:
            it.set_tensor(i, values[i])
        runners[part["index"]] = it.invoke
    samples = defaultdict(list)
    for fn in runners.values():  # warm up
        _block_us(fn, 5)
    for _ in range(rounds):
        for key, fn in runners.items():
            samples[key].append(_block_us(fn, calls))
    ops = [{"index": p["index"], "op": p["op"], "p50_us": float(np.median(samples[p["index"]]))} for p in parts]
    by_type: dict[str, float] = defaultdict(float)
    for row in ops:
        by_type[row["op"]] += row["p50_us"]
    return {"ops": ops, "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "sum_us": float(sum(r["p50_us"] for r in ops)), "full_us": float(np.median(samples["full"])),
            "rounds": rounds, "calls": calls}
