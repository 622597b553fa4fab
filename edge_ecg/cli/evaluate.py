"""``edge-ecg evaluate``: AAMI EC57 scores of a Keras or TFLite model on MIT-BIH records."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"max_content_width": 100})
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="A run folder (its QAT model, else its float model), a .keras/.h5 file (with config.json "
                   "beside it) or an edge-ecg .tflite.")
@click.option("--records", default=None,
              help="Records to score: a named set (DS1, DS2, DS1+DS2 for MIT-BIH), all, or a comma list such as "
                   "100,101. [default: DS2 for MIT-BIH, all for any other folder]")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Folder of annotated WFDB records: MIT-BIH, another database (svdb, incartdb, ...) or your own "
                   "(default: $EDGE_ECG_DATA/mitdb, then the `data fetch` cache).")
@click.option("--lead", default=None, metavar="NAME",
              help="Lead to read (a record without it: one line naming its leads). Default: the model's lead (MLII) "
                   "where a record has it, else the database's default (svdb: ECG1; `edge-ecg data info --registry`).")
@click.option("--float", "prefer_float", is_flag=True, help="For a run folder: score model.keras, not model_qat.keras.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON instead of text.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Also write the confusion matrix as a PNG.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate(model_path, records, data, lead, prefer_float, as_json, plot, threads, quiet):
    """Score a model on annotated beats the way AAMI EC57 does (MIT-BIH DS2 by default).

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
      edge-ecg evaluate --model models/edge_ecg_int8.tflite --data ../shared/data/svdb --lead ECG1 --json
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

    from edge_ecg.model.predict import evaluate_classifier, load_classifier, resolve_model_path

    path = resolve_model_path(model_path, "float" if prefer_float else "qat")
    if path.suffix.lower() != ".tflite":
        from edge_ecg.model._tf import set_threads

        set_threads(threads)
    clf = load_classifier(path, threads=threads)
    report, _, _ = evaluate_classifier(clf, db_dir, names, progress=not quiet, lead=lead,
                                       title=f"{path} on {database.name} {records}")
    click.echo(report.to_json() if as_json else report.to_text())
    if plot is not None:
        report.plot_confusion(plot)
        if not as_json:
            click.echo(f"confusion matrix: {plot}")
