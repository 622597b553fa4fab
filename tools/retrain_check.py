#!/usr/bin/env python
"""Does the default ``edge-ecg train`` retrain the shipped model, and within the 30-minute budget?

    python tools/retrain_check.py                          # trains into runs/retrain_check (~25 min here)
    python tools/retrain_check.py --run runs/default_check # compare a run made earlier with `edge-ecg train`
    python tools/retrain_check.py --model-dir models/ds1_only --out-run runs/ds1_check \
        --out tools/results/retrain_check_ds1_only.json      # the DS1-only model, from its own config.json

Runs ``edge-ecg train --data <mitdb> --out <run>`` with no other option (so the packaged
``models/config.json``: DS1 + svdb:EVEN, one TensorFlow thread), unless ``--run`` names a finished
run folder, then compares it with the shipped model's record (``models/training_metrics.json``,
``models/model_qat.keras``):

- ``seconds``: the run's wall time (its ``metrics.json``), against the 30-minute budget;
- ``epochs``: each epoch's training loss and validation macro-F1, side by side, and how many are
  identical (to 1e-6) to the shipped run's;
- ``weights``: the largest absolute difference between the two QAT models' weights (0.0: the same
  model, bit for bit).

Writes ``tools/results/retrain_check.json`` (``--out``). The machine should be otherwise idle
when the time matters. Data: --data-root DIR (holding mitdb/, nstdb/, svdb/), else
$EDGE_ECG_DATA, else ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import ROOT, machine_info
from benchmarks import data_root as find_data_root

BUDGET_S = 30 * 60


def epoch_rows(history: list[dict]) -> list[tuple[str, int, float, float]]:
    """``(phase, epoch, loss, val macro-F1)`` per epoch of a run's history."""
    return [(h["phase"], int(h["epoch"]), float(h["loss"]), float(h["val"]["macro_f1"])) for h in history]


def compare_history(mine: list[dict], shipped: list[dict], tol: float = 1e-6) -> dict:
    """Epoch-by-epoch comparison of two histories (matched by phase and epoch)."""
    theirs = {(p, e): (loss, f1) for p, e, loss, f1 in epoch_rows(shipped)}
    rows, same = [], 0
    for p, e, loss, f1 in epoch_rows(mine):
        ref = theirs.get((p, e))
        equal = ref is not None and abs(ref[0] - loss) <= tol and abs(ref[1] - f1) <= tol
        same += equal
        rows.append({"phase": p, "epoch": e, "loss": loss, "val_macro_f1": f1,
                     "shipped_loss": None if ref is None else ref[0],
                     "shipped_val_macro_f1": None if ref is None else ref[1], "identical": equal})
    return {"rows": rows, "identical": same, "epochs": len(rows), "shipped_epochs": len(theirs)}


def max_weight_difference(a: Path, b: Path) -> float | None:
    """Largest absolute difference between two Keras models' weights (None: shapes differ)."""
    import numpy as np

    from edge_ecg.model.run import load_keras_model

    wa, wb = load_keras_model(a).get_weights(), load_keras_model(b).get_weights()
    if len(wa) != len(wb) or any(x.shape != y.shape for x, y in zip(wa, wb)):
        return None
    return float(max(np.max(np.abs(x - y)) if x.size else 0.0 for x, y in zip(wa, wb)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--run", type=Path, help="a finished `edge-ecg train` run folder to compare (no training)")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "retrain_check", help="where to train")
    ap.add_argument("--data-root", type=Path, help="folder holding mitdb/, nstdb/, svdb/")
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "retrain_check.json")
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models",
                    help="the model to retrain and compare with (its config.json, training_metrics.json, "
                         "model_qat.keras); other than models/, it is trained with --config DIR/config.json")
    args = ap.parse_args(argv)
    model_dir = args.model_dir.resolve()
    data_root = find_data_root(args.data_root)
    run = args.run
    command = None
    if run is None:
        run = args.out_run
        command = [sys.executable, "-m", "edge_ecg", "train", "--data", str(data_root / "mitdb"), "--out", str(run),
                   "--force"]
        if model_dir != (ROOT / "models").resolve():
            command += ["--config", str(model_dir / "config.json")]
        print("training:", " ".join(command[2:]), flush=True)
        t0 = time.perf_counter()
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            print("Error: edge-ecg train failed (its messages are above)", file=sys.stderr)
            return 1
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        print(f"Error: {run} holds no metrics.json: not a finished `edge-ecg train` run", file=sys.stderr)
        return 2
    mine = json.loads(metrics_path.read_text())
    shipped = json.loads((model_dir / "training_metrics.json").read_text())
    history = compare_history(mine["history"], shipped["history"])
    diff = max_weight_difference(run / "model_qat.keras", model_dir / "model_qat.keras")
    result = {
        "run": str(run), "command": " ".join(["edge-ecg"] + (command[3:] if command else ["train", "(given --run)"])),
        "model_dir": str(model_dir.relative_to(ROOT)) if model_dir.is_relative_to(ROOT) else str(model_dir),
        "config_same_as_shipped": (run / "config.json").read_text() == (model_dir / "config.json").read_text(),
        "seconds": mine["seconds"], "budget_seconds": BUDGET_S, "within_budget": mine["seconds"] <= BUDGET_S,
        "shipped_seconds": shipped["seconds"], "feed": mine.get("feed"),
        "qat_val_macro_f1": mine["qat"]["val"]["macro_f1"], "shipped_qat_val_macro_f1": shipped["qat"]["val"]["macro_f1"],
        "epochs_identical": history["identical"], "epochs": history["epochs"], "shipped_epochs": history["shipped_epochs"],
        "max_weight_difference": diff, "history": history["rows"],
        "_meta": machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{run}: {mine['seconds']:.0f} s (budget {BUDGET_S} s; shipped run {shipped['seconds']:.0f} s); "
          f"{history['identical']} of {history['epochs']} epochs identical to the shipped run's "
          f"({history['shipped_epochs']} there); QAT weights max |diff| {diff}; -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
