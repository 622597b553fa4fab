#!/usr/bin/env python
"""Choose the on-device adaptation design (issue 17) by a rule fixed before it is run.

    python tools/adapt_select.py                      # svdb (40 records), today's int8 model
    python tools/adapt_select.py --model other.tflite --out tools/results/adapt_select_<name>.json
    python tools/adapt_select.py --folds tools/results/cv8_runs/rrpath_svdb   # round 2 (below)

The rule (committed before the comparison was first run; not to be changed after it):

- **Selection set**: the 40 svdb records in ``<data>/svdb`` (``RECORDS``), patients the
  shipped model (trained on MIT-BIH DS1 only) has never seen. Lead ``ECG1``, resampled from
  128 Hz to the model's rate by the offline builder (:func:`edge_ecg.beats.dataset.record_beats`),
  every reference beat classified at its reference position by the int8 model through
  ``edge_ecg.runtime`` (LiteRT). DS2 is never read by this tool.
- **Each record is one wearer**: the adapter starts empty at every record and labels each
  beat causally (state learnt from earlier beats only, :func:`edge_ecg.runtime.adapt.adapt_records`).
  No label is used (unsupervised).
- **Candidates**: ``cluster`` and ``prototype``, each with the :class:`edge_ecg.config.AdaptConfig`
  defaults as committed with this file (morphology -0.1 s to +0.25 s every 2nd sample;
  cluster: 16 groups, join at correlation >= 0.90 and amplitude within x1.6, timing bins at
  pre_rr_ratio 0.9 / 1.1, >= 8 votes, weight 0.6 n / (n + 20), memories 200 votes / 100
  beats; prototype: support at top probability >= 0.9, >= 5 beats, timing x2.0,
  temperature 0.1, weight 0.5 ramped over 100 beats). The baseline is no adaptation.
- **Score**: the mean of the gross (EC57, summed over the 40 records) SVEB F1 and VEB F1,
  in points.
- **Winner**: the candidate with the higher score (a tie goes to ``cluster``, listed first).
  It becomes what ``--adapt`` runs.
- **On by default** (``edge-ecg stream`` and ``evaluate`` adapt unless ``--no-adapt``) only
  if the winner, against no adaptation: (1) scores at least 1.0 point higher; (2) loses at
  most 0.5 points of gross accuracy; and (3) lowers S or V F1 by more than 5 points in no
  more records than it raises one of them by more than 5 points (per record, a class
  counts only where the record has at least 10 reference beats of it). Otherwise
  adaptation stays off by default and the result says so.

The result (``tools/results/adapt_select.json``) holds every candidate's gross figures,
per-record S and V F1 with and without, and the decision.

Round 2 (``--folds``; out of fold on the training databases)
------------------------------------------------------------

Written after round 1's result (above: ``prototype``, on by default) and after the new
shipped model was chosen (commit 2380a2f: trained on DS1 + the 40 svdb records, so svdb is no
longer unseen by it), and committed before this round was run. Everything not named here is
round 1's rule, unchanged.

- **Selection set**: all 62 records of MIT-BIH DS1 (22) and svdb:EVEN (the 40 records in
  ``<data>/svdb``), each record classified by the int8 conversion
  (``<folds>/fold<k>/model_int8.tflite``) of the round-8 patient-wise cross-validation fold
  model (``tools/results/cv8_runs/rrpath_svdb/fold<k>``, the shipped recipe) that did NOT
  train on it: fold ``k`` for the records of ``tools/cv_select.py``'s
  ``held_out(k, svdb=True)`` (out of fold; the record's patient is unseen by its model,
  whose early stopping did read it as validation). Lead ``MLII`` for mitdb and ``ECG1`` for
  svdb, every reference beat at its reference position, as in round 1. DS2 is never read.
- **Each record is one wearer**, the adapter starting empty at every record, causal,
  unsupervised (as round 1). The beats and probabilities of all 62 records are pooled, each
  record's from its own out-of-fold model.
- **Candidates**: ``cluster`` and ``prototype`` with the :class:`edge_ecg.config.AdaptConfig`
  defaults as committed (round 1's numbers above); baseline no adaptation.
- **Score, winner, on-by-default criteria**: round 1's, numbers unchanged (mean of gross
  SVEB F1 and VEB F1; tie to ``cluster``; >= 1.0 point gain, <= 0.5 point accuracy loss,
  records lowered by > 5 points <= records raised by > 5 points, a class counting in a record
  only with >= 10 reference beats of it). Gross figures are summed over all 62 records; the
  same figures per database (DS1, svdb) are reported for information only and decide nothing.
- If the winner or the on-by-default decision differs from round 1's, what ``--adapt`` runs
  by default (``AdaptConfig.design``, ``ADAPT_BY_DEFAULT``) follows round 2.

The result (``tools/results/adapt_select_oof.json``) holds every candidate's gross figures
overall and per database, per-record S and V F1, the decision and each record's fold.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The rule's fixed numbers (see the module docstring).
CANDIDATES = ("cluster", "prototype")
MIN_GAIN_POINTS = 1.0
MAX_ACCURACY_LOSS_POINTS = 0.5
RECORD_CHANGE_POINTS = 5.0
MIN_CLASS_BEATS = 10


def svdb_records(svdb: Path) -> list[str]:
    """The record names listed in ``svdb/RECORDS``."""
    return [r.strip() for r in (svdb / "RECORDS").read_text().split() if r.strip()]


def record_set(clf, db_dir: Path, records, lead: str | None = None, progress: bool = False):
    """``(beats, raw probs (n, 5), excluded)`` of ``clf`` on ``records`` at the reference beats.

    ``lead`` overrides the model's lead (``ECG1`` for svdb); each record is its own stream.
    """
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.model.predict import predict_records
    from edge_ecg.records.load import vf_episodes

    window = clf.window if lead is None else dataclasses.replace(clf.window, lead=lead)
    beats = build_beatset(db_dir, list(records), window, progress=progress)
    probs = predict_records(clf, beats)
    return beats, probs, vf_episodes(db_dir, records, window.fs)


def figures(report) -> dict:
    """Gross SVEB/VEB Se, +P, F1, accuracy and macro-F1 of a Report, in points (2 decimals)."""
    g = report.gross

    def pts(x):
        return None if x is None or x != x else round(100.0 * float(x), 2)

    out = {f"{name}_{k}": pts(g[c][k]) for name, c in (("sveb", "S"), ("veb", "V")) for k in ("se", "ppv", "f1")}
    out.update(accuracy=pts(g["accuracy"]), macro_f1=pts(g["macro_f1"]))
    both = (out["sveb_f1"], out["veb_f1"])
    out["score"] = None if None in both else round(sum(both) / 2.0, 2)
    return out


def per_record_f1(report) -> dict:
    """Record -> {"S": F1 points or None, "V": ...}, None where the record has fewer than
    :data:`MIN_CLASS_BEATS` reference beats of the class."""
    from edge_ecg.evaluate.ec57 import MATRIX_LABELS

    out = {}
    for rec in report.records:
        row = {}
        for c in ("S", "V"):
            n_ref = int(rec.matrix[MATRIX_LABELS.index(c), :].sum())
            f1 = rec.stats[c]["f1"]
            row[c] = None if n_ref < MIN_CLASS_BEATS or f1 != f1 else round(100.0 * float(f1), 2)
        out[rec.name] = row
    return out


def record_changes(base: dict, adapted: dict, threshold: float = RECORD_CHANGE_POINTS) -> dict:
    """How per-record S/V F1 moves from ``base`` to ``adapted`` (both :func:`per_record_f1`):
    records lowered / raised by more than ``threshold`` points in S or V, and each drop."""
    lowered, raised, drops = [], [], []
    for name, b in base.items():
        a = adapted[name]
        down = up = False
        for c in ("S", "V"):
            if b[c] is None:
                continue
            d = a[c] - b[c]
            if d < 0:
                drops.append({"record": name, "class": c, "points": round(d, 2)})
            down |= d < -threshold
            up |= d > threshold
        if down:
            lowered.append(name)
        if up:
            raised.append(name)
    drops.sort(key=lambda r: r["points"])
    return {"lowered_gt_threshold": lowered, "raised_gt_threshold": raised, "threshold_points": threshold,
            "n_lowered_any": len({d["record"] for d in drops}), "drops": drops}


def evaluate_adaptation(beats, probs, excluded, clf, designs, labels=None, start_s: float = 0.0) -> dict:
    """Reports of no adaptation and of each design in ``designs`` (name -> AdaptConfig or
    None for none), each record its own wearer. ``labels``: supervised clinic mode (class
    indices, -1 none); ``start_s``: each record's first seconds are not scored."""
    from edge_ecg.evaluate.report import score_predictions
    from edge_ecg.runtime.adapt import adapt_records, make_adapter

    reports, timing = {}, {}
    for name, config in designs.items():
        t0 = time.perf_counter()
        if config is None:
            p = probs
        else:
            p, _ = adapt_records(make_adapter(clf, config), beats.record, beats.X, beats.rr, probs, labels)
        timing[name] = (time.perf_counter() - t0) / max(len(beats), 1) * 1e6
        reports[name] = score_predictions(beats.record, beats.sample, beats.y, p, fs=beats.window.fs,
                                          excluded=excluded, start_s=start_s, title=name)
    return {"reports": reports, "adapt_us_per_beat": timing}


