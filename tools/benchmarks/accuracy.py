"""Accuracy of the committed model on DS2 (inter-patient), as AAMI EC57 scores it.

Measures the int8 .tflite in ``models/`` (or ``--model``) and, when present beside it, the
Keras model it was converted from (``model_qat.keras``: QAT-trained, batch norm folded, float), on every annotated beat of de Chazal's DS2 at the reference
beat positions; without ``--model`` also the DS1-only model kept in ``models/ds1_only/`` (the
row comparable with published inter-patient work), in the same run. Reports gross VEB/SVEB Se and +P, accuracy and macro-F1 (N, S, V), the same
without record 232, and the issue's targets with whether each is met. ``--quick`` scores three
DS2 records only (for the test suite).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmarks import ROOT, BenchContext, ds1_only_model, model_label, previous_model, shipped_model

NAME = "accuracy"
TITLE = "Accuracy on DS2 (inter-patient, reference beat positions)"

#: Targets from the issue (fractions): statistic path -> minimum.
TARGETS = {
    ("V", "se"): 0.95, ("V", "ppv"): 0.95,
    ("S", "se"): 0.85, ("S", "ppv"): 0.75,
    ("accuracy", ""): 0.97,
}
QUICK_RECORDS = ("100", "232", "233")  # quick mode checks the plumbing; it never publishes
#: Which model a result row is: the shipped one, the one shipped before it, the DS1-only one.
ROLES = {"shipped": "shipped", "previous": "previously shipped", "ds1_only": "DS1-only"}
#: Row order of the tables (the results store keys sorted).
ORDER = ("int8", "keras", "previous_int8", "previous_keras", "ds1_only_int8", "ds1_only_keras")


def _role(label: str) -> str:
    """``"previous_int8"`` -> ``"previously shipped"``; the shipped model's rows are ``int8`` / ``keras``."""
    return ROLES[label.rsplit("_", 1)[0] if "_" in label else "shipped"]


def _form(label: str) -> str:
    """``"previous_int8"`` -> ``"int8"``; ``"keras"`` -> ``"keras"``."""
    return "int8" if label.endswith("int8") else "keras"


def _model_files(ctx: BenchContext) -> tuple[Path, Path | None]:
    """``(int8 .tflite, its Keras source or None)``: the model every section measures."""
    return _with_source(shipped_model(ctx))


def _with_source(tflite: Path) -> tuple[Path, Path | None]:
    from edge_ecg.errors import ModelError
    from edge_ecg.model.run import find_model_file

    try:
        keras, _ = find_model_file(tflite.parent)
    except ModelError:  # a .tflite alone
        keras = None
    return tflite, keras


def _summary(report) -> dict:
    g = report.gross
    out = {
        "V": {k: g["V"][k] for k in ("se", "ppv", "fpr", "f1")},
        "S": {k: g["S"][k] for k in ("se", "ppv", "fpr", "f1")},
        "F": {k: g["F"][k] for k in ("se", "ppv", "f1")},
        "accuracy": g["accuracy"], "macro_f1": g["macro_f1"], "n_beats": g["n_ref"],
    }
    if "232" in report.names:
        w = report.without("232").gross
        out["without_232"] = {"S": {k: w["S"][k] for k in ("se", "ppv", "f1")}, "macro_f1": w["macro_f1"]}
    return out


