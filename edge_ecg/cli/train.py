"""``edge-ecg train``: train a quantization-aware CNN+LSTM on record sets (shipped: DS1 + svdb) and write a run folder."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edge_ecg.cli._options import data_option, lead_option, quiet_option
from edge_ecg.config import ARCHES, STRATEGIES

# --strategy: kept apart from the data and model options (stored in ctx.meta, not a parameter).
_STRATEGY_KEY = "edge_ecg.train.strategy"
strategy_option = click.option(
    "--strategy", type=click.Choice(STRATEGIES), default=None, expose_value=False,
    callback=lambda ctx, param, value: ctx.meta.__setitem__(_STRATEGY_KEY, value),
    help="tf.distribute strategy (default: train.strategy, itself 'default': none). mirrored: every local "
         "GPU; multi_worker: the machines in TF_CONFIG (see 'Train on a cluster' above).")


@click.command(context_settings={"max_content_width": 100})
@strategy_option
@data_option
@click.option("--train-data", "train_data", multiple=True, metavar="SPEC",
              help="Train on these records instead of the configuration's train.data (shipped: mitdb:DS1 + svdb:EVEN); repeat "
                   "for several databases. SPEC is "
                   "SOURCE[:RECORDS][@WEIGHT]: a database name (mitdb, svdb, incartdb, edb, ltdb, icentia11k) or a "
                   "folder of WFDB records; RECORDS a set (DS1), all (default) or a comma list; WEIGHT the "
                   "database's sampling weight (default 1). Recorded in config.json as train.data.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A folder holding database folders (mitdb/, svdb/, ...), looked in first for --train-data names.")
@lead_option
@click.option("--init", "init", type=click.Path(path_type=Path), default=None,
              help="Fine-tune: start from this run folder's (or .keras file's) weights. Its config.json is the "
                   "base configuration unless --config is given; window and network must match.")
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
@click.option("--resume", is_flag=True, help="Keep the run's progress after every epoch (in .<out>.partial beside "
              "--out) and, when an interrupted run of the same configuration left one, continue from its last "
              "finished epoch. Not with --strategy mirrored/multi_worker.")
@quiet_option
def train(data, train_data, data_root, lead, init, config_file, arch, epochs, qat, out, seed, noise_data, force,
          resume, quiet):
    """Train a beat classifier (inter-patient: no DS2 record) and write a run folder.

    With no options this retrains the shipped model from its configuration (models/config.json,
    packaged): de Chazal's DS1 (22 MIT-BIH records) + the 40 even-numbered svdb records
    (`svdb:EVEN`), whole patients of both held out for validation (train.val_records): the same
    weights, bit for bit, in 15 minutes on 2 cores (one TensorFlow thread, train.threads).
    --data is the MIT-BIH folder; its parent is where the other databases are looked for
    unless --data-root says (svdb missing: `edge-ecg data fetch --db svdb`). For the DS1-only
    model, comparable with published inter-patient work: --train-data mitdb:DS1.
    --lead is read from every record (svdb, ltdb: ECG1 and incartdb: II where there is no MLII).

    Beats are windows around the reference R peaks (180 Hz, 1.5 s before to 1.0 s after the
    R peak by default) with past-only RR-interval features; the epoch with the best
    validation macro-F1 (N, S, V) is kept. DS2 is never touched: score it afterwards with
    `edge-ecg evaluate`. A --config file's missing keys take the built-in defaults (the
    DS1-only recipe), not the shipped configuration's.

    \b
    The LSTM reads the CNN's time steps within one window (variant (a), the default); set
    model.sequence_beats = K in the config for variant (b), where it reads the last K beats.

    \b
    The run folder holds: config.json (the full resolved configuration), model.keras
    (float), model_qat.keras (quantization-aware trained; what `edge-ecg convert` uses),
    qat_wrapped.h5 (the fake-quantised training model), metrics.json, curves.png, checkpoints/.

    \b
    Several databases: --train-data takes one database each (records are named db/record, so
    names never clash; any rate is resampled to the model's 180 Hz). Validation holds out whole
    patients of every database: train.val_records (db/record ids, bare names are MIT-BIH's), and
    for a database with none listed, train.val_fraction of its patients.

    \b
    Train on a cluster: run the same command on every machine with --strategy multi_worker
    and TF_CONFIG naming the cluster and this machine's place in it, e.g. on the first
      TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
                  "task": {"type": "worker", "index": 0}}'
    and index 1 on the second. Worker 0 (or a "chief" task) writes the run folder; the
    others train in a temporary folder that is removed. Each worker reads its own copy of
    the data; training beats stream from shard files on disk (train.feed), so memory does
    not grow with the corpus.

    \b
    Examples:
      edge-ecg train --out runs/a
      edge-ecg train --arch cnn --epochs 10 --no-qat --out runs/cnn --seed 1
      edge-ecg train --config my.toml --out runs/b --force
      edge-ecg train --out runs/long --resume      # again after a Ctrl-C or reboot: goes on
      edge-ecg train --train-data mitdb:DS1 --train-data svdb --data-root ../shared/data --out runs/multi
      edge-ecg train --init runs/a --train-data ~/my_holter --epochs 5 --out runs/mine
      edge-ecg train --strategy mirrored --out runs/gpus
      edge-ecg train --strategy multi_worker --out runs/cluster     # on each machine, TF_CONFIG set
    """
    from dataclasses import replace

    from edge_ecg.config import RunConfig, load_config

    if config_file is not None:
        config = load_config(config_file)
    elif init is not None:
        from edge_ecg.model.train import resolve_init

        from edge_ecg.model.run import RUN_CONFIG

        init_cfg = Path(init) / RUN_CONFIG if Path(init).is_dir() else Path(init).parent / RUN_CONFIG
        config = load_config(init_cfg) if init_cfg.is_file() else RunConfig()
        resolve_init(init, config)  # a missing or unfit model: one line before anything else
    else:
        from edge_ecg.stream.classifier_files import shipped_config

        config = shipped_config()
    from edge_ecg.model.train import resolve_config

    config = resolve_config(config, arch=arch, epochs=epochs, qat=qat, seed=seed)
    changes = {}
    if train_data:
        changes["data"] = tuple(train_data)
    if init is not None:
        changes["init"] = str(init)
    if changes:
        config = replace(config, train=replace(config.train, **changes))
    config = _with_strategy(config, click.get_current_context().meta.get(_STRATEGY_KEY))
    from edge_ecg.model.distribute import cluster_role

    role = cluster_role(config.train.strategy)  # a malformed TF_CONFIG: one line, nothing written
    if out is None:
        out = Path("runs") / f"{config.model.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    from edge_ecg.errors import DataError
    from edge_ecg.model.train import training_records

    try:  # before any slow work, once: every database found, records present, patients split, no DS2
        records = training_records(config, data, data_root, lead)
    except DataError as exc:
        if config_file is not None or init is not None or train_data or not config.train.data:
            raise
        raise DataError(f"{exc} (no options train the shipped model on {' + '.join(config.train.data)}: "
                        "--data-root DIR holds those folders; --train-data mitdb:DS1 trains on DS1 alone)") from None
    if role.is_chief and Path(out).exists() and Path(out).is_dir() and any(Path(out).iterdir()) and not force:
        raise click.ClickException(f"{out}: already exists; pass --force to replace it, or choose another --out")

    from edge_ecg.model.train import train_run

    echo = (lambda msg: None) if quiet else click.echo
    try:
        result = train_run(config, records.db_dir, out, nstdb_dir=noise_data, lead=lead, force=force,
                           resume=resume, progress=not quiet, echo=echo, records=records, role=role)
    except KeyboardInterrupt:
        raise click.ClickException(interrupted_message(resume)) from None
    m = result.metrics
    if not result.is_chief:
        last = m["history"][-1]
        click.echo(f"done: worker {role.index} of {role.workers}, {last['steps']} steps in its last epoch, loss "
                   f"{last['loss']:.4f} (the chief writes the run folder; {m['seconds']:.0f} s)")
        return
    best = m["qat"] or m["float"]
    click.echo(
        f"done: {result.run_dir} (validation macro-F1 {100 * (best['val']['macro_f1'] or 0):.2f}%, "
        f"{m['params']} parameters, {m['seconds']:.0f} s)"
    )


def _with_strategy(config, strategy: str | None):
    """``config`` with ``train.strategy`` set from ``--strategy`` (None keeps the config's)."""
    from dataclasses import replace

    return config if strategy is None else replace(config, train=replace(config.train, strategy=strategy))


def interrupted_message(resume: bool) -> str:
    """What a Ctrl-C during training leaves behind, and how to go on, in one line."""
    if resume:
        return ("interrupted: the finished epochs are kept; run the same command again (with --resume) to go on "
                "from the last one")
    return ("interrupted: nothing was kept (an existing --out is untouched); next time add --resume to keep "
            "progress after every epoch")
