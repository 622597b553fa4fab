"""Microcontroller parity: the int8 model in TFLite-Micro against LiteRT on DS2 beats.

TFLite-Micro's kernels are the ones a Cortex-M firmware links; its Python interpreter
(``tflite-micro`` on PyPI) runs them on the host. This harness draws N beats from DS2
(stratified by class, so rare classes are in it), runs both interpreters on the same int8
inputs, finds the smallest arena the model runs in, and writes JSON: label agreement,
output differences in int8 steps, and every beat on which the labels differ (record,
time, reference class, both labels, difference).

    python -m firmware_harness.micro_parity --beats 2000 --out tools/results/micro_parity.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "edge_ecg_int8.tflite"


def _shown(path: Path) -> str:
    """``path`` relative to the project when inside it (results stay meaningful elsewhere)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def run_parity(model_path: Path, db_dir: Path, n_beats: int = 2000, records=None, seed: int = 0) -> dict:
    """Parity of ``model_path`` on ``n_beats`` class-stratified beats of ``records`` (default DS2)."""
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.config import CLASSES
    from edge_ecg.export.convert import stratified_indices
    from edge_ecg.export.micro import micro_check
    from edge_ecg.records import DS2
    from edge_ecg.runtime.metadata import read_metadata, read_model_bytes

    model = read_model_bytes(model_path)
    window = read_metadata(model, where=str(model_path)).window
    beats = build_beatset(db_dir, tuple(records or DS2), window, progress=False)
    idx = np.sort(stratified_indices(beats.y, min(n_beats, len(beats)), seed=seed))
    chosen = beats.subset(idx)
    result = micro_check(model, chosen.X, chosen.rr, beats_from=f"{len(idx)} beats of {len(set(chosen.record))} records")
    if "skipped" in result:
        return {"model": _shown(model_path), **result}
    for d in result["disagreements"]:
        i = d.pop("index")
        d.update(record=str(chosen.record[i]), time_s=round(float(chosen.sample[i] / window.fs), 3),
                 reference=CLASSES[int(chosen.y[i])])
    return {"model": _shown(model_path), "model_bytes": len(model), "seed": seed, **result}


def format_parity(result: dict) -> str:
    """A few lines for the terminal."""
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    lines = [
        f"TFLite-Micro {result['version']} vs {result['reference']} on {result['n_beats']} DS2 beats "
        f"({result['beats_from']})",
        f"arena: {result['arena_bytes']:,} bytes; label agreement {result['label_agreement_pct']:.2f} %; "
        f"output difference max {result['max_diff_steps']} int8 steps, mean {result['mean_abs_diff_steps']:.3f}",
    ]
    for d in result["disagreements"]:
        lines.append(f"  differs: record {d['record']} at {d['time_s']:.2f} s (reference {d['reference']}): "
                     f"LiteRT {d['litert']}, Micro {d['micro']}, {d['diff_steps']} steps apart")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="int8 .tflite (default: the shipped model)")
    parser.add_argument("--data", type=Path, default=None, help="MIT-BIH folder (default: the usual places)")
    parser.add_argument("--beats", type=int, default=2000, help="DS2 beats to compare (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = parser.parse_args(argv)

    from edge_ecg.errors import EdgeEcgError
    from edge_ecg.records import find_database

    try:
        result = run_parity(args.model, find_database("mitdb", args.data), args.beats, seed=args.seed)
    except EdgeEcgError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(format_parity(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