def s_in_runs(beats, probs) -> dict:
    """S beats inside runs and by run length (:func:`edge_ecg.evaluate.in_run_counts`), labelled S
    or not, with and without record 232: ``{"all" | "without_232": {kind: {"n", "labelled_s", "se"}}}``."""
    from edge_ecg.config import CLASSES
    from edge_ecg.evaluate import in_run_counts
    from edge_ecg.evaluate.runs import add_counts, sensitivity

    labels = np.array(CLASSES)[np.argmax(probs, axis=1)]
    classes = np.array(CLASSES)[beats.y]
    per_record = {}
    for name in dict.fromkeys(beats.record):
        m = beats.record == name
        per_record[str(name)] = in_run_counts(beats.sample[m], classes[m], labels[m], beats.window.fs)

    def table(names):
        total = add_counts([per_record[n] for n in names])
        return {kind: {"n": n, "labelled_s": k, "se": sensitivity((n, k))} for kind, (n, k) in total.items()}

    return {"all": table(per_record), "without_232": table([n for n in per_record if n != "232"])}


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def run(ctx: BenchContext) -> dict:
    from edge_ecg.evaluate.classify import evaluate_classifier
    from edge_ecg.model.run import load_run_classifier
    from edge_ecg.records.aami import DS2

    records = QUICK_RECORDS if ctx.quick else DS2
    tflite, keras = _model_files(ctx)
    result: dict = {"records": list(records), "models": {}}
    measured = [("int8", tflite, model_label(tflite)), ("keras", keras, model_label(tflite))]
    for prefix, kept in (("previous", previous_model(ctx)), ("ds1_only", ds1_only_model(ctx))):
        if kept is not None:
            measured += [(f"{prefix}_int8", kept, model_label(kept)),
                         (f"{prefix}_keras", _with_source(kept)[1], model_label(kept))]
    for label, path, trained_on in measured:
        if path is None:
            continue
        clf = load_run_classifier(path)
        report, probs, beats = evaluate_classifier(clf, ctx.mitdb, records, progress=False,
                                                   title=f"{label}: {path.name}")
        png = ctx.out_dir / f"accuracy_confusion_{label}.png"
        report.plot_confusion(png, title=f"DS2, {label} model ({path.name})")
        result["models"][label] = {
            "role": _role(label),
            "trained_on": trained_on,
            "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
            "bytes": path.stat().st_size,
            "gross": _summary(report),
            "per_record": {name: {"V_se": s["V"]["se"], "V_ppv": s["V"]["ppv"], "S_se": s["S"]["se"],
                                  "S_ppv": s["S"]["ppv"], "accuracy": s["accuracy"], "n": s["n_ref"]}
                           for name, s in report.per_record.items()},
            "s_in_runs": s_in_runs(beats, probs),
            "matrix": report.matrix.tolist(),
            "plot": png.name,
        }
    int8 = result["models"]["int8"]["gross"]
    result["targets"] = [
        {"statistic": f"{a} {b}".strip(), "target": t,
         "measured": int8[a][b] if b else int8[a],
         "met": (int8[a][b] if b else int8[a]) is not None and (int8[a][b] if b else int8[a]) >= t}
        for (a, b), t in TARGETS.items()
    ]
    if "keras" in result["models"]:
        result["int8_minus_keras_macro_f1"] = int8["macro_f1"] - result["models"]["keras"]["gross"]["macro_f1"]
    return _clean(result)


