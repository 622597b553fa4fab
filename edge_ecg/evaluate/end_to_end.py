"""End-to-end evaluation: a classifier through the whole stream, scored against the reference.

What a device does: our own QRS detector finds the beats, the live chain
(:class:`edge_ecg.stream.pipeline.StreamPipeline`) builds their windows and RR features and
the classifier labels them; EC57 beat matching (:func:`~edge_ecg.evaluate.score_record`)
scores the labelled detections against the record's reference beats. Beside it, the offline
evaluation of the same classifier at the reference beat positions
(:func:`edge_ecg.beats.dataset.record_beats`), and the steps between the two
(:func:`end_to_end_scores` with ``decompose``, :func:`gap_decomposition`).

Used by ``tools/bench.py stream`` (the DS2 end-to-end gap) and ``tools/cv_select.py``
(cross-validation scores, :func:`summarise_scores`). Imports nothing heavy until called; no
TensorFlow unless the classifier is a Keras one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_ecg.evaluate.match import match_beats


def cut_record(rec, seconds: float | None):
    """``rec`` (a loaded :class:`~edge_ecg.records.load.Record`) cut to its first ``seconds``
    (None: whole), its reference beats included. Changes ``rec`` in place and returns it."""
    if seconds is not None:
        n = int(seconds * rec.fs)
        rec.signal = rec.signal[:n]
        keep = rec.beat_samples < n
        rec.beat_samples, rec.beat_classes = rec.beat_samples[keep], rec.beat_classes[keep]
    return rec


def load_record_id(mitdb: str | Path, rid: str, window):
    """Record ``rid`` (a MIT-BIH name such as ``"100"``, or ``db/record`` such as ``"svdb/800"``
    from the folder ``db`` beside ``mitdb``, by :func:`~edge_ecg.records.locate.find_database`'s
    rule), named ``rid``, on the lead the offline builder
    would read for ``window`` (a :class:`~edge_ecg.config.WindowConfig`): the model's lead
    where the record has it, else its database's default."""
    from edge_ecg.beats.dataset import record_lead
    from edge_ecg.records.databases import folder_database, split_record_id
    from edge_ecg.records.load import load_record
    from edge_ecg.records.locate import find_database

    db, name = split_record_id(rid)
    folder = Path(mitdb) if db == "mitdb" else find_database(db, beside=mitdb)
    database = folder_database(folder, db)
    rec = load_record(folder, name, lead=record_lead(folder, name, window, None, database), database=database)
    rec.name = rid
    return rec


def snap_to_reference(ref_samples, found, fs: float) -> np.ndarray:
    """``found`` (detected R peaks, samples at ``fs``) with every detection that EC57 matches to
    a reference beat moved onto that beat; extra detections stay where they are. Sorted int64.

    Classifying at these positions keeps the detector's missed and extra beats but none of
    its R-position jitter: the half-way house of :func:`end_to_end_scores`' decomposition.
    """
    ref = np.asarray(ref_samples, dtype=np.int64)
    out = np.asarray(found, dtype=np.int64).copy()
    ri, ti = match_beats(ref, out, fs)
    out[ti] = ref[ri]
    return np.unique(out)


