"""``edge-ecg train``: train a quantization-aware CNN+LSTM on DS1 and write a run folder."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edge_ecg.config import ARCHES


@click.command(context_settings={"max_content_width": 100})
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="MIT-BIH folder (default: $EDGE_ECG_DATA/mitdb, then the `data fetch` cache).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="JSON or TOML run configuration (sections window, model, augment, train); "
                   "unknown keys are errors. Default: the built-in configuration, which is the shipped "
                   "model's (models/config.json).")
@click.option("--arch", type=click.Choice(ARCHES), default=None,
              help="Network: cnn_lstm (default, the product), cnn or lstm (ablations of a similar size).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Float-training epochs (upper bound; early stopping may end sooner).")
@click.option("--qat/--no-qat", default=None, help="Quantization-aware fine-tuning after float training (default: on).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder to create (default runs/<arch>-<date>-<time>). Must not exist unless --force.")
@click.option("--seed", type=int, default=None, help="Random seed (default 0): same seed, same run.")
@click.option("--noise-data", type=click.Path(path_type=Path), default=None,
              help="nstdb folder for noise augmentation (default: beside --data, then the usual places).")
@click.option("--force", is_flag=True, help="Replace an existing run folder given as --out, only once the new run is "
              "complete (it is written beside it first; Ctrl-C leaves the old run as it was).")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
def train(data, config_file, arch, epochs, qat, out, seed, noise_data, force, quiet):
    """Train a beat classifier on DS1 (inter-patient) and write a run folder.

    Beats are windows around the reference R peaks of de Chazal's DS1 records (180 Hz,
    1.5 s before to 1.0 s after the R peak by default) with past-only RR-interval features.
    Whole DS1 records are held out for validation (train.val_records); the epoch with the
    best validation macro-F1 (N, S, V) is kept. DS2 is never touched: score it afterwards
    with `edge-ecg evaluate`. With no options this retrains the shipped model (about 5
    minutes on 2 cores; one TensorFlow thread, train.threads, for exact reproducibility).

    \b
    The LSTM reads the CNN's time steps within one window (variant (a), the default); set
    model.sequence_beats = K in the config for variant (b), where it reads the last K beats.

    \b
    The run folder holds: config.json (the full resolved configuration), model.keras
    (float), model_qat.keras (quantization-aware trained; what `edge-ecg convert` uses),
    qat_wrapped.h5 (the fake-quantised training model), metrics.json, curves.png, checkpoints/.

    \b
    Examples:
      edge-ecg train --out runs/a
      edge-ecg train --arch cnn --epochs 10 --no-qat --out runs/cnn --seed 1
      edge-ecg train --config my.toml --out runs/b --force
    """
    from edge_ecg.config import RunConfig, load_config
    from edge_ecg.records.locate import find_database

    config = load_config(config_file) if config_file is not None else RunConfig()
    from edge_ecg.model.train import resolve_config

    config = resolve_config(config, arch=arch, epochs=epochs, qat=qat, seed=seed)
    db_dir = find_database("mitdb", data)
    if out is None:
        out = Path("runs") / f"{config.model.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    from edge_ecg.model.train import check_records

    check_records(db_dir, config)  # before any slow work: records present, none from DS2
    if Path(out).exists() and Path(out).is_dir() and any(Path(out).iterdir()) and not force:
        raise click.ClickException(f"{out}: already exists; pass --force to replace it, or choose another --out")

    from edge_ecg.model.train import train_run

    echo = (lambda msg: None) if quiet else click.echo
    result = train_run(config, db_dir, out, nstdb_dir=noise_data, force=force, progress=not quiet, echo=echo)
    m = result.metrics
    best = m["qat"] or m["float"]
    click.echo(
        f"done: {result.run_dir} (validation macro-F1 {100 * (best['val']['macro_f1'] or 0):.2f}%, "
        f"{m['params']} parameters, {m['seconds']:.0f} s)"
    )