def _p(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def render(result: dict) -> str:
    ordered = sorted(result["models"].items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 9)
    lines = [
        f"Records: {'DS2 (all 22)' if len(result['records']) == 22 else ', '.join(result['records'])}; "
        "every annotated beat at its reference position; de Chazal's AAMI mapping; figures in %.",
        "",
        "| model | trained on | form | file | size | VEB Se | VEB +P | SVEB Se | SVEB +P | F Se | accuracy | macro-F1 (N,S,V) | SVEB Se / +P without 232 |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, m in ordered:
        g = m["gross"]
        w = g.get("without_232", {}).get("S", {})
        lines.append(
            f"| {m.get('role', '')} | {m.get('trained_on', '')} | {_form(label)} | `{m['file']}` | {m['bytes'] / 1024:.1f} KB | {_p(g['V']['se'])} | {_p(g['V']['ppv'])} | "
            f"{_p(g['S']['se'])} | {_p(g['S']['ppv'])} | {_p(g['F']['se'])} | {_p(g['accuracy'])} | "
            f"{_p(g['macro_f1'])} | {_p(w.get('se'))} / {_p(w.get('ppv'))} |"
        )
    lines += ["", f"Targets (the shipped int8 model, {result['models']['int8'].get('trained_on', '')}):", "", "| statistic | target | measured | met |", "|---|---:|---:|:-:|"]
    for t in result["targets"]:
        lines.append(f"| {t['statistic']} | {_p(t['target'])} | {_p(t['measured'])} | {'yes' if t['met'] else '**no**'} |")
    if "int8_minus_keras_macro_f1" in result:
        lines.append(f"\nint8 minus its Keras source, macro-F1: {100 * result['int8_minus_keras_macro_f1']:+.2f} "
                     "points (target: within 0.5).")
    with_runs = any(m.get("s_in_runs") for m in result["models"].values())
    lines += [] if not with_runs else ["", "S beats inside runs (issue 28): the share of DS2's reference S beats of each kind labelled S, % "
              "(in a run: reference `prev_rr_ratio` < 0.85; run length counted in consecutive S beats; "
              "number of beats in brackets), all records / without 232:", "",
              "| model | in a run | not in a run | alone | runs of 2-9 | runs of 10+ |", "|---|---:|---:|---:|---:|---:|"]
    for label, m in ordered:
        runs = m.get("s_in_runs")
        if not runs:
            continue
        cells = [f"{_p(runs['all'][k]['se'])} ({runs['all'][k]['n']}) / {_p(runs['without_232'][k]['se'])} "
                 f"({runs['without_232'][k]['n']})" for k in ("in_run", "not_in_run", "alone", "run_2_9", "run_10_plus")]
        lines.append(f"| {m.get('role', label)}, {_form(label)} | " + " | ".join(cells) + " |")
    lines += ["", "Per record (int8): V Se / +P, S Se / +P, accuracy", "",
              "| record | beats | V Se | V +P | S Se | S +P | acc |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["models"]["int8"]["per_record"].items():
        lines.append(f"| {name} | {r['n']} | {_p(r['V_se'])} | {_p(r['V_ppv'])} | {_p(r['S_se'])} | "
                     f"{_p(r['S_ppv'])} | {_p(r['accuracy'])} |")
    lines.append(f"\n![confusion matrix, int8](tools/results/{result['models']['int8']['plot']})")
    return "\n".join(lines)


def headline(result: dict) -> list[tuple[str, str, str]]:
    """README rows: the int8 model's gross DS2 figures against issue 3's targets."""
    g = result["models"]["int8"]["gross"]
    w = g["without_232"]["S"]

    def p(x):
        return f"{100 * x:.1f}"

    rows = [
        (f"DS2 (inter-patient), shipped int8 model ({result['models']['int8'].get('trained_on', '')}), "
         "reference beats: VEB Se / +P", f"{p(g['V']['se'])} / {p(g['V']['ppv'])} %",
         ">= 95 / 95 %"),
        ("DS2 SVEB Se / +P (without record 232)", f"{p(g['S']['se'])} / {p(g['S']['ppv'])} % "
         f"({p(w['se'])} / {p(w['ppv'])} %)", ">= 85 / 75 %"),
        ("DS2 gross accuracy; macro-F1 (N, S, V)", f"{p(g['accuracy'])} %; {p(g['macro_f1'])} %", ">= 97 %"),
        ("int8 minus its Keras source, macro-F1", f"{100 * result['int8_minus_keras_macro_f1']:+.2f} points",
         ">= -0.5 points"),
    ]
    for key in ("previous_int8", "ds1_only_int8"):  # the model it replaced; the one comparable with DS1-only work
        ref = result["models"].get(key)
        if ref is None:
            continue
        r = ref["gross"]
        rows.append((f"the same, {_role(key)} model, trained on {ref.get('trained_on', 'DS1 only')} "
                     f"(`{ref['file']}`): VEB Se / +P; SVEB Se / +P; accuracy",
                     f"{p(r['V']['se'])} / {p(r['V']['ppv'])}; {p(r['S']['se'])} / {p(r['S']['ppv'])}; "
                     f"{p(r['accuracy'])} %", "for comparison"))
    return rows
