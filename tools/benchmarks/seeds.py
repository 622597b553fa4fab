"""Stability: the shipped recipe retrained with three seeds, each int8 model scored on DS2.

Issue 28's target: the recipe's DS2 SVEB F1 must not hang on the training seed (within +-3
points of the shipped model's for every seed). The three models are the seed-0, 1 and 2
fold-1 runs of cross-validation round 10 (fold 1 holds out the shipped model's validation
patients, so each is ``edge-ecg train --config <recipe> --seed N``), kept in
``tools/results/cv10_runs/``; the recipe is round 10's choice (``tools/results/cv_round10.json``).
Each is converted to full int8 as ``edge-ecg convert`` does (DS1 calibration beats) and scored
on DS2 at the reference beats (EC57 gross), with S beats inside runs on their own line.
DS2 chose nothing: the recipe was chosen before this runs. Run by name only::

    python tools/bench.py seeds
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks import RESULTS, BenchContext

NAME = "seeds"
TITLE = "Stability over training seeds (DS2, int8)"
IN_ALL = False  # three conversions and DS2 scorings: run by name

RUNS = RESULTS / "cv10_runs"
ROUND = RESULTS / "cv_round10.json"
SEEDS = (0, 1, 2)
#: Issue 28: every seed's DS2 SVEB F1 within this many points of the shipped (seed-0) model's.
TOLERANCE = 0.03


def _run_dir(candidate: str, seed: int) -> Path:
    return RUNS / (candidate if seed == 0 else f"{candidate}@seed{seed}") / "fold1"


def run(ctx: BenchContext) -> dict:
    from benchmarks.accuracy import _summary
    from benchmarks.accuracy import s_in_runs as runs_table
    from edge_ecg.export.pipeline import run_convert
    from edge_ecg.evaluate.classify import evaluate_classifier
    from edge_ecg.model.run import load_run_classifier
    from edge_ecg.records.aami import DS2

    if not ROUND.is_file():
        raise SystemExit(f"{ROUND} is missing: round 10 has not chosen a recipe yet")
    candidate = json.loads(ROUND.read_text())["chosen"]
    records = ("100", "232", "233") if ctx.quick else DS2
    out: dict = {"candidate": candidate, "records": list(records), "seeds": {}}
    for seed in SEEDS:
        run_dir = _run_dir(candidate, seed)
        if not (run_dir / "model_qat.keras").is_file():
            raise SystemExit(f"{run_dir}: no trained fold-1 run for seed {seed}")
        tflite = ctx.out_dir / "_scratch" / f"seeds_{candidate}_{seed}.tflite"
        run_convert(run_dir, out=tflite, data=ctx.mitdb, compare=False, micro=False, progress=False,
                    echo=lambda _m: None)
        clf = load_run_classifier(tflite)
        report, probs, beats = evaluate_classifier(clf, ctx.mitdb, records, progress=False)
        out["seeds"][str(seed)] = {"run": str(run_dir.relative_to(RESULTS.parent.parent)),
                                   "gross": _summary(report), "s_in_runs": runs_table(beats, probs)}
    f1 = [out["seeds"][str(s)]["gross"]["S"]["f1"] for s in SEEDS]
    out["sveb_f1"] = f1
    out["sveb_f1_spread"] = max(f1) - min(f1)
    out["sveb_f1_sd"] = statistics.stdev(f1)
    out["within_tolerance"] = all(abs(x - f1[0]) <= TOLERANCE for x in f1)
    return out


def _p(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def render(result: dict) -> str:
    lines = [f"Recipe `{result['candidate']}` (round 10's choice), fold-1 runs of seeds "
             f"{', '.join(result['seeds'])}, int8, DS2 reference beats, EC57 gross, %:", "",
             "| seed | SVEB Se | SVEB +P | SVEB F1 | S in runs Se | VEB Se | VEB +P | accuracy | macro-F1 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for seed, r in result["seeds"].items():
        g = r["gross"]
        lines.append(f"| {seed} | {_p(g['S']['se'])} | {_p(g['S']['ppv'])} | {_p(g['S']['f1'])} | "
                     f"{_p(r['s_in_runs']['all']['in_run']['se'])} | {_p(g['V']['se'])} | {_p(g['V']['ppv'])} | "
                     f"{_p(g['accuracy'])} | {_p(g['macro_f1'])} |")
    lines.append(f"\nSVEB F1 spread (max - min) {_p(result['sveb_f1_spread'])} points, sd "
                 f"{_p(result['sveb_f1_sd'])}; every seed within +-{100 * TOLERANCE:.0f} points of seed 0's: "
                 f"{'yes' if result['within_tolerance'] else '**no**'}.")
    return "\n".join(lines)