def end_to_end_scores(clf, mitdb: str | Path, records, seconds: float | None = None, decompose: bool = False) -> dict:
    """Per-record EC57 scores of classifier ``clf`` on ``records``, as lists under these keys:

    - ``stream``: the whole stream pipeline with our own detector (``--replay`` at speed 0),
      matched to the reference beats;
    - ``offline``: the same classifier at the reference beat positions (the offline builder,
      :func:`edge_ecg.beats.dataset.record_beats`);

    and with ``decompose``, the steps between them, both through the offline builder:

    - ``at_stream_positions``: at the stream's own detections (the same beats, so it should
      equal ``stream``: a check that the live chain builds exactly the offline windows and
      RR features);
    - ``snapped``: at the detections with each matched one moved onto its reference beat
      (:func:`snap_to_reference`): missed and extra beats kept, R-position jitter removed.

    ``unclassified`` counts the beats the stream left without a label (signal quality).
    ``clf`` is a :class:`edge_ecg.runtime.Classifier` (TFLite or Keras); ``seconds`` cuts each
    record short. A record id ``db/record`` (``svdb/800``) is read from the folder ``db``
    beside ``mitdb`` (:func:`load_record_id`).
    """
    from edge_ecg.evaluate.ec57 import score_record
    from edge_ecg.stream.pipeline import StreamPipeline
    from edge_ecg.stream.runner import run_stream
    from edge_ecg.stream.sources import ReplaySource

    keys = ("stream", "offline") + (("at_stream_positions", "snapped") if decompose else ())
    out: dict = {k: [] for k in keys}
    out["unclassified"] = 0

    def at(rec, positions):
        labels = offline_labels(clf, rec, positions)
        pos = rec.beat_samples if positions is None else positions
        return score_record(rec.beat_samples, rec.beat_classes, pos, labels, rec.fs, excluded=rec.excluded,
                            name=rec.name)

    for name in records:
        rec = cut_record(load_record_id(mitdb, name, clf.window), seconds)
        events = []
        run_stream(ReplaySource(rec, speed=0), StreamPipeline(clf), threaded=False, on_event=events.append)
        beats = [e for e in events if e.label is not None]
        out["unclassified"] += len(events) - len(beats)
        found = np.array([e.sample for e in beats], dtype=np.int64)
        out["stream"].append(score_record(
            rec.beat_samples, rec.beat_classes, found, [e.label for e in beats], rec.fs,
            excluded=rec.excluded, name=name,
        ))
        out["offline"].append(at(rec, None))
        if decompose:
            out["at_stream_positions"].append(at(rec, found))
            out["snapped"].append(at(rec, snap_to_reference(rec.beat_samples, found, rec.fs)))
    return out


def offline_labels(clf, rec, positions=None) -> list[str]:
    """Class letters of classifier ``clf`` for the beats of loaded record ``rec``, windowed by the
    offline builder at ``positions`` (R-peak samples at ``rec.fs``; None: the reference beats)."""
    from edge_ecg.beats.dataset import record_beats
    from edge_ecg.config import CLASSES
    from edge_ecg.evaluate.classify import predict_records

    beats = record_beats(rec, clf.window, r_samples=None if positions is None else np.asarray(positions))
    pred = predict_records(clf, beats)  # a fresh stream of beats for a sequence model
    return [CLASSES[i] for i in np.argmax(pred, axis=1)]


def in_run_scores(clf, mitdb: str | Path, records) -> dict:
    """Per record (id -> :func:`edge_ecg.evaluate.runs.in_run_counts`): how many of its reference S
    beats in runs, alone and in runs of each length classifier ``clf`` labels S offline."""
    from edge_ecg.evaluate.runs import in_run_counts

    out = {}
    for name in records:
        rec = load_record_id(mitdb, name, clf.window)
        out[name] = in_run_counts(rec.beat_samples, rec.beat_classes, offline_labels(clf, rec), rec.fs)
    return out


def gap_decomposition(scores: dict) -> dict:
    """Gross VEB and SVEB F1 (fractions) of each step of :func:`end_to_end_scores`'
    decomposition, from the stream to the offline evaluation:

    ``stream`` -> ``at_stream_positions`` (same beats, offline builder: should be equal)
    -> ``snapped`` (R jitter removed) -> ``offline`` (missed and extra beats removed too).
    So ``snapped - stream`` is what R-position jitter costs and ``offline - snapped`` what
    the detector's missed and extra beats (and their neighbours' RR features) cost.
    """
    from edge_ecg.evaluate.report import Report

    out = {}
    for key in ("stream", "at_stream_positions", "snapped", "offline"):
        if key in scores:
            g = Report(scores[key]).gross
            out[key] = {"veb_f1": g["V"]["f1"], "sveb_f1": g["S"]["f1"]}
    return out


def summarise_scores(offline: list, stream: list) -> dict:
    """Pooled (EC57 gross) figures of per-record scores, offline and end to end:
    ``{"offline": {...}, "stream": {...}}``, each with ``macro_f1`` and ``acc`` and
    ``S_se``, ``S_ppv``, ``S_f1``, ``V_se``, ``V_ppv``, ``V_f1`` (fractions)."""
    from edge_ecg.evaluate.report import Report

    def pick(g):
        return {"macro_f1": g["macro_f1"], "acc": g["accuracy"],
                **{f"{c}_{m}": g[c][m] for c in ("S", "V") for m in ("se", "ppv", "f1")}}

    return {"offline": pick(Report(offline).gross), "stream": pick(Report(stream).gross)}
