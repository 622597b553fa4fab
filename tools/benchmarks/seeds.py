"""Stability: the shipped recipe retrained with three seeds, each int8 model scored on DS2.

Issue 28's target: the recipe's DS2 SVEB F1 must not hang on the training seed (within +-3
points of the shipped model's for every seed). The recipe is the choice of the latest decided
cross-validation round (the highest-numbered ``tools/results/cv_round<N>.json``); the three
models are its seed-0, 1 and 2 fold-1 runs (fold 1 holds out the shipped model's validation
patients, so each is ``edge-ecg train --config <recipe> --seed N``), found in whichever
``tools/results/cv<N>_runs/`` keeps them.
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

SEEDS = (0, 1, 2)
#: Issue 28: every seed's DS2 SVEB F1 within this many points of the shipped (seed-0) model's.
TOLERANCE = 0.03


def latest_round(results: Path = RESULTS) -> Path | None:
    """The highest-numbered ``cv_round<N>.json`` in ``results`` that has chosen (None: none has)."""
    import re

    rounds = []
    for path in results.glob("cv_round*.json"):
        m = re.fullmatch(r"cv_round(\d+)\.json", path.name)
        if m and "chosen" in json.loads(path.read_text()):
            rounds.append((int(m.group(1)), path))
    return max(rounds)[1] if rounds else None


def _run_dir(candidate: str, seed: int, results: Path = RESULTS) -> Path:
    """The kept fold-1 run of ``candidate`` for ``seed`` (the newest round's folder that has it)."""
    import re

    name = candidate if seed == 0 else f"{candidate}@seed{seed}"
    found = []
    for path in results.glob(f"cv*_runs/{name}/fold1/model_qat.keras"):
        m = re.fullmatch(r"cv(\d+)_runs", path.parents[2].name)
        if m:
            found.append((int(m.group(1)), path.parent))
    return max(found)[1] if found else results / f"cv_runs/{name}/fold1"


def run(ctx: BenchContext) -> dict:
    from benchmarks.accuracy import _summary
    from benchmarks.accuracy import s_in_runs as runs_table
    from edge_ecg.export.pipeline import run_convert
    from edge_ecg.evaluate.classify import evaluate_classifier
    from edge_ecg.model.run import load_run_classifier
    from edge_ecg.records.aami import DS2

    round_file = latest_round()
    if round_file is None:
        raise SystemExit(f"no decided cv_round<N>.json in {RESULTS}: no recipe chosen yet")
    candidate = json.loads(round_file.read_text())["chosen"]
    records = ("100", "232", "233") if ctx.quick else DS2
    out: dict = {"candidate": candidate, "round": round_file.name, "records": list(records), "seeds": {}}
    for seed in SEEDS:
        run_dir = _run_dir(candidate, seed)
        if not (run_dir / "model_qat.keras").is_file():
            raise SystemExit(f"{candidate}: no kept fold-1 run for seed {seed} in {RESULTS}/cv*_runs/ (train it "
                             f"with tools/cv_select.py train {candidate} --seeds {seed})")
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
    lines = [f"Recipe `{result['candidate']}` ({result.get('round', 'cv_round10.json')}'s choice), fold-1 runs of seeds "
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
