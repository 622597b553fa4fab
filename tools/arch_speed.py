"""How fast would a candidate's network run on a device, before it is trained?

Speed is a property of the architecture, not of the weights: each candidate of
``tools/candidates/<name>.json`` is built with random weights, wrapped for quantization-aware
training as ``edge-ecg train`` does, converted to full int8 the project's way
(:func:`edge_ecg.export.convert.convert_model`, calibrated on random windows) and timed in
LiteRT, one thread, one beat per call, **side by side with the shipped int8 model in one run**
(calls interleaved, so load on the machine falls on all alike). Reported per candidate: the
p50 ratio to the shipped model with a 95 % bootstrap interval, the flatbuffer size, MACs and
µs per op type. Run::

    python tools/arch_speed.py fast_short fast_short_rr --out tools/results/arch_speed_round10.json

Candidate selection rounds use it to know, before any training, which candidates can meet a
speed target (issue 28: int8 per-beat p50 <= 0.25x the shipped model's).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def convert_random(config: dict, seed: int = 0) -> bytes:
    """int8 flatbuffer of ``config``'s network with random weights (QAT-wrapped, then converted)."""
    from edge_ecg.config import load_config
    from edge_ecg.export.convert import convert_model
    from edge_ecg.model.arch import build_model
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.tfcompat import load_tf

    tf, _ = load_tf()
    tf.random.set_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        cfg = load_config(path)
    model = build_model(cfg.model, cfg.window)
    qat = quantize_model(model, cfg.model, cfg.window)
    rng = np.random.default_rng(seed)
    n = 64
    X = rng.normal(0, 0.5, (n, cfg.window.length)).astype(np.float32)
    rr = rng.normal(1.0, 0.2, (n, len(cfg.window.rr_features))).astype(np.float32) if cfg.model.use_rr else None
    converted = convert_model(qat, cfg.window, mode="int8", representative=(X, rr), arch=cfg.model.arch,
                              source="random weights (tools/arch_speed.py)", model_config={})
    return converted.tflite


def time_models(models: dict[str, bytes], runs: int) -> dict:
    """Side-by-side LiteRT timing (1 thread) of every model; the first is the reference."""
    from benchmarks.latency import _litert_call, median_ratio_interval, time_side_by_side
    from benchmarks.op_timing import time_ops

    rng = np.random.default_rng(1)
    calls, feeds = {}, {}
    for name, blob in models.items():
        from edge_ecg.runtime.interpreter import TFLiteClassifier

        probe = TFLiteClassifier(blob, threads=1, runtime="ai_edge_litert")
        beat_len = int(np.prod(probe.input_info("beat").shape))
        n_rr = int(np.prod(probe.input_info("rr").shape)) if probe.uses_rr else 0
        beat = rng.normal(0, 0.5, beat_len).astype(np.float32)
        rr = np.ones(n_rr, dtype=np.float32) if n_rr else None
        calls[name], clf = _litert_call(blob, 1, beat, rr)
        feeds[name] = {clf.input_info(role).index: arr for role, arr in clf.quantize_inputs(beat, rr).items()}
    timed = time_side_by_side(calls, runs)
    ref = next(iter(models))
    out = {}
    for name, blob in models.items():
        t = timed[name]
        lo, hi = median_ratio_interval(t["times_us"], timed[ref]["times_us"])
        out[name] = {"p50_us": t["p50_us"], "p99_us": t["p99_us"], "ratio_p50": t["p50_us"] / timed[ref]["p50_us"],
                     "ratio_interval_95": [lo, hi], "bytes": len(blob), "ops": _op_summary(blob, feeds[name], time_ops)}
    return out


def _op_summary(blob: bytes, feed: dict, time_ops) -> dict:
    """MACs (from the converter report) and µs per op type."""
    from edge_ecg.export.report import describe_model

    desc = describe_model(blob)
    try:
        timing = time_ops(blob, feed, rounds=10, calls=10)
    except Exception as exc:  # a timing failure must not hide the totals
        timing = {"error": str(exc)}
    return {"macs_total": desc["macs"], "macs_by_op": desc["macs_by_op"], "timing": timing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", help="names in tools/candidates/")
    parser.add_argument("--reference", type=Path, default=ROOT / "models" / "edge_ecg_int8.tflite",
                        help="the int8 model the ratios are to (default: the shipped one)")
    parser.add_argument("--runs", type=int, default=3000, help="timed calls per model")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    if not args.reference.is_file():
        sys.exit(f"arch_speed: no reference model at {args.reference}")
    models = {"shipped": args.reference.read_bytes()}
    for name in args.candidates:
        path = HERE / "candidates" / f"{name}.json"
        if not path.is_file():
            sys.exit(f"arch_speed: no candidate {name!r} ({path})")
        print(f"converting {name} (random weights) ...", file=sys.stderr, flush=True)
        models[name] = convert_random(json.loads(path.read_text()))
    result = time_models(models, args.runs)
    for name, r in result.items():
        lo, hi = r["ratio_interval_95"]
        print(f"{name:<22} p50 {r['p50_us']:7.0f} us  {r['ratio_p50']:.3f}x (95 % {lo:.3f}-{hi:.3f})  "
              f"{r['bytes'] / 1024:.1f} KB  MACs {r['ops']['macs_total']}")
    if args.out:
        from benchmarks import machine_info

        args.out.write_text(json.dumps({"_meta": {"machine": machine_info(), "command": " ".join(sys.argv)},
                                        "reference": str(args.reference.relative_to(ROOT)) if args.reference.is_relative_to(ROOT) else str(args.reference),
                                        "models": result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
