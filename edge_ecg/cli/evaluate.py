"""``edge-ecg evaluate``: AAMI EC57 scores of a Keras or TFLite model on MIT-BIH records."""

from __future__ import annotations

from pathlib import Path

import click

from edge_ecg.cli._options import (data_option, json_option, lead_option, model_option, quiet_option, records_option,
                                   threads_option)


@click.command(context_settings={"max_content_width": 100})
@model_option(required=True)
@records_option
@data_option
@lead_option
@click.option("--float", "prefer_float", is_flag=True, help="For a run folder: score model.keras, not model_qat.keras.")
@json_option
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Also write the confusion matrix as a PNG.")
@threads_option
@quiet_option
@click.option("--adapt/--no-adapt", default=False, show_default=True,
              help="Score with the wearer's adaptation, each record its own wearer, exactly as `stream --adapt` "
                   "labels beats (causal, unsupervised; edge_ecg.runtime.adapt). Off: the model alone.")
@click.option("--supervised-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Clinic mode (EC57 patient-specific protocol, e.g. 5): the first minutes of each record's "
                   "reference labels teach the adaptation and only the rest is scored.")
def evaluate(model, records, data, lead, prefer_float, as_json, plot, threads, quiet, adapt, supervised_minutes):
    """Score a model on annotated beats the way AAMI EC57 does (MIT-BIH DS2 by default).

    --model is a run folder (its QAT model, else its float model), a .keras/.h5 file (with
    config.json beside it) or an edge-ecg .tflite. --data is any folder of annotated WFDB
    records: MIT-BIH, another database (svdb, incartdb, ...) or your own; --records defaults
    to DS2 for MIT-BIH and to all records for any other folder. Records the model was trained
    on (its run folder's metrics.json, or training_metrics.json beside a shipped model) are
    marked with a warning in the text and JSON report: their scores are not a test result.

    Every reference beat of the records is windowed with the model's own window
    configuration at its reference R position and classified; the report gives gross and
    per-record Se, +P, FPR and F1 for VEB (V) and SVEB (S), accuracy and macro-F1 (N, S, V),
    and, when record 232 is scored, the gross figures without it. Figures are percentages.
    VF/flutter episodes are not scored.

    \b
    Examples:
      edge-ecg evaluate --model runs/a                   # DS2, the QAT-trained Keras model
      edge-ecg evaluate --model models/edge_ecg_int8.tflite --json > ds2.json
      edge-ecg evaluate --model runs/a --records 100,232 --plot cm.png
      edge-ecg evaluate --model models/ds1_only/edge_ecg_int8.tflite --data ../shared/data/svdb --json
      edge-ecg evaluate --model models/edge_ecg_int8.tflite --adapt
      edge-ecg evaluate --model models/edge_ecg_int8.tflite --supervised-minutes 5   # clinic mode
    """
    from edge_ecg.errors import DataError
    from edge_ecg.records.databases import folder_database
    from edge_ecg.records.locate import find_database

    if plot is not None:
        from edge_ecg.outputs import prepare_output

        prepare_output(plot, "--plot")
    db_dir = find_database("mitdb", data)
    database = folder_database(db_dir)
    if records is None:
        records = "DS2" if database.name == "mitdb" else "all"
    names = database.select(records, db_dir)
    if not names:
        raise DataError(f"--records {records!r} names no records")
    missing = [r for r in names if not (db_dir / f"{r}.hea").is_file()]
    if missing:
        raise DataError(f"{db_dir}: record {missing[0]} not found ({len(missing)} of {len(names)} missing)")
    unannotated = [r for r in names if not (db_dir / f"{r}.{database.annotator}").is_file()]
    if unannotated:
        raise DataError(f"{db_dir}: record {unannotated[0]} has no beat annotations ({unannotated[0]}."
                        f"{database.annotator}); evaluate needs reference beats")

    from edge_ecg.evaluate.classify import evaluate_classifier
    from edge_ecg.model.run import find_model_file, load_run_classifier

    path, run_dir = find_model_file(model, "float" if prefer_float else "qat")
    if path.suffix.lower() != ".tflite":
        from edge_ecg.model._tf import set_threads

        set_threads(threads)
    clf = load_run_classifier(path, threads=threads)
    title = f"{path} on {database.name} {records}"
    report, probs, beats = evaluate_classifier(clf, db_dir, names, progress=not quiet, lead=lead, title=title)
    if supervised_minutes is not None or adapt:
        report = _adapted_report(clf, db_dir, names, beats, probs, supervised_minutes, title)
    from edge_ecg.evaluate.trained import overlap_warning, trained_on, training_records

    warning = overlap_warning(trained_on(training_records(path, run_dir), database.name, names), len(names),
                              database.name)
    if warning:
        report.warnings.append(warning)
        if as_json:
            click.echo(f"warning: {warning}", err=True)
    click.echo(report.to_json() if as_json else report.to_text())
    if plot is not None:
        report.plot_confusion(plot)
        if not as_json:
            click.echo(f"confusion matrix: {plot}")


def _adapted_report(clf, db_dir, names, beats, probs, supervised_minutes, title):
    """The EC57 report of the same beats relabelled by the wearer's adaptation
    (:func:`edge_ecg.runtime.adapt.adapt_records`); in the clinic mode the first
    ``supervised_minutes`` of reference labels teach it and are not scored."""
    import numpy as np

    from edge_ecg.evaluate.report import score_predictions
    from edge_ecg.records.load import vf_episodes
    from edge_ecg.runtime.adapt import adapt_records, make_adapter

    start_s, labels = 0.0, None
    if supervised_minutes is not None:
        start_s = 60.0 * supervised_minutes
        labels = np.where(beats.sample < start_s * beats.window.fs, beats.y, -1)
        title += f", adapted with the first {supervised_minutes:g} min of labels, scored after them"
    else:
        title += ", adapted to each record's wearer (unsupervised)"
    adapted, _ = adapt_records(make_adapter(clf), beats.record, beats.X, beats.rr, probs, labels)
    return score_predictions(beats.record, beats.sample, beats.y, adapted, fs=clf.window.fs,
                             excluded=vf_episodes(db_dir, names, clf.window.fs), start_s=start_s, title=title)
