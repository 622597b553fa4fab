"""Ablation: cnn, lstm and cnn_lstm at a similar parameter budget, several seeds, one table.

Each architecture is trained with the same data (DS1, the shipped model's patient-wise
validation records), the shipped model's configuration (``models/config.json``) except
``model.arch`` (the ablations are sized to
``cnn_lstm``'s parameter count by :func:`edge_ecg.model.arch.build_model`) and seeds 0, 1, 2,
on a shorter schedule than the product model (``EPOCHS`` float epochs, early stopping, no
QAT), and scored as float Keras models on DS2 at the reference beat positions. The table
gives mean ± standard deviation over seeds. Published inter-patient DS2 rows (other methods,
other features, their own protocols) are listed beside ours for context.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import ROOT, BenchContext

NAME = "ablation"
TITLE = "Ablation: CNN vs LSTM vs CNN+LSTM (DS2, float, mean ± sd over seeds)"

ARCHS = ("cnn", "lstm", "cnn_lstm")
SEEDS = (0, 1, 2)
EPOCHS = 8
PATIENCE = 3

#: Published inter-patient (de Chazal DS1 -> DS2) results, as reported in each paper's DS2
#: table (%, gross). Methods, features and class mappings differ between papers; these are
#: context, not a like-for-like comparison.
PUBLISHED = [
    {"method": "de Chazal et al. 2004, LDA on morphology + RR features",
     "cite": "de Chazal P, O'Dwyer M, Reilly RB. IEEE Trans Biomed Eng 51(7):1196-1206, 2004",
     "acc": 86.2, "v_se": 77.7, "v_ppv": 81.9, "s_se": 75.9, "s_ppv": 38.5, "checked": False},
    {"method": "Zhang et al. 2014, disease-specific feature selection + SVMs",
     "cite": "Zhang Z, Dong J, Luo X, Choi KS, Wu X. Comput Biol Med 46:79-89, 2014",
     "acc": 86.7, "v_se": 85.5, "v_ppv": 92.8, "s_se": 79.1, "s_ppv": 36.0, "checked": False},
    {"method": "Mondéjar-Guerra et al. 2019, ensemble of SVMs (morphology + RR)",
     "cite": "Mondéjar-Guerra V, Novo J, Rouco J, Penedo MG, Ortega M. Biomed Signal Process Control 47:41-48, 2019",
     "acc": 94.5, "v_se": 94.7, "v_ppv": 87.9, "s_se": 78.0, "s_ppv": 49.9, "checked": False},
    {"method": "Niu et al. 2020, symbolic representation + multi-perspective CNN",
     "cite": "Niu J, Tang Y, Sun Z, Zhang W. IEEE J Biomed Health Inform 24(5):1321-1332, 2020",
     "acc": 96.4, "v_se": 93.0, "v_ppv": 91.7, "s_se": 76.5, "s_ppv": 56.4, "checked": False},
]


def _stats(values) -> dict:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, "n": len(vals)}


def run(ctx: BenchContext) -> dict:
    from edge_ecg.config import RunConfig, load_config
    from edge_ecg.model.predict import KerasClassifier, evaluate_classifier, load_keras_model
    from edge_ecg.model.train import train_run
    from edge_ecg.records.aami import DS2

    config_path = ROOT / "models" / "config.json"
    base = load_config(config_path) if config_path.is_file() else RunConfig()
    seeds, epochs, records, eval_records = SEEDS, EPOCHS, (), DS2
    if ctx.quick:
        seeds, epochs, records, eval_records = (0,), 1, ("101", "106", "118"), ("100", "232")
    base = dataclasses.replace(
        base,
        train=dataclasses.replace(base.train, epochs=epochs, early_stopping_patience=PATIENCE, qat=False,
                                  threads=min(2, os.cpu_count() or 1),
                                  records=records, val_records=("118",) if ctx.quick else base.train.val_records),
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="edge-ecg-ablation-") as tmp:
        for arch in ARCHS:
            for seed in seeds:
                cfg = dataclasses.replace(base, model=dataclasses.replace(base.model, arch=arch),
                                          train=dataclasses.replace(base.train, seed=seed))
                t0 = time.perf_counter()
                res = train_run(cfg, ctx.mitdb, Path(tmp) / f"{arch}-{seed}", nstdb_dir=ctx.nstdb,
                                progress=False, echo=lambda m: None)
                model = res.run_dir / "model.keras"
                clf = KerasClassifier(load_keras_model(model), cfg, model)
                report, _, _ = evaluate_classifier(clf, ctx.mitdb, eval_records, progress=False)
                g = report.gross
                runs.append({
                    "arch": arch, "seed": seed, "params": res.metrics["params"],
                    "best_epoch": res.metrics["float"]["best_epoch"],
                    "val_macro_f1": res.metrics["float"]["val"]["macro_f1"],
                    "ds2": {"v_se": g["V"]["se"], "v_ppv": g["V"]["ppv"], "s_se": g["S"]["se"],
                            "s_ppv": g["S"]["ppv"], "acc": g["accuracy"], "macro_f1": g["macro_f1"]},
                    "seconds": time.perf_counter() - t0,
                })
    table = {}
    for arch in ARCHS:
        rows = [r for r in runs if r["arch"] == arch]
        table[arch] = {
            "params": rows[0]["params"],
            "val_macro_f1": _stats([r["val_macro_f1"] for r in rows]),
            **{k: _stats([r["ds2"][k] for r in rows]) for k in rows[0]["ds2"]},
        }
    return {"config": "models/config.json" if config_path.is_file() else "built-in defaults",
            "rr_features": list(base.window.rr_features), "epochs": epochs, "patience": PATIENCE, "seeds": list(seeds), "eval_records": list(eval_records),
            "runs": _nan_free(runs), "table": table, "published": PUBLISHED}


def _nan_free(obj):
    if isinstance(obj, dict):
        return {k: _nan_free(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_free(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _ms(s: dict) -> str:
    if s["mean"] is None:
        return "-"
    return f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}"


def _config_source(result: dict) -> str:
    if "config" not in result:  # results written before the source was recorded
        return "the built-in defaults"
    rr = result.get("rr_features") or []
    return f"`{result['config']}`, RR features {', '.join(rr) if rr else 'none'}"


def render(result: dict) -> str:
    lines = [
        f"The shipped model's configuration ({_config_source(result)}) with only `model.arch` changed; "
        f"float models, {result['epochs']} epochs max (early stopping, patience {result['patience']}), no QAT, "
        f"seeds {', '.join(map(str, result['seeds']))}; trained on DS1 (validation records held out), "
        f"scored on {'DS2' if len(result['eval_records']) == 22 else ', '.join(result['eval_records'])}. "
        "Figures in %, mean ± sd over seeds.",
        "",
        "| model | params | val macro-F1 | VEB Se | VEB +P | SVEB Se | SVEB +P | accuracy | macro-F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arch, t in result["table"].items():
        lines.append(f"| ours: {arch} | {t['params']} | {_ms(t['val_macro_f1'])} | {_ms(t['v_se'])} | "
                     f"{_ms(t['v_ppv'])} | {_ms(t['s_se'])} | {_ms(t['s_ppv'])} | {_ms(t['acc'])} | "
                     f"{_ms(t['macro_f1'])} |")
    for p in result["published"]:
        mark = "" if p.get("checked") else " †"
        lines.append(f"| {p['method']}{mark} [{p['cite']}] | - | - | {p['v_se']} | {p['v_ppv']} | {p['s_se']} | "
                     f"{p['s_ppv']} | {p['acc']} | - |")
    lines.append("\nPublished rows are the figures each paper reports for DS2 (their own features, training "
                 "protocol and sometimes a different class mapping): context, not a like-for-like comparison.")
    if any(not p.get("checked") for p in result["published"]):
        lines.append("† Figures as recalled from each paper's DS2 table when this table was written; they were "
                     "not re-checked against the PDFs here. Verify before quoting them.")
    return "\n".join(lines)
