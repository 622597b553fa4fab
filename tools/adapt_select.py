#!/usr/bin/env python
"""Choose the on-device adaptation design (issue 17) by a rule fixed before it is run.

    python tools/adapt_select.py                      # svdb (40 records), today's int8 model
    python tools/adapt_select.py --model other.tflite --out tools/results/adapt_select_<name>.json
    python tools/adapt_select.py --folds tools/results/cv8_runs/rrpath_svdb   # round 2 (below)
    python tools/adapt_select.py --folds tools/results/cv12_runs/wide_runs \
        --out tools/results/adapt_select_oof_wide_runs.json                    # round 3 (below)

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

Round 3 (``--folds tools/results/cv12_runs/wide_runs --out tools/results/adapt_select_oof_wide_runs.json``)
-----------------------------------------------------------------------------------------------------------

Written after round 12 of ``tools/cv_select.py`` chose ``wide_runs`` (issue 28) and before this
round was run: round 2's rule, every word and number unchanged, on the int8 conversions
(``edge-ecg convert``'s defaults, ``--no-compare --no-micro``) of ``wide_runs``'s seed-0 fold
models (``tools/results/cv12_runs/wide_runs/fold<k>``, the shipped recipe; fold 1 is the shipped
model's run). What ``--adapt`` runs by default follows round 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import data_root  # the one data-location rule, with this checkout's ../shared/data

ROOT = Path(__file__).resolve().parents[1]

#: The rule's fixed numbers (see the module docstring).
CANDIDATES = ("cluster", "prototype")
MIN_GAIN_POINTS = 1.0
MAX_ACCURACY_LOSS_POINTS = 0.5
RECORD_CHANGE_POINTS = 5.0
MIN_CLASS_BEATS = 10

#: The fold models' file in each ``fold<k>/`` of ``--folds`` (rounds 2 and 3), and each database's lead.
FOLD_MODEL = "model_int8.tflite"
LEADS = {"mitdb": "MLII", "svdb": "ECG1"}


def svdb_records(svdb: Path) -> list[str]:
    """The record names listed in ``svdb/RECORDS``."""
    return [r.strip() for r in (svdb / "RECORDS").read_text().split() if r.strip()]


def record_set(clf, db_dir: Path, records, lead: str | None = None, progress: bool = False, prefix: str = ""):
    """``(beats, raw probs (n, 5), excluded)`` of ``clf`` on ``records`` at the reference beats.

    ``lead`` overrides the model's lead (``ECG1`` for svdb); each record is its own stream.
    ``prefix`` (e.g. ``"svdb/"``) goes before every record name (beats and excluded).
    """
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.evaluate.classify import predict_records
    from edge_ecg.records.load import vf_episodes

    window = clf.window if lead is None else dataclasses.replace(clf.window, lead=lead)
    beats = build_beatset(db_dir, list(records), window, progress=progress, prefix=prefix)
    probs = predict_records(clf, beats)
    excluded = {prefix + name: v for name, v in vf_episodes(db_dir, records, window.fs).items()}
    return beats, probs, excluded


def fold_assignment(ids, folds_dir: Path | None = None) -> dict[str, int]:
    """Record id (``"mitdb/101"``, ``"svdb/800"``) -> the fold ``k`` (1-based) whose model did not
    train on it: the fold of ``tools/cv_select.py`` whose ``held_out(k - 1, svdb=True)`` holds it.

    With ``folds_dir``, each fold's ``fold<k>/metrics.json`` (when there) is checked too: a record
    in its fold model's ``train_records`` is an error. A record in no fold is an error.
    """
    import cv_select  # tools/cv_select.py

    fold_of = {}
    for k in range(len(cv_select.FOLDS)):
        for r in cv_select.held_out(k, svdb=True):
            fold_of[r if "/" in r else f"mitdb/{r}"] = k + 1
    missing = [r for r in ids if r not in fold_of]
    if missing:
        raise ValueError(f"records in no cross-validation fold of tools/cv_select.py: {', '.join(missing)}")
    out = {r: fold_of[r] for r in ids}
    if folds_dir is not None:
        for k in sorted(set(out.values())):
            metrics = Path(folds_dir) / f"fold{k}" / "metrics.json"
            if metrics.is_file():
                trained = set(json.loads(metrics.read_text()).get("train_records") or ())
                seen = [r for r, f in out.items() if f == k and r in trained]
                if seen:
                    raise ValueError(f"{metrics}: fold {k}'s model trained on {', '.join(seen)}; not out of fold")
    return out


def load_fold_models(folds_dir: Path, folds) -> dict:
    """Fold ``k`` -> the int8 classifier ``<folds_dir>/fold<k>/model_int8.tflite`` (LiteRT, 1 thread)."""
    from edge_ecg.stream.classifier_files import load_classifier

    models = {}
    for k in sorted(set(folds)):
        path = Path(folds_dir) / f"fold{k}" / FOLD_MODEL
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no int8 fold model (make it: python -m edge_ecg convert --model {path.parent} --int8 "
                f"--no-compare --no-micro --out {path})")
        models[k] = load_classifier(path, threads=1)
    return models


def oof_record_set(sources: dict, models: dict, assignment: dict, progress: bool = False):
    """Out of fold: each record classified by its own fold's model, all pooled.

    ``sources`` database name -> ``(folder, record names)``; ``models`` fold -> classifier;
    ``assignment`` record id ``"<db>/<name>"`` -> fold (:func:`fold_assignment`). Each database
    is read on its :data:`LEADS` lead. Returns ``(beats, probs (n, 5), excluded, classifier of
    each record id)``, records in the order of ``sources``, beat names ``"<db>/<name>"``.
    """
    from edge_ecg.beats.dataset import BeatSet

    order, parts, excluded, clf_of = [], [], {}, {}
    for db, (folder, names) in sources.items():
        order += [f"{db}/{n}" for n in names]
        for k, clf in models.items():
            mine = [n for n in names if assignment[f"{db}/{n}"] == k]
            if not mine:
                continue
            beats, probs, exc = record_set(clf, folder, mine, lead=LEADS.get(db), progress=progress,
                                           prefix=f"{db}/")
            parts.append((beats, probs))
            excluded.update(exc)
            clf_of.update({f"{db}/{n}": clf for n in mine})
    if len({p[0].window.length for p in parts}) > 1:
        raise ValueError("the fold models' windows differ; they cannot be pooled")
    beats = BeatSet.concatenate([p[0] for p in parts])
    probs = np.concatenate([p[1] for p in parts])
    rank = {r: i for i, r in enumerate(order)}
    idx = np.argsort([rank[r] for r in beats.record.tolist()], kind="stable")
    return beats.subset(idx), probs[idx], excluded, clf_of


def adapt_by_model(clf, beats, probs, config, labels=None):
    """:func:`edge_ecg.runtime.adapt.adapt_records` of ``beats`` with ``config``; ``clf`` one
    classifier, or record name -> classifier (each record adapted with its own model's adapter).
    Returns ``(probs (n, 5), adapted (n,) bool)``."""
    from edge_ecg.runtime.adapt import adapt_records, make_adapter

    if not isinstance(clf, dict):
        return adapt_records(make_adapter(clf, config), beats.record, beats.X, beats.rr, probs, labels)
    out = np.asarray(probs, dtype=np.float32).copy()
    flags = np.zeros(len(out), dtype=bool)
    groups: dict[int, tuple] = {}
    for name in dict.fromkeys(beats.record.tolist()):
        groups.setdefault(id(clf[name]), (clf[name], []))[1].append(name)
    for model, names in groups.values():
        sel = np.isin(beats.record, names)
        out[sel], flags[sel] = adapt_records(make_adapter(model, config), beats.record[sel], beats.X[sel],
                                             beats.rr[sel], out[sel], None if labels is None else labels[sel])
    return out, flags


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
    None for none), each record its own wearer. ``clf``: one classifier, or record name ->
    classifier (out of fold). ``labels``: supervised clinic mode (class indices, -1 none);
    ``start_s``: each record's first seconds are not scored."""
    from edge_ecg.evaluate.report import score_predictions

    reports, timing = {}, {}
    for name, config in designs.items():
        t0 = time.perf_counter()
        if config is None:
            p = probs
        else:
            p, _ = adapt_by_model(clf, beats, probs, config, labels)
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


def summarise(ev: dict, designs: dict, databases=()) -> dict:
    """Per design of :func:`evaluate_adaptation`'s result ``ev``: gross figures, per-record S/V F1,
    time per beat, and (adapted designs) record changes and configuration. ``databases``: also
    the figures of each database's records (names ``"<db>/..."``), for information."""
    from edge_ecg.config import to_dict
    from edge_ecg.evaluate import Report

    base_rec = per_record_f1(ev["reports"]["none"])
    results = {}
    for name, report in ev["reports"].items():
        rec = per_record_f1(report)
        results[name] = {"figures": figures(report), "per_record_f1": rec,
                         "adapt_us_per_beat": round(ev["adapt_us_per_beat"][name], 1)}
        if databases:
            results[name]["per_database"] = {
                db: figures(Report([r for r in report.records if r.name.startswith(f"{db}/")])) for db in databases}
        if name != "none":
            results[name]["record_changes"] = record_changes(base_rec, rec)
            results[name]["config"] = to_dict(designs[name])
    return results


def run_selection(model: Path, svdb: Path, progress: bool = True) -> dict:
    """Round 1's comparison on svdb (see the module docstring); a JSON-able result."""
    from edge_ecg.config import AdaptConfig
    from edge_ecg.runtime.adapt import model_key
    from edge_ecg.stream.classifier_files import load_classifier

    clf = load_classifier(model, threads=1)
    records = svdb_records(svdb)
    t0 = time.perf_counter()
    beats, probs, excluded = record_set(clf, svdb, records, lead="ECG1", progress=progress)
    infer_s = time.perf_counter() - t0
    designs = {"none": None, **{d: AdaptConfig(design=d) for d in CANDIDATES}}
    results = summarise(evaluate_adaptation(beats, probs, excluded, clf, designs), designs)
    return {"model": str(model), "model_key": model_key(model), "selection_set": f"svdb {len(records)} records",
            "records": records, "beats": len(beats), "class_counts": beats.class_counts(),
            "inference_s": round(infer_s, 1), "results": results, "decision": decide(results)}


def run_oof_selection(folds_dir: Path, data_root: Path, sources: dict | None = None, progress: bool = True,
                      models: dict | None = None) -> dict:
    """Round 2's comparison (see the module docstring): DS1 and svdb, out of fold; JSON-able.

    ``sources`` database -> ``(folder, records)`` (default: mitdb DS1 and every svdb record);
    ``models`` fold -> classifier (default: :func:`load_fold_models` of ``folds_dir``).
    """
    from edge_ecg.config import AdaptConfig
    from edge_ecg.records.aami import DS1
    from edge_ecg.runtime.adapt import model_key

    if sources is None:
        sources = {"mitdb": (data_root / "mitdb", list(DS1)), "svdb": (data_root / "svdb", svdb_records(data_root / "svdb"))}
    ids = [f"{db}/{n}" for db, (_, names) in sources.items() for n in names]
    assignment = fold_assignment(ids, folds_dir)
    if models is None:
        models = load_fold_models(folds_dir, assignment.values())
    t0 = time.perf_counter()
    beats, probs, excluded, clf_of = oof_record_set(sources, models, assignment, progress=progress)
    infer_s = time.perf_counter() - t0
    designs = {"none": None, **{d: AdaptConfig(design=d) for d in CANDIDATES}}
    t0 = time.perf_counter()
    results = summarise(evaluate_adaptation(beats, probs, excluded, clf_of, designs), designs, tuple(sources))
    keys = {k: model_key(m.path) for k, m in models.items() if getattr(m, "path", None) is not None}
    counts = {db: beats.subset(np.char.startswith(beats.record.astype(str), f"{db}/")).class_counts()
              for db in sources}
    return {"round": 2, "folds": str(folds_dir), "fold_model_keys": {f"fold{k}": v for k, v in keys.items()},
            "selection_set": " + ".join(f"{db} {len(n)} records" for db, (_, n) in sources.items())
            + ", each by the fold model that did not train on it (out of fold)",
            "leads": {db: LEADS.get(db) for db in sources}, "records": ids, "record_fold": assignment,
            "beats": len(beats), "class_counts": beats.class_counts(), "class_counts_per_database": counts,
            "inference_s": round(infer_s, 1), "adapt_and_score_s": round(time.perf_counter() - t0, 1),
            "results": results, "decision": decide(results)}


def print_result(result: dict, out: Path) -> None:
    """The figures and decision, one line each."""
    d = result["decision"]
    for name, r in result["results"].items():
        f = r["figures"]
        print(f"{name:>10}: score {f['score']:.2f}  SVEB Se/+P/F1 {f['sveb_se']}/{f['sveb_ppv']}/{f['sveb_f1']}  "
              f"VEB {f['veb_se']}/{f['veb_ppv']}/{f['veb_f1']}  acc {f['accuracy']}")
        for db, g in r.get("per_database", {}).items():
            print(f"{'':>12}{db}: score {g['score']}  SVEB F1 {g['sveb_f1']}  VEB F1 {g['veb_f1']}  acc {g['accuracy']}")
    print(f"winner {d['winner']}; on by default: {d['on_by_default']} ({json.dumps(d)})")
    print(f"-> {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", type=Path, default=ROOT / "models" / "edge_ecg_int8.tflite",
                       help="round 1: the int8 model scored on svdb")
    which.add_argument("--folds", type=Path, default=None,
                       help=f"round 2: the fold models' folder (fold<k>/{FOLD_MODEL}), e.g. "
                            "tools/results/cv8_runs/rrpath_svdb; DS1 + svdb out of fold")
    parser.add_argument("--data-root", type=Path,
                        default=None, help="folder holding mitdb/ and svdb/ [default: $EDGE_ECG_DATA, else ../shared/data]")
    parser.add_argument("--out", type=Path, default=None,
                        help="result JSON [default: tools/results/adapt_select.json, with --folds adapt_select_oof.json]")
    args = parser.parse_args(argv)
    args.data_root = data_root(args.data_root)
    out = args.out or ROOT / "tools" / "results" / ("adapt_select_oof.json" if args.folds else "adapt_select.json")
    try:
        if args.folds is not None:
            result = run_oof_selection(args.folds, args.data_root)
        else:
            result = run_selection(args.model, args.data_root / "svdb")
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print_result(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
