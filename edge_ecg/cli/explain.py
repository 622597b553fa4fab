"""``edge-ecg explain``: why the model labelled one beat the way it did."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_ecg.cli._options import data_option, json_option, lead_option, model_option, record_option
from edge_ecg.config import CLASSES


def pick_beat(times_s, beat: int | None, time_s: float | None) -> int:
    """Index of the beat asked for: by number (0-based) or the one nearest ``time_s`` seconds."""
    import numpy as np

    from edge_ecg.errors import EdgeEcgError

    n = len(times_s)
    if n == 0:
        raise EdgeEcgError("the record has no annotated beats")
    if beat is not None:
        if not 0 <= beat < n:
            raise EdgeEcgError(f"--beat {beat} is out of range: the record has beats 0..{n - 1}")
        return beat
    return int(np.argmin(np.abs(np.asarray(times_s) - time_s)))


@click.command()
@model_option(required=True)
@record_option
@click.option("--beat", type=int, default=None, help="Beat number in the record (0-based, annotated beats).")
@click.option("--time", "time_s", type=float, default=None, help="Or: the beat nearest this time (s).")
@data_option
@lead_option
@click.option("--target", type=click.Choice(CLASSES), default=None, help="Class to explain. [default: the predicted one]")
@click.option("--steps", type=click.IntRange(8, 1024), default=64, show_default=True, help="Integration steps.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the picture (PNG) here.")
@json_option
def explain(model: Path, record: str, beat: int | None, time_s: float | None, data: Path | None, lead: str | None,
            target: str | None, steps: int, out: Path | None, as_json: bool) -> None:
    """Show which samples of a beat's window made the model choose its class.

    Integrated gradients (Sundararajan et al., 2017) on the float tf-keras model: each
    sample's share of the change in the class probability from a flat window with a
    regular rhythm to the real beat. The shares add up to that change; the "residual"
    line says how closely.

    --model is the Keras model (gradients are needed): a run folder such as the shipped
    models/ or one `edge-ecg train --out runs/a` wrote, or a .keras/.h5 file; not a .tflite.

    \b
    Examples:
      edge-ecg explain --model models --record 233 --time 64.8 --out pvc.png    a V beat (DS2)
      edge-ecg explain --model runs/a --record 232 --beat 100 --json > beat100.json
    """
    if (beat is None) == (time_s is None):
        raise click.UsageError("give exactly one of --beat N or --time SECONDS")
    if model.suffix.lower() == ".tflite":
        raise click.ClickException(
            f"{model}: explain needs the Keras model a .tflite was converted from (integrated gradients "
            f"need gradients, which a .tflite does not keep): give its run folder, e.g. --model models"
        )
    if out is not None:
        from edge_ecg.outputs import prepare_output

        prepare_output(out, "--out")
    import numpy as np

    from edge_ecg.beats.dataset import record_beats
    from edge_ecg.export.convert import load_source_model
    from edge_ecg.model.explain import integrated_gradients, plot_explanation
    from edge_ecg.records import find_database, load_record

    source = load_source_model(model, prefer="float")  # a run folder's float model, not the QAT copy
    window = source.window
    from edge_ecg.beats.dataset import record_lead
    from edge_ecg.records.databases import folder_database

    folder = find_database("mitdb", data)
    database = folder_database(folder)
    rec = load_record(folder, record, lead=record_lead(folder, record, window, lead, database), database=database)
    beats = record_beats(rec, window)
    i = pick_beat(beats.sample / window.fs, beat, time_s)
    expl = integrated_gradients(source.model, beats.X[i], beats.rr[i], window,
                                target=None if target is None else CLASSES.index(target), steps=steps)
    truth = CLASSES[int(beats.y[i])]
    t_beat = float(beats.sample[i] / window.fs)
    if out is not None:
        plot_explanation(out, beats.X[i], expl, window, title=f"record {record}, beat {i} at {t_beat:.2f} s",
                         true_label=truth, rr=beats.rr[i])
    if as_json:
        payload = {"record": record, "beat": i, "time_s": t_beat, "reference": truth,
                   **expl.to_dict(window, beats.rr[i])}
        click.echo(json.dumps(payload, indent=2))
        return
    probs = "  ".join(f"{c} {p:.1%}" for c, p in zip(CLASSES, expl.probs))
    attr = np.abs(expl.beat_attr)
    top = np.argsort(-attr)[: max(1, len(attr) // 20)]  # the strongest 5 % of samples
    lo, hi = (np.array([top.min(), top.max()]) - window.pre) / window.fs
    click.echo(f"record {record}, beat {i} at {t_beat:.2f} s: reference {truth}, "
               f"explaining {CLASSES[expl.target]}")
    click.echo(f"probabilities: {probs}")
    click.echo(f"strongest evidence between {lo * 1000:+.0f} and {hi * 1000:+.0f} ms from the R peak")
    if expl.rr_attr is not None:
        rr = ", ".join(f"{n} {a:+.3f}" for n, a in zip(window.rr_features, expl.rr_attr))
        click.echo(f"RR features: {rr}")
    click.echo(f"residual (completeness check): {expl.residual:+.4f}")
    if out is not None:
        click.echo(f"picture: {out}")