def decide(results: dict) -> dict:
    """Apply the rule to ``{"none": figures, design: figures, ...}`` and the record changes."""
    scores = {d: results[d]["figures"]["score"] for d in CANDIDATES}
    winner = max(CANDIDATES, key=lambda d: (scores[d], -CANDIDATES.index(d)))
    base = results["none"]["figures"]
    win = results[winner]
    gain = round(win["figures"]["score"] - base["score"], 2)
    acc_change = round(win["figures"]["accuracy"] - base["accuracy"], 2)
    ch = win["record_changes"]
    tests = {
        "gain_points": gain, "gain_ok": gain >= MIN_GAIN_POINTS,
        "accuracy_change_points": acc_change, "accuracy_ok": acc_change >= -MAX_ACCURACY_LOSS_POINTS,
        "records_lowered": len(ch["lowered_gt_threshold"]), "records_raised": len(ch["raised_gt_threshold"]),
    }
    tests["records_ok"] = tests["records_lowered"] <= tests["records_raised"]
    on = tests["gain_ok"] and tests["accuracy_ok"] and tests["records_ok"]
    return {"scores": scores, "winner": winner, "on_by_default": bool(on), **tests}


def run_selection(model: Path, svdb: Path, progress: bool = True) -> dict:
    """The whole comparison on svdb (see the module docstring); a JSON-able result."""
    from edge_ecg.config import AdaptConfig, to_dict
    from edge_ecg.runtime.adapt import model_key
    from edge_ecg.stream.model import load_classifier

    clf = load_classifier(model, threads=1)
    records = svdb_records(svdb)
    t0 = time.perf_counter()
    beats, probs, excluded = record_set(clf, svdb, records, lead="ECG1", progress=progress)
    infer_s = time.perf_counter() - t0
    designs = {"none": None, **{d: AdaptConfig(design=d) for d in CANDIDATES}}
    ev = evaluate_adaptation(beats, probs, excluded, clf, designs)
    base_rec = per_record_f1(ev["reports"]["none"])
    results = {}
    for name, report in ev["reports"].items():
        rec = per_record_f1(report)
        results[name] = {"figures": figures(report), "per_record_f1": rec,
                         "adapt_us_per_beat": round(ev["adapt_us_per_beat"][name], 1)}
        if name != "none":
            results[name]["record_changes"] = record_changes(base_rec, rec)
            results[name]["config"] = to_dict(designs[name])
    return {"model": str(model), "model_key": model_key(model), "selection_set": f"svdb {len(records)} records",
            "records": records, "beats": len(beats), "class_counts": beats.class_counts(),
            "inference_s": round(infer_s, 1), "results": results, "decision": decide(results)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "edge_ecg_int8.tflite")
    parser.add_argument("--data-root", type=Path,
                        default=Path(os.environ.get("EDGE_ECG_DATA") or ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "adapt_select.json")
    args = parser.parse_args(argv)
    result = run_selection(args.model, args.data_root / "svdb")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    d = result["decision"]
    for name, r in result["results"].items():
        f = r["figures"]
        print(f"{name:>10}: score {f['score']:.2f}  SVEB Se/+P/F1 {f['sveb_se']}/{f['sveb_ppv']}/{f['sveb_f1']}  "
              f"VEB {f['veb_se']}/{f['veb_ppv']}/{f['veb_f1']}  acc {f['accuracy']}")
    print(f"winner {d['winner']}; on by default: {d['on_by_default']} ({json.dumps(d)})")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
