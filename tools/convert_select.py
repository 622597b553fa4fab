#!/usr/bin/env python
"""Choose the int8 conversion setting of a model by a rule fixed before it is run (issue 28).

    python tools/convert_select.py                       # models/model_qat.keras + models/config.json
    python tools/convert_select.py --model runs/a/model_qat.keras --config runs/a/config.json \
        --out tools/results/convert_select_a.json

The rule (committed before the candidates were first converted; not to be changed after it):

- **Selection set**: every beat of the model's own training records, MIT-BIH DS1 and the even
  svdb records (``mitdb:DS1``, ``svdb:EVEN``: the records its ``train.data`` names), built the
  offline way (:func:`edge_ecg.beats.dataset.build_sets_beatset`). DS2 is never read by this
  tool: convert's own report, which runs on DS2, measures the chosen setting afterwards and
  chooses nothing.
- **Candidates** (:data:`CANDIDATES`, the default first): the calibration sample (class-stratified
  beats, ``--calibration`` N and ``--seed``: 1000 / seed 0 by default, 250, 4000, and 1000 with
  seeds 1 and 2, which shows how much the draw alone moves the result), the quantizer
  (``legacy``, ``mlir``), and the records the sample is drawn from (DS1, as ``convert`` does, or
  the training records, DS1 + svdb:EVEN).
- **Measures**: (a) int8 (LiteRT, no delegate) vs float Keras label agreement on every selection
  beat; (b) TFLite-Micro vs LiteRT label agreement on :data:`MICRO_BEATS` selection beats
  stratified by class (seed 0), the way convert's check draws them. Both are issue 28 targets
  (>= 99.5 %).
- **Score**: the lower of (a) and (b), in percent.
- **Winner**: the highest score; a candidate replaces the default only when its score is more than
  :data:`MARGIN` points higher (a closer call keeps the default, listed first).

Writes ``tools/results/convert_select.json`` (``--out``): every candidate's measures, file size,
arena and the winner, with this rule's text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import ROOT, machine_info
from benchmarks import data_root as find_data_root

#: (name, calibration beats, seed, quantizer, records the calibration sample is drawn from).
CANDIDATES: tuple[tuple[str, int, int, str, str], ...] = (
    ("default", 1000, 0, "legacy", "DS1"),
    ("cal250", 250, 0, "legacy", "DS1"),
    ("cal4000", 4000, 0, "legacy", "DS1"),
    ("seed1", 1000, 1, "legacy", "DS1"),
    ("seed2", 1000, 2, "legacy", "DS1"),
    ("mlir", 1000, 0, "mlir", "DS1"),
    ("train_records", 1000, 0, "legacy", "train"),
)
#: Selection beats run through TFLite-Micro (stratified by class).
MICRO_BEATS = 5000
#: Points by which a candidate must beat the default's score to replace it.
MARGIN = 0.05
SELECTION_SPECS = ("mitdb:DS1", "svdb:EVEN")

RULE = __doc__.split("The rule", 1)[1].split("Writes", 1)[0].strip()


def _calibration_sample(beats, n: int, seed: int):
    from edge_ecg.export.convert import stratified_indices
    from edge_ecg.config import CLASSES

    idx = stratified_indices(beats.y, n, seed)
    counts = {c: int(np.sum(beats.y[idx] == i)) for i, c in enumerate(CLASSES)}
    return (beats.X[idx], beats.rr[idx]), counts


def choose(scores: dict[str, float]) -> str:
    """The rule's winner among candidate scores (``{name: score}``, ``"default"`` among them):
    the highest, when more than :data:`MARGIN` points above the default's; else the default."""
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] > scores["default"] + MARGIN else "default"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "model_qat.keras"))
    ap.add_argument("--config", default=str(ROOT / "models" / "config.json"))
    ap.add_argument("--data-root", default=None, help="folder holding mitdb/ and svdb/ (default ../shared/data)")
    ap.add_argument("--only", default="", help="comma-separated candidate names (a partial run; no verdict)")
    ap.add_argument("--out", default=str(ROOT / "tools" / "results" / "convert_select.json"))
    args = ap.parse_args(argv)

    from edge_ecg.beats.dataset import build_beatset, build_sets_beatset
    from edge_ecg.export.convert import convert_source, load_source_model, stratified_indices
    from edge_ecg.export.micro import micro_check
    from edge_ecg.export.pipeline import keras_predict
    from edge_ecg.records.aami import DS1
    from edge_ecg.records.sets import resolve_specs
    from edge_ecg.runtime.interpreter import TFLiteClassifier

    data_root = find_data_root(args.data_root)
    source = load_source_model(args.model, args.config, "qat")
    window = source.window
    print(f"selection set: {' + '.join(SELECTION_SPECS)} under {data_root}", flush=True)
    selection = build_sets_beatset(resolve_specs(list(SELECTION_SPECS), data_root), window)
    ds1 = build_beatset(data_root / "mitdb", DS1, window)
    micro_idx = stratified_indices(selection.y, MICRO_BEATS, 0)
    print(f"{len(selection)} selection beats; {len(micro_idx)} through TFLite-Micro", flush=True)

    float_labels = None
    wanted = [c for c in CANDIDATES if not args.only or c[0] in args.only.split(",")]
    rows = {}
    for name, n, seed, quantizer, records in wanted:
        t0 = time.perf_counter()
        representative, counts = _calibration_sample(selection if records == "train" else ds1, n, seed)
        info = {"beats": int(len(representative[0])), "records": records, "class_counts": counts, "seed": seed}
        converted = convert_source(source, "int8", representative, info, quantizer=quantizer)
        if float_labels is None:
            float_labels = np.argmax(keras_predict(converted.float_model or source.model, selection.X, selection.rr),
                                     axis=1)
        clf = TFLiteClassifier(converted.tflite, delegate="none")
        rr = selection.rr if clf.uses_rr else None
        raw = clf.predict_raw_batch(selection.X, rr)
        agree = float(np.mean(np.argmax(raw, axis=1) == float_labels)) * 100
        micro = micro_check(converted.tflite, selection.X[micro_idx], None if rr is None else rr[micro_idx],
                            beats_from="DS1 + svdb:EVEN", reference=raw[micro_idx])
        micro_agree = micro.get("label_agreement_pct", float("nan"))
        rows[name] = {
            "calibration": info, "quantizer": quantizer, "size_bytes": len(converted.tflite),
            "int8_vs_float_agreement_pct": agree, "int8_vs_float_disagree": int(np.sum(np.argmax(raw, axis=1) != float_labels)),
            "micro_vs_litert_agreement_pct": micro_agree, "micro_disagree": micro.get("n_disagree"),
            "arena_bytes": micro.get("arena_bytes"), "score": min(agree, micro_agree),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"{name:14s} int8 vs float {agree:.3f} %  micro vs LiteRT {micro_agree:.3f} %  "
              f"{len(converted.tflite)} B  ({rows[name]['seconds']} s)", flush=True)

    result = {"rule": RULE, "model": str(Path(args.model)), "config": str(Path(args.config)),
              "selection": {"specs": list(SELECTION_SPECS), "beats": int(len(selection)), "micro_beats": int(len(micro_idx))},
              "candidates": rows, "machine": machine_info()}
    if not args.only and "default" in rows:
        winner = choose({name: row["score"] for name, row in rows.items()})
        result["winner"] = winner
        print(f"winner: {winner} (score {rows[winner]['score']:.3f}; default {rows['default']['score']:.3f})")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
