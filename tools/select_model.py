"""Choose the shipped model among candidate training runs, by DS1 validation only.

Superseded by ``tools/cv_select.py`` (cross-validation over all of DS1): on six held-out
patients this rule ranked three seeds in the reverse order of their DS2 scores. Kept because
it chose the model shipped before, and its results are in ``tools/results/selection*.json``.

The rule was fixed (and committed) before the candidates were trained:

1. Every candidate is a full `edge-ecg train` run on DS1 with the configuration in
   ``tools/candidates/<name>.json`` (same seed, same schedule, same validation records).
2. The score is the validation macro-F1 over N, S and V of the model that would ship:
   the quantization-aware model (``metrics.json`` -> ``qat.val.macro_f1``), measured on
   the held-out DS1 records ``train.val_records``.
3. The highest score wins; a candidate must beat the first-listed one (the baseline) by
   more than ``--margin`` (default 0.005, half a point) to replace it.

The choice never reads DS2. Run::

    edge-ecg train --config tools/candidates/base.json --out runs/sel/base
    edge-ecg train --config tools/candidates/rr_scale5.json --out runs/sel/rr_scale5
    edge-ecg train --config tools/candidates/rr_scale5_conv4.json --out runs/sel/rr_scale5_conv4
    python tools/select_model.py runs/sel/base runs/sel/rr_scale5 runs/sel/rr_scale5_conv4

The candidates: ``base`` is the previously shipped configuration; ``rr_scale5`` maps the RR
ratios to ``5 * (rr - 1)`` inside the model (a one-off DS2 evaluation of that setting in an
earlier session suggested it helps S beats, which is why it is a candidate at all);
``rr_scale5_conv4`` adds a fourth convolution block so the LSTM reads 28 steps instead of 56
(the int8 LSTM kernel is most of the inference time on a CPU).

The result goes to ``tools/results/selection.json``. ``--ds2 MITDB`` adds each candidate's DS2
figures after the choice has been made, so that the cost of the choice can be seen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "selection.json"


def score(run: Path) -> dict:
    """The candidate's validation scores from its run folder's metrics.json."""
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        sys.exit(f"Error: {metrics_path} does not exist (is {run} a finished `edge-ecg train` run?)")
    metrics = json.loads(metrics_path.read_text())
    stage = metrics.get("qat") or metrics["float"]
    val = stage["val"]
    config = json.loads((run / "config.json").read_text())
    return {
        "run": run.name,
        "stage": "qat" if metrics.get("qat") else "float",
        "val_macro_f1": val["macro_f1"],
        "val_f1": {c: val[c]["f1"] for c in ("N", "S", "V") if c in val},
        "val_records": metrics.get("val_records"),
        "model": config["model"],
        "window_resample_width": config["window"].get("resample_width"),
    }


def choose(scores: list[dict], margin: float) -> int:
    """Index of the winner by validation macro-F1 (the margin rule of :func:`cv_select.choose`)."""
    from cv_select import choose as choose_by_margin

    return choose_by_margin([s["val_macro_f1"] for s in scores], margin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="candidate run folders; the first is the baseline")
    parser.add_argument("--margin", type=float, default=0.005, help="macro-F1 a challenger must gain (default 0.005)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--ds2", type=Path, metavar="MITDB",
                        help="after choosing, also score every candidate's model_qat.keras on DS2 (reported "
                             "beside the choice, never used by it)")
    args = parser.parse_args()
    scores = [score(r) for r in args.runs]
    winner = choose(scores, args.margin)
    for i, s in enumerate(scores):
        f1 = "  ".join(f"{c} {v:.3f}" for c, v in s["val_f1"].items())
        mark = "  <- chosen" if i == winner else ""
        print(f"{s['run']:<18} val macro-F1 {s['val_macro_f1']:.4f}  ({f1}){mark}")
    if args.ds2:
        for s, run in zip(scores, args.runs):
            s["ds2_after_choice"] = score_ds2(run, args.ds2)
            d = s["ds2_after_choice"]
            print(f"{s['run']:<18} DS2 (Keras QAT source): VEB {d['v_se']:.1f} / {d['v_ppv']:.1f}  "
                  f"SVEB {d['s_se']:.1f} / {d['s_ppv']:.1f}  acc {d['acc']:.1f}  macro-F1 {d['macro_f1']:.2f} "
                  f"(float before QAT {d['float_before_qat_macro_f1']:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": __doc__.split("The choice never reads DS2")[0].strip(), "margin": args.margin,
                                    "candidates": scores, "chosen": scores[winner]["run"]}, indent=2) + "\n")


def score_ds2(run: Path, mitdb: Path) -> dict:
    """EC57 gross figures (%) on DS2 at the reference beats of the run's model_qat.keras, and the
    macro-F1 of its float model before QAT (model.keras)."""
    from edge_ecg.config import load_config
    from edge_ecg.evaluate.classify import evaluate_classifier
    from edge_ecg.model.predict import KerasClassifier
    from edge_ecg.model.run import load_keras_model
    from edge_ecg.records.aami import DS2

    config = load_config(run / "config.json")
    gross = {}
    for name in ("model_qat.keras", "model.keras"):
        clf = KerasClassifier(load_keras_model(run / name), config, run / name)
        gross[name] = evaluate_classifier(clf, mitdb, DS2, progress=False)[0].gross
    g = gross["model_qat.keras"]
    return {"v_se": 100 * g["V"]["se"], "v_ppv": 100 * g["V"]["ppv"], "s_se": 100 * g["S"]["se"],
            "s_ppv": 100 * g["S"]["ppv"], "acc": 100 * g["accuracy"], "macro_f1": 100 * g["macro_f1"],
            "float_before_qat_macro_f1": 100 * gross["model.keras"]["macro_f1"]}


if __name__ == "__main__":
    main()
