"""Learning the wearer (issue 17): the adaptation of ``edge_ecg.runtime.adapt``, with and without.

- **svdb** (40 records; round 1's selection set of ``tools/adapt_select.py``, part of round
  2's) and **DS2** (the final report only; nothing was chosen on it): gross SVEB / VEB
  Se, +P, F1 and accuracy with and without adaptation, at the reference beats (offline) and
  end to end through the stream with our own detector; per record, where adaptation lowers
  S or V F1 and by how much. When the measured model trained on svdb records (its
  ``training_metrics.json``, ``train_records`` + ``val_records``, beside the model), the svdb
  section is **out of fold**: each record classified (offline and through the stream) by the
  int8 model of the shipped recipe's cross-validation fold that did not train on it
  (:data:`benchmarks.SHIPPED_FOLDS`, ``fold<k>/model_int8.tflite``), and labelled so;
- **patient-specific (clinic) mode**, EC57's protocol: the first 5 minutes of each record's
  reference labels teach the adaptation and only the remaining 25 minutes are scored,
  beside no adaptation and unsupervised adaptation scored on the same 25 minutes;
- **costs**: per-beat time of the model with the adaptation against without (``profile``,
  and the stream's CPU time per beat), peak resident memory of ``stream --adapt --wearer``,
  and the wearer state file's size;
- **drift** on DS1 records with long bigeminy / trigeminy (119, 208) and atrial
  fibrillation (201, 203): how the V and S labels move per third of the record. The model
  was trained on DS1: these show behaviour, not accuracy.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "adapt"
TITLE = "Learning the wearer (on-device adaptation)"

DRIFT_RECORDS = {"119": "bigeminy / trigeminy", "208": "bigeminy / trigeminy, couplets",
                 "201": "atrial fibrillation", "203": "atrial fibrillation, multiform V"}
CLINIC_MINUTES = 5.0
RSS_RECORD = "100"


def _select():
    import adapt_select  # tools/adapt_select.py (tools/ is on the path, see tools/benchmarks/__init__.py)

    return adapt_select


def stream_run(clf, rec, config):
    """Events of ``rec`` replayed at full speed through the stream (with the adaptation
    ``config``, None: without) and the CPU seconds it took."""
    from edge_ecg.runtime.adapt import make_adapter
    from edge_ecg.stream.pipeline import StreamPipeline
    from edge_ecg.stream.runner import run_stream
    from edge_ecg.stream.sources import ReplaySource

    events = []
    pipe = StreamPipeline(clf, adapter=None if config is None else make_adapter(clf, config))
    t0 = time.process_time()
    run_stream(ReplaySource(rec, speed=0), pipe, threaded=False, on_event=events.append)
    return events, time.process_time() - t0


def end_to_end(clf, db_dir: Path, records, lead: str | None, config, seconds: float | None = None) -> dict:
    """EC57 figures of the stream (own detector) on ``records``, without and with adaptation,
    per-record F1, and CPU time per beat of each. ``clf``: one classifier, or record name ->
    classifier (out of fold)."""
    from edge_ecg.evaluate import Report, score_record
    from edge_ecg.records.load import load_record

    sel = _select()
    scores = {"none": [], "adapt": []}
    cpu = {"none": 0.0, "adapt": 0.0}
    n_beats = {"none": 0, "adapt": 0}
    for name in records:
        model = clf[name] if isinstance(clf, dict) else clf
        rec = load_record(db_dir, name, lead=lead or model.window.lead)
        if seconds is not None:
            n = int(seconds * rec.fs)
            keep = rec.beat_samples < n
            rec.signal, rec.beat_samples, rec.beat_classes = rec.signal[:n], rec.beat_samples[keep], rec.beat_classes[keep]
        for key, cfg in (("none", None), ("adapt", config)):
            events, cpu_s = stream_run(model, rec, cfg)
            beats = [e for e in events if e.label is not None]
            cpu[key] += cpu_s
            n_beats[key] += len(events)
            scores[key].append(score_record(rec.beat_samples, rec.beat_classes,
                                            np.array([e.sample for e in beats], dtype=np.int64),
                                            [e.label for e in beats], rec.fs, excluded=rec.excluded, name=name))
    out = {k: sel.figures(Report(v)) for k, v in scores.items()}
    out["record_changes"] = sel.record_changes(sel.per_record_f1(Report(scores["none"])),
                                               sel.per_record_f1(Report(scores["adapt"])))
    out["stream_cpu_us_per_beat"] = {k: round(1e6 * cpu[k] / max(n_beats[k], 1), 1) for k in cpu}
    out["stream_cpu_ratio"] = round(cpu["adapt"] / cpu["none"], 3) if cpu["none"] else None
    return out


def offline(clf, db_dir: Path, records, lead: str | None, config) -> dict:
    """:func:`offline_scores` of one classifier on ``records``."""
    beats, probs, excluded = _select().record_set(clf, db_dir, records, lead=lead)
    return offline_scores(clf, beats, probs, excluded, config)


def offline_scores(clf, beats, probs, excluded, config) -> dict:
    """Offline figures (reference beats) without / with adaptation, per-record changes, and
    the clinic mode's table (first :data:`CLINIC_MINUTES` labelled, the rest scored). ``clf``:
    one classifier, or record name -> classifier (out of fold)."""
    sel = _select()
    ev = sel.evaluate_adaptation(beats, probs, excluded, clf, {"none": None, "adapt": config})
    r = ev["reports"]
    out = {k: sel.figures(v) for k, v in r.items()}
    out["record_changes"] = sel.record_changes(sel.per_record_f1(r["none"]), sel.per_record_f1(r["adapt"]))
    out["per_record_f1"] = {k: sel.per_record_f1(v) for k, v in r.items()}
    out["adapt_us_per_beat"] = round(ev["adapt_us_per_beat"]["adapt"], 1)
    start = 60.0 * CLINIC_MINUTES
    labels = np.where(beats.sample < start * beats.window.fs, beats.y, -1)
    later = sel.evaluate_adaptation(beats, probs, excluded, clf, {"none": None, "unsupervised": config},
                                    start_s=start)["reports"]
    sup = sel.evaluate_adaptation(beats, probs, excluded, clf, {"supervised": config}, labels=labels,
                                  start_s=start)["reports"]["supervised"]
    out["clinic"] = {"labelled_minutes": CLINIC_MINUTES, "none": sel.figures(later["none"]),
                     "unsupervised": sel.figures(later["unsupervised"]), "supervised": sel.figures(sup)}
    out["beats"] = len(beats)
    out["warm_up"] = warm_up(clf, beats, probs, config)
    return out


def warm_up(clf, beats, probs, config) -> dict:
    """How long adaptation needs: per record, the time (s) of its first adapted beat and the
    share of its beats labelled from an adapted state; their median over the records."""
    _, flags = _select().adapt_by_model(clf, beats, probs, config)
    first, share = {}, {}
    for name in dict.fromkeys(beats.record.tolist()):
        sel = beats.record == name
        f = flags[sel]
        first[name] = None if not f.any() else round(float(beats.sample[sel][np.argmax(f)] / beats.window.fs), 1)
        share[name] = round(100.0 * float(f.mean()), 1)
    known = [v for v in first.values() if v is not None]
    return {"first_adapted_s": first, "adapted_pct": share,
            "median_first_adapted_s": None if not known else float(np.median(known)),
            "records_never_adapted": [k for k, v in first.items() if v is None],
            "median_adapted_pct": float(np.median(list(share.values())))}


def drift(clf, mitdb: Path, config) -> dict:
    """Per DS1 drift record: V and S Se / +P without and with adaptation, and per third of the
    record the share of reference V beats labelled V and of reference N beats labelled N."""
    from edge_ecg.config import CLASSES
    from edge_ecg.runtime.adapt import adapt_records, make_adapter

    sel = _select()
    out = {}
    for name, what in DRIFT_RECORDS.items():
        beats, probs, excluded = sel.record_set(clf, mitdb, [name])
        adapted, flags = adapt_records(make_adapter(clf, config), beats.record, beats.X, beats.rr, probs)
        row = {"rhythm": what, "adapted_pct": round(100.0 * flags.mean(), 1)}
        thirds = np.array_split(np.arange(len(beats)), 3)
        for key, p in (("none", probs), ("adapt", adapted)):
            lab = p.argmax(1)
            ev = sel.evaluate_adaptation(beats, p, excluded, clf, {key: None})["reports"][key]
            f = sel.figures(ev)
            row[key] = {k: f[k] for k in ("veb_se", "veb_ppv", "sveb_se", "sveb_ppv")}
            for cls in ("V", "N"):
                c = CLASSES.index(cls)
                row[key][f"{cls}_right_by_third_pct"] = [
                    None if not (beats.y[t] == c).any() else round(100.0 * float((lab[t][beats.y[t] == c] == c).mean()), 1)
                    for t in thirds]
        out[name] = row
    return out


def costs(model: Path, mitdb: Path, quick: bool = False) -> dict:
    """Per-beat time with / without adaptation (``profile``), and ``stream --adapt --wearer``'s
    peak memory and state file size after a whole record."""
    from edge_ecg.stream.classifier_files import profile_model

    from benchmarks.stream import peak_rss

    prof = profile_model(model, runs=300 if quick else 3000, adapt=True)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "wearer.state"
        rss = peak_rss(model, ["--replay", str(mitdb / RSS_RECORD), "--speed", "0", "--adapt", "--wearer",
                               str(state)] + (["--duration", "60"] if quick else []))
        size = state.stat().st_size if state.exists() else None
    rss["args"] = f"--replay mitdb/{RSS_RECORD} --speed 0 --adapt --wearer FILE" + (" --duration 60" if quick else "")
    return {"profile_p50_ms_without": prof["adapt"]["without_p50_ms"], "profile": prof["adapt"],
            "rss": rss, "wearer_bytes": size, "wearer_target_bytes": 64 * 1024,
            "ratio_target": 1.25}


def training_records(model: Path) -> set[str] | None:
    """The records the model at ``model`` trained on (``train_records`` + ``val_records`` of the
    ``training_metrics.json`` beside it; ids like ``"svdb/800"``), None when it has none."""
    import json

    metrics = Path(model).parent / "training_metrics.json"
    if not metrics.is_file():
        return None
    m = json.loads(metrics.read_text())
    return set(m.get("train_records") or ()) | set(m.get("val_records") or ())


def out_of_fold_svdb(model: Path, svdb: Path, records, config, seconds) -> dict | None:
    """The svdb section out of fold (each record by its shipped-recipe fold int8 model), when ``model``
    trained on any of ``records``; None otherwise (the section measures ``model`` itself)."""
    from edge_ecg.runtime.adapt import model_key

    from benchmarks import ROOT, SHIPPED_FOLDS

    sel = _select()
    ids = [f"svdb/{r}" for r in records]
    seen = sorted(set(ids) & (training_records(model) or set()))
    if not seen:
        return None
    folds = SHIPPED_FOLDS
    assignment = sel.fold_assignment(ids, folds)
    models = sel.load_fold_models(folds, assignment.values())
    beats, probs, excluded, clf_of = sel.oof_record_set({"svdb": (svdb, list(records))}, models, assignment)
    return {"records": list(records),
            "out_of_fold": {"folds": str(folds.relative_to(ROOT)), "record_fold": assignment,
                            "fold_model_keys": {f"fold{k}": model_key(m.path) for k, m in models.items()
                                                if getattr(m, "path", None) is not None},
                            "measured_model_trained_on": len(seen)},
            "offline": offline_scores(clf_of, beats, probs, excluded, config),
            "stream": end_to_end({r: models[assignment[f"svdb/{r}"]] for r in records}, svdb, records, "ECG1",
                                 config, seconds)}


def run(ctx) -> dict:
    from edge_ecg.config import AdaptConfig, to_dict
    from edge_ecg.records.aami import DS2
    from edge_ecg.runtime.adapt import ADAPT_BY_DEFAULT, model_key
    from edge_ecg.stream.classifier_files import load_classifier

    from benchmarks import shipped_model

    model = shipped_model(ctx)
    clf = load_classifier(model, threads=1)
    config = AdaptConfig()
    svdb = ctx.data_root / "svdb"
    if not (svdb / "RECORDS").is_file():
        raise FileNotFoundError(f"{svdb}: no svdb records (the adapt section needs mitdb/ and svdb/)")
    sel = _select()
    svdb_records = sel.svdb_records(svdb)
    ds2 = list(DS2)
    seconds = None
    if ctx.quick:
        svdb_records, ds2, seconds = svdb_records[:2], ds2[:2], 300.0
    out = {"model": str(model.relative_to(model.parents[1]) if len(model.parents) > 1 else model),
           "model_key": model_key(model), "config": to_dict(config), "on_by_default": ADAPT_BY_DEFAULT,
           "quick": ctx.quick}
    out["svdb"] = out_of_fold_svdb(model, svdb, svdb_records, config, seconds) or {
        "records": svdb_records, "out_of_fold": None, "offline": offline(clf, svdb, svdb_records, "ECG1", config),
        "stream": end_to_end(clf, svdb, svdb_records, "ECG1", config, seconds)}
    out["ds2"] = {"records": ds2, "offline": offline(clf, ctx.mitdb, ds2, None, config),
                  "stream": end_to_end(clf, ctx.mitdb, ds2, None, config, seconds)}
    out["drift"] = drift(clf, ctx.mitdb, config) if not ctx.quick else {}
    out["costs"] = costs(model, ctx.mitdb, ctx.quick)
    return out


# --------------------------------------------------------------------------- report


def _f(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def _figure_rows(label: str, f: dict) -> str:
    return (f"| {label} | {_f(f['sveb_se'])} | {_f(f['sveb_ppv'])} | {_f(f['sveb_f1'])} | {_f(f['veb_se'])} | "
            f"{_f(f['veb_ppv'])} | {_f(f['veb_f1'])} | {_f(f['accuracy'])} |")


HEAD = ["| | SVEB Se | SVEB +P | SVEB F1 | VEB Se | VEB +P | VEB F1 | accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|"]


def _changes(ch: dict) -> str:
    drops = ch["drops"]
    worst = ", ".join(f"{d['record']} {d['class']} {d['points']:+.1f}" for d in drops[:6]) or "none"
    return (f"records where adaptation lowers S or V F1: {ch['n_lowered_any']} (by more than "
            f"{ch['threshold_points']:g} points: {len(ch['lowered_gt_threshold'])}; raised by more: "
            f"{len(ch['raised_gt_threshold'])}); largest drops: {worst}")


def _needs(cfg: dict) -> str:
    """What the design needs before its first adapted beat, in words."""
    if cfg["design"] == "cluster":
        return f"once a group of look-alike beats holds {cfg['min_votes']} of one timing"
    return f"once the model has been sure of at least {cfg['min_support']} beats of two classes"


def render(result: dict) -> str:
    cfg = result["config"]
    lines = [
        f"Model `{result['model']}` (key {result['model_key']}); design `{cfg['design']}` "
        f"(`edge_ecg.runtime.adapt`, chosen by `tools/adapt_select.py`: round 1 on svdb, "
        f"`tools/results/adapt_select.json`; round 2 on DS1 + svdb out of fold, "
        f"`tools/results/adapt_select_oof.json`); on by default: {result['on_by_default']}. Each record is one "
        "wearer, starting cold; labels are causal. Figures in %, gross EC57.",
        "",
    ]
    for key, title in (("svdb", "svdb, {n} records (the selection set: patients the model never saw)"),
                       ("ds2", "DS2, {n} records (final report only: nothing was chosen on it)")):
        d = result[key]
        title = title.format(n=len(d["records"]))
        if d.get("out_of_fold"):
            title = svdb_oof_title(d)
        off, st = d["offline"], d["stream"]
        lines += [f"**{title}**", "", *HEAD,
                  _figure_rows("reference beats, no adaptation", off["none"]),
                  _figure_rows("reference beats, adapted", off["adapt"]),
                  _figure_rows("stream (own detector), no adaptation", st["none"]),
                  _figure_rows("stream (own detector), adapted", st["adapt"]),
                  "",
                  f"- Reference beats: {_changes(off['record_changes'])}.",
                  f"- How long it needs: the first adapted beat comes after a median "
                  f"{_f(off['warm_up']['median_first_adapted_s'])} s ({_needs(cfg)}); a median "
                  f"{_f(off['warm_up']['median_adapted_pct'])} % "
                  f"of a record's beats are labelled from an adapted state; never adapted: "
                  f"{', '.join(off['warm_up']['records_never_adapted']) or 'none'}.",
                  f"- Stream: {_changes(st['record_changes'])}. Stream CPU per beat "
                  f"{st['stream_cpu_us_per_beat']['none']:.0f} µs without, {st['stream_cpu_us_per_beat']['adapt']:.0f} "
                  f"µs with ({st['stream_cpu_ratio']:.2f}x).",
                  "",
                  f"Patient-specific mode (first {off['clinic']['labelled_minutes']:g} min of each record's labels "
                  "teach the adaptation; the remaining minutes scored, all three rows on the same beats):",
                  "", *HEAD,
                  _figure_rows("no adaptation", off["clinic"]["none"]),
                  _figure_rows("unsupervised adaptation", off["clinic"]["unsupervised"]),
                  _figure_rows(f"supervised ({off['clinic']['labelled_minutes']:g} min labelled)",
                               off["clinic"]["supervised"]),
                  ""]
    c = result["costs"]
    p = c["profile"]
    ok = {True: "met", False: "**not met**"}
    lines += [
        "**Costs** (this machine, 1 thread)", "",
        "| measure | result | target | |", "|---|---|---|---|",
        f"| per beat, model + adaptation vs model alone (`edge-ecg profile --adapt`, p50) | {p['with_p50_ms']:.3f} vs "
        f"{c['profile_p50_ms_without']:.3f} ms ({p['ratio_p50']:.2f}x; adaptation alone {1000 * p['alone_p50_ms']:.0f} µs) "
        f"| <= {c['ratio_target']}x | {ok[p['ratio_p50'] <= c['ratio_target']]} |",
        f"| peak resident memory of `stream {c['rss']['args']}` | {c['rss']['peak_rss_mb']:.0f} MB (TensorFlow "
        f"imported: {c['rss']['tensorflow_imported']}) | <= 80 MB | {ok[c['rss']['met']]} |",
        f"| wearer state file after the replay | {c['wearer_bytes']:,} bytes | <= 64 KB | "
        f"{ok[bool(c['wearer_bytes']) and c['wearer_bytes'] <= c['wearer_target_bytes']]} |",
        "",
    ]
    if result.get("drift"):
        lines += ["**Drift** (DS1 records the model was trained on: behaviour, not accuracy). Share of reference V "
                  "beats labelled V, and of N beats labelled N, in each third of the record, without -> with "
                  "adaptation; V and S Se/+P of the whole record.", "",
                  "| record | rhythm | V right by third | N right by third | VEB Se/+P | SVEB Se/+P | adapted beats |",
                  "|---|---|---|---|---|---|---:|"]
        for name, r in result["drift"].items():
            def thirds(cls):
                a, b = r["none"][f"{cls}_right_by_third_pct"], r["adapt"][f"{cls}_right_by_third_pct"]
                return " / ".join(f"{_f(x)}->{_f(y)}" for x, y in zip(a, b))
            lines.append(
                f"| {name} | {r['rhythm']} | {thirds('V')} | {thirds('N')} | {_f(r['none']['veb_se'])}/"
                f"{_f(r['none']['veb_ppv'])} -> {_f(r['adapt']['veb_se'])}/{_f(r['adapt']['veb_ppv'])} | "
                f"{_f(r['none']['sveb_se'])}/{_f(r['none']['sveb_ppv'])} -> {_f(r['adapt']['sveb_se'])}/"
                f"{_f(r['adapt']['sveb_ppv'])} | {r['adapted_pct']:.0f} % |")
    return "\n".join(lines) + "\n"


def svdb_oof_title(d: dict) -> str:
    """The svdb section's heading when it was measured out of fold."""
    o = d["out_of_fold"]
    return (f"svdb, {len(d['records'])} records, out of fold (the measured model trained on "
            f"{o['measured_model_trained_on']} of them: each record is classified here by the int8 model of the "
            f"shipped recipe's cross-validation fold that did not train on its patient, `{o['folds']}/fold<k>/model_int8.tflite`, "
            "offline and through the stream; part of the out-of-fold adaptation rounds' selection set)")


def headline(result: dict) -> list[tuple[str, str, str]]:
    """README rows: DS2 SVEB / VEB F1 without -> with adaptation, and its per-beat cost."""
    d = result["ds2"]["offline"]
    s = result["svdb"]["offline"]
    return [
        ("adaptation to the wearer (unsupervised), SVEB F1; VEB F1: svdb ("
         f"{'out of fold' if result['svdb'].get('out_of_fold') else 'selection set'}); DS2",
         f"{_f(s['none']['sveb_f1'])} -> {_f(s['adapt']['sveb_f1'])}; {_f(s['none']['veb_f1'])} -> "
         f"{_f(s['adapt']['veb_f1'])} %; DS2 {_f(d['none']['sveb_f1'])} -> {_f(d['adapt']['sveb_f1'])}; "
         f"{_f(d['none']['veb_f1'])} -> {_f(d['adapt']['veb_f1'])} %", "SVEB F1 >= 80 %"),
        ("per beat with adaptation / without (profile p50)", f"{result['costs']['profile']['ratio_p50']:.2f}x",
         "<= 1.25x"),
    ]
