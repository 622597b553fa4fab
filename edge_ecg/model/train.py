"""The training loop: record sets, patient-wise validation, imbalance handling, QAT, a run folder.

:func:`train_run` does, in order:

1. builds (or loads from cache) the beats of ``train.data``'s record sets (``mitdb:DS1`` when
   empty; resolved once, :func:`training_records`) and holds out whole patients (the records
   ``train.val_records``, else ``train.val_fraction`` of a database's patients) for validation;
2. trains the float model on freshly augmented windows each epoch, keeping the weights of
   the epoch with the best validation macro-F1 over N, S and V (EC57 statistics) and
   stopping after ``early_stopping_patience`` epochs without improvement;
3. with ``train.qat``, folds the batch norms, wraps the model for fake quantisation
   (:mod:`edge_ecg.model.qat`) and fine-tunes it for ``qat_epochs``, again keeping the best;
4. writes the run folder.

Training beats reach the model batch by batch through ``tf.data`` from per-record shard files
(``train.feed = shards``, :mod:`edge_ecg.beats.shards`), so memory does not grow with the corpus;
``train.feed = memory`` holds the whole beat set in RAM instead. Both make the same draws from
the same generator and give the same run. ``train.strategy`` runs the same loop under a
``tf.distribute`` strategy (:mod:`edge_ecg.model.distribute`); only the chief writes the run folder.

Run folder (its names are :mod:`edge_ecg.model.run`'s ``RUN_*``)::

    config.json        the full resolved RunConfig
    model.keras        the float tf_keras model (batch norm not folded)
    model_qat.keras    the QAT-trained weights in a plain BN-folded model: what `edge-ecg convert`
                       turns into int8 (by calibration, see edge_ecg.model.run.strip_qat)
    qat_wrapped.h5     the QAT model itself (fake-quant wrappers; load with run.load_keras_model)
    metrics.json       per-epoch history, best epochs, validation EC57 figures, timing, sizes
    curves.png         loss and validation macro-F1 per epoch
    checkpoints/       best and last weights of each phase

Determinism: ``train.seed`` seeds Python, NumPy and TensorFlow, TensorFlow runs with op
determinism and ``train.threads`` threads, and every epoch's order and augmentation are
drawn from ``(seed, phase, epoch)``; the same seed on the same machine gives the same run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from edge_ecg.beats.sampling import class_weights, epoch_order, in_run_beats
from edge_ecg.config import CLASSES, RunConfig, TrainConfig, to_json
from edge_ecg.errors import ConfigError, DataError, first_line
from edge_ecg.model.run import (
    RUN_CHECKPOINTS,
    RUN_CONFIG,
    RUN_CURVES,
    RUN_FLOAT_MODEL,
    RUN_METRICS,
    RUN_QAT_MODEL,
    RUN_QAT_WRAPPED,
)

log = logging.getLogger(__name__)



@dataclass
class TrainResult:
    """What :func:`train_run` made: the run folder and the metrics written to ``metrics.json``."""

    run_dir: Path
    metrics: dict
    is_chief: bool = True


# --------------------------------------------------------------------------- checks


def prepare_run_dir(out: str | Path, force: bool = False) -> Path:
    """Check that ``out`` may become a run folder; nothing is created or deleted.

    An existing non-empty ``out`` is refused unless ``force``, and with ``force`` only an
    earlier *run folder* (one holding ``config.json``) may be replaced; any other non-empty
    folder is never touched. The run is written elsewhere (:func:`staged_run_dir`) and
    replaces ``out`` only once complete.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"{out}: exists and is not a folder")
        if any(out.iterdir()):
            if not force:
                raise ConfigError(f"{out}: already exists; pass --force to replace it, or choose another --out")
            if not (out / RUN_CONFIG).is_file():
                raise ConfigError(f"{out}: exists and is not an edge-ecg run folder (no config.json); not replacing it")
    return out


def resume_dir(out: str | Path) -> Path:
    """The staging folder a resumable run of ``out`` writes into: ``.<name>.partial`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


@contextlib.contextmanager
def staged_run_dir(out: str | Path, force: bool = False, resume: bool = False):
    """Yield a new hidden sibling of ``out`` (with ``checkpoints/``) to write a run into.

    Only when the block ends normally is an earlier ``out`` (checked by
    :func:`prepare_run_dir`) moved aside and removed, and the new folder renamed to ``out``
    (renames within one folder: never a half-written run under that name). On an error or
    Ctrl-C the staging folder is removed and ``out`` is left exactly as it was.

    With ``resume`` the staging folder is :func:`resume_dir` (reused when an interrupted run
    left it) and it is kept on an error or Ctrl-C, so the next ``resume`` continues from the
    last finished epoch (see :class:`_Phase`).
    """
    out = prepare_run_dir(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            staging = resume_dir(out)
            staging.mkdir(exist_ok=True)
        else:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create the run folder ({exc.strerror or exc})") from None
    try:
        (staging / RUN_CHECKPOINTS).mkdir(exist_ok=True)
        yield staging
    except BaseException:
        if not resume:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / out.name)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def split_patients(record_sets, val_records, fraction: float) -> tuple[list[str], list[str], dict[str, str]]:
    """Training and validation record ids (``db/record``) of several record sets, patient-wise.

    ``val_records`` may name ids (``svdb/800``) or bare MIT-BIH names. A set none of whose
    records is named gives the first ``fraction`` of its patients, ordered by a hash of the
    patient id (stable across runs and machines), to validation. Every record of a validation
    patient is held out. Returns ``(train_ids, val_ids, patient_of)``.
    """
    import hashlib

    from edge_ecg.records.aami import DS2  # the one DS2 leak check

    patient_of: dict[str, str] = {}
    for rs in record_sets:
        patient_of.update(rs.patients())
        if rs.database.name == "mitdb":
            leaked = [r for r in rs.records if r in DS2]
            if leaked:
                raise ConfigError(f"training data includes DS2 record mitdb/{leaked[0]}: DS2 is kept for the final "
                                  "report only")
    named = {r if "/" in r else f"mitdb/{r}" for r in val_records}
    val_patients = {patient_of[r] for r in named if r in patient_of}
    for rs in record_sets:
        ids = rs.ids()
        if any(r in named for r in ids):
            continue
        patients = sorted(set(rs.patients().values()), key=lambda p: hashlib.sha256(p.encode()).hexdigest())
        if len(patients) < 2:
            continue  # a single patient stays in training (its database is then not validated on)
        k = min(len(patients) - 1, max(1, round(fraction * len(patients))))
        val_patients.update(patients[:k])
    ids = [r for rs in record_sets for r in rs.ids()]
    val = [r for r in ids if patient_of[r] in val_patients]
    train = [r for r in ids if patient_of[r] not in val_patients]
    if not val:
        raise ConfigError("no validation records: name some in train.val_records (db/record) or train on more patients")
    if not train:
        raise ConfigError("every training record is a validation record; leave some for training")
    return train, val, patient_of


@dataclass(frozen=True)
class TrainingRecords:
    """The records a run trains and validates on, resolved and checked before any slow work.

    ``train_names`` / ``val_names`` are ``db/record`` ids of ``record_sets`` (``patient_of`` maps
    each id to its patient; for beats made elsewhere, their record names and no sets).
    ``db_dir`` is the MIT-BIH folder (or the first set's folder): noise is looked for beside it."""

    db_dir: Path | None
    train_names: list[str]
    val_names: list[str]
    record_sets: list | None = None
    patient_of: dict | None = None
    lead: str | None = None

    def load(self, config: RunConfig, progress: bool = True) -> tuple:
        """``(train, validation)`` beats, as :func:`load_training_beats` makes them for ``config``'s feed."""
        return load_training_beats(self.record_sets, self.val_names, config, progress)


def training_records(config: RunConfig, db_dir: str | Path | None, data_root: str | Path | None = None,
                     lead: str | None = None) -> TrainingRecords:
    """What :func:`train_run` trains on: the record sets of ``config.train.specs()`` (``train.data``;
    ``mitdb:DS1`` when empty) split patient-wise (:func:`split_patients`). ``mitdb`` is ``db_dir``
    when given; other databases are found by :func:`edge_ecg.records.locate.find_database`'s rule
    (``data_root``, beside ``db_dir``, ...). Raises a one-line :class:`ConfigError` /
    :class:`DataError` for missing data or a DS2 leak: call it once, before any slow work."""
    from edge_ecg.records.sets import resolve_specs

    tc = config.train
    db_dir = Path(db_dir) if db_dir is not None else None
    sets = resolve_specs(tc.specs(), data_root=data_root, lead=lead, folders=None if db_dir is None else {"mitdb": db_dir})
    train, val, patient_of = split_patients(sets, tc.val_records, tc.val_fraction)
    return TrainingRecords(db_dir or sets[0].folder, train, val, sets, patient_of, lead)


# --------------------------------------------------------------------------- imbalance


def focal_loss(gamma: float):
    """Sparse focal loss ``-(1 - p_t) ** gamma * log(p_t)`` (class weights come as sample weights)."""
    from edge_ecg.model._tf import tf

    def loss(y_true, y_prob):
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        p_t = tf.gather(y_prob, y_true, axis=1, batch_dims=1)
        p_t = tf.clip_by_value(p_t, 1e-7, 1.0)
        return -tf.pow(1.0 - p_t, gamma) * tf.math.log(p_t)

    return loss


# --------------------------------------------------------------------------- scoring


def validation_scores(probs: np.ndarray, beats) -> dict:
    """EC57 gross figures (fractions) of ``probs`` ``(n, 5)`` on BeatSet ``beats`` at reference positions.

    Returns ``macro_f1`` (N, S, V), ``accuracy``, per class ``se``/``ppv``/``f1`` and ``loss``
    (mean cross-entropy, unweighted).
    """
    from edge_ecg.evaluate.report import score_predictions

    report = score_predictions(beats.record, beats.sample, beats.y, probs, fs=beats.window.fs)
    g = report.gross
    p_true = np.clip(probs[np.arange(len(beats)), beats.y], 1e-7, 1.0)
    out = {"macro_f1": g["macro_f1"], "accuracy": g["accuracy"], "loss": float(-np.log(p_true).mean())}
    for c in ("N", "S", "V", "F"):
        out[c] = {k: g[c][k] for k in ("se", "ppv", "f1")}
    return _nan_to_none(out)


def _nan_to_none(obj):
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


# --------------------------------------------------------------------------- loop


def _inputs(X: np.ndarray, rr: np.ndarray, use_rr: bool, idx: np.ndarray | None = None) -> dict:
    """The model's feed: windows ``X`` ``(n, L)`` (and RR ``(n, F)``), or for a sequence model
    the rows ``idx`` ``(m, K)`` of :func:`edge_ecg.beats.sequence_index` gathered from them."""
    if idx is not None:
        X, rr = X[idx], rr[idx]
    feed = {"beat": X[..., None]}
    if use_rr:
        feed["rr"] = rr
    return feed


class _Phase:
    """One training phase (float or QAT): epochs, validation, best weights, early stopping."""

    def __init__(self, name, model, train, val, config, noise, weights, run_dir, progress, echo, seed_offset,
                 strategy=None, eval_model=None, scale=None):
        self.name, self.model, self.train, self.val = name, model, train, val
        self.strategy, self.eval_model = strategy, eval_model
        self.scale = scale
        self.config, self.noise, self.weights = config, noise, weights
        self.run_dir, self.progress, self.echo = run_dir, progress, echo
        self.seed_offset = seed_offset
        k = config.model.sequence_beats
        if k:  # variant (b): each beat with the k - 1 before it, within its record
            from edge_ecg.beats.sequence import sequence_index

            self.train_idx, self.val_idx = sequence_index(train.record, k), sequence_index(val.record, k)
        else:
            self.train_idx = self.val_idx = None
        self.run_period = None  # each training beat's synthetic-run period (augment.run_prob > 0)
        if config.augment.enabled and config.augment.run_prob > 0:
            from edge_ecg.beats.augment import run_periods

            self.run_period = run_periods(train.record, train.sample, train.y, config.window)
        self.history: list[dict] = []
        self.best_f1, self.best_epoch = -1.0, -1
        self.resume = False  # continue from checkpoints/<phase>_progress.json when it exists
        self.resumed_at: int | None = None  # the first epoch this process ran after resuming

    def run(self, epochs: int) -> dict:
        tc, use_rr = self.config.train, self.config.model.use_rr
        ckpt = self.run_dir / RUN_CHECKPOINTS
        best_path, last_path = ckpt / f"{self.name}_best.weights.h5", ckpt / f"{self.name}_last.weights.h5"
        patience = tc.early_stopping_patience
        start, done, best_weights = 0, False, None
        if self.resume:
            start, done, best_weights = self._restore(ckpt, best_path)
        for epoch in range(start, 0 if done else epochs):
            t0 = time.perf_counter()
            rng = np.random.default_rng([tc.seed, self.seed_offset, epoch])
            order = epoch_order(self.train.y, rng, tc.imbalance, self.weights, self.scale)
            if tc.feed == "memory" and self.strategy is None:
                fit = self._fit_arrays(order, rng, epoch, epochs)
            else:
                fit = self._fit_stream(order, rng, epoch, epochs)
            model = self.model
            if self.eval_model is not None:  # under a strategy: predict with a plain local copy
                self.eval_model.set_weights(self.model.get_weights())
                model = self.eval_model
            probs = model.predict(_inputs(self.val.X, self.val.rr, use_rr, self.val_idx), batch_size=1024, verbose=0)
            scores = validation_scores(probs, self.val)
            row = {"phase": self.name, "epoch": epoch + 1, "loss": float(fit.history["loss"][-1]),
                   "steps": int(fit.params.get("steps") or 0), "val": scores, "seconds": time.perf_counter() - t0}
            self.history.append(row)
            self.model.save_weights(last_path)
            f1 = scores["macro_f1"] or 0.0
            improved = f1 > self.best_f1
            if improved:
                self.best_f1, self.best_epoch = f1, epoch + 1
                self.model.save_weights(best_path)
                best_weights = self.model.get_weights()
            self.echo(
                f"{self.name} epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, val loss {scores['loss']:.4f}, "
                f"val macro-F1 {100 * f1:.2f}% (S Se {_pct(scores['S']['se'])}, +P {_pct(scores['S']['ppv'])}; "
                f"V Se {_pct(scores['V']['se'])}, +P {_pct(scores['V']['ppv'])}), {row['seconds']:.0f} s"
                + (" *" if improved else "")
            )
            stop = epoch + 1 - self.best_epoch >= patience
            if self.resume:
                self._save_progress(ckpt, epoch + 1, done=stop or epoch + 1 == epochs)
            if stop:
                self.echo(f"{self.name}: no improvement for {patience} epochs; stopping early")
                break
        self.model.set_weights(best_weights)  # as saved in best_path (an .h5 cannot be loaded into sync-on-read variables)
        best = self.history[self.best_epoch - 1]
        return {"best_epoch": self.best_epoch, "epochs_run": len(self.history), "val": best["val"]}

    def _checkpoint(self):
        from edge_ecg.model._tf import tf

        return tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer)

    def _save_progress(self, ckpt: Path, epochs_done: int, done: bool) -> None:
        """After an epoch: the model and optimizer state (weights, Adam moments, step count)
        and the phase's history, so an interrupted run continues from here.

        The state goes to a new numbered prefix and ``<phase>_progress.json`` (written by
        rename) names it, so a run killed at any moment resumes from a consistent pair.
        """
        prefix = ckpt / f"{self.name}_state-{epochs_done}"
        self._checkpoint().write(str(prefix))
        progress = {"epochs_done": epochs_done, "done": done, "best_f1": self.best_f1, "best_epoch": self.best_epoch,
                    "state": prefix.name, "history": _nan_to_none(self.history)}
        tmp = ckpt / f".{self.name}_progress.json.tmp"
        tmp.write_text(json.dumps(progress, indent=1) + "\n")
        tmp.replace(ckpt / f"{self.name}_progress.json")
        for old in ckpt.glob(f"{self.name}_state-*"):
            if not old.name.startswith(prefix.name + "."):
                old.unlink(missing_ok=True)

    def _restore(self, ckpt: Path, best_path: Path) -> tuple[int, bool, list | None]:
        """Continue an interrupted phase: ``(first epoch to run, phase finished, best weights)``.

        Weights, optimizer state and the epochs' random draws (seeded by epoch) are restored
        exactly; TensorFlow's dropout generator is not, so a resumed run is a valid run of the
        same configuration but not bit-identical to an uninterrupted one (``metrics.json``
        records where it resumed).
        """
        path = ckpt / f"{self.name}_progress.json"
        if not path.is_file():
            return 0, False, None
        saved = json.loads(path.read_text())
        self.history, self.best_f1, self.best_epoch = saved["history"], saved["best_f1"], saved["best_epoch"]
        self.model.load_weights(best_path)
        best_weights = self.model.get_weights()
        self.model.optimizer.build(self.model.trainable_variables)
        self._checkpoint().read(str(ckpt / saved["state"])).assert_existing_objects_matched()
        self.resumed_at = None if saved["done"] else saved["epochs_done"] + 1
        self.echo(f"{self.name}: resuming after epoch {saved['epochs_done']} (best so far: epoch {self.best_epoch}, "
                  f"val macro-F1 {100 * self.best_f1:.2f}%)" + (", phase complete" if saved["done"] else ""))
        return saved["epochs_done"], bool(saved["done"]), best_weights

    def _fit_arrays(self, order: np.ndarray, rng: np.random.Generator, epoch: int, epochs: int):
        """One epoch from the beat set in memory: every window of the epoch augmented at once."""
        from edge_ecg.beats.augment import apply_augmentation, augment_rr, augment_windows, draw_augmentation, run_rr

        tc, use_rr = self.config.train, self.config.model.use_rr
        aug, window = self.config.augment, self.config.window
        if self.train_idx is None:
            period = None if self.run_period is None else self.run_period[order]
            draws = draw_augmentation(len(order), rng, aug, window, self.noise, period)
            X = apply_augmentation(self.train.X[order], draws, np.arange(len(order)), aug, window, self.noise)
            rr = augment_rr(self.train.rr, self.train.record, self.train.sample, rng, aug, window)[order]
            if draws.run is not None:
                rr = run_rr(rr, draws.run > 0, window.rr_features)
            feed = _inputs(X, rr, use_rr)
        else:  # augment every beat once, then gather each drawn beat's sequence
            X = augment_windows(self.train.X, rng, aug, window, self.noise)
            rr = augment_rr(self.train.rr, self.train.record, self.train.sample, rng, aug, window)
            feed = _inputs(X, rr, use_rr, self.train_idx[order])
        y = self.train.y[order]
        sw = None if tc.imbalance in ("balanced_sampling", "none") else self.weights[y].astype(np.float32)
        return self.model.fit(
            feed, y, sample_weight=sw, batch_size=tc.batch_size,
            epochs=1, shuffle=False, verbose=0, callbacks=[_ProgressBar(self, epoch, epochs, len(y))],
        )

    def _fit_stream(self, order: np.ndarray, rng: np.random.Generator, epoch: int, epochs: int):
        """One epoch streamed through ``tf.data``, batch by batch (windows read from shards when
        the training set is a :class:`~edge_ecg.beats.shards.ShardedBeats`).

        The epoch's random draws (order, augmentation, RR) are made first, from the same
        generator in the same order as :meth:`_fit_arrays`, so both feed the same batches.
        """
        from edge_ecg.beats.augment import apply_augmentation, augment_rr, draw_augmentation, run_rr
        from edge_ecg.model.distribute import epoch_batches, epoch_dataset

        tc, aug, window, use_rr = self.config.train, self.config.augment, self.config.window, self.config.model.use_rr
        seq = self.train_idx is not None
        period = None if self.run_period is None or seq else self.run_period[order]
        draws = draw_augmentation(len(self.train) if seq else len(order), rng, aug, window, self.noise, period)
        rr = augment_rr(self.train.rr, self.train.record, self.train.sample, rng, aug, window)
        sw = None if tc.imbalance in ("balanced_sampling", "none") else self.weights.astype(np.float32)

        def make_batch(positions: np.ndarray) -> tuple:
            beats = order[positions]
            if seq:  # each drawn beat with the ones before it; every beat augmented once per epoch
                rows = self.train_idx[beats]
                used, at = np.unique(rows, return_inverse=True)
                X = apply_augmentation(_windows(self.train, used), draws, used, aug, window, self.noise)
                feed = _inputs(X, rr[used], use_rr, at.reshape(rows.shape))
            else:
                X = apply_augmentation(_windows(self.train, beats), draws, positions, aug, window, self.noise)
                rr_b = rr[beats] if draws.run is None else run_rr(rr[beats], draws.run[positions] > 0, window.rr_features)
                feed = _inputs(X, rr_b, use_rr)
            y = self.train.y[beats]
            return (feed, y) if sw is None else (feed, y, sw[y])

        replicas = self.strategy.num_replicas_in_sync if self.strategy is not None else 1
        batches = epoch_batches(len(order), tc.batch_size, replicas)
        dataset = epoch_dataset(make_batch, batches, _signature(make_batch(batches[0][:1])), self.strategy)
        n = sum(len(b) for b in batches)
        return self.model.fit(dataset, epochs=1, steps_per_epoch=len(batches), verbose=0,
                              callbacks=[_ProgressBar(self, epoch, epochs, n)])


def _windows(beats, index: np.ndarray) -> np.ndarray:
    """Windows ``(m, L)`` float32 of beats ``index`` from a BeatSet (memory) or ShardedBeats (disk)."""
    return beats.windows(index) if hasattr(beats, "windows") else beats.X[index]


def _signature(batch):
    """``tf.TensorSpec``s (batch axis free) matching a batch of numpy arrays."""
    from edge_ecg.model._tf import tf

    def spec(a):
        return tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype))

    return tf.nest.map_structure(spec, batch)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _progress_callback_base():
    from edge_ecg.model._tf import keras

    return keras.callbacks.Callback


class _ProgressBar(_progress_callback_base()):
    """A tqdm bar over one epoch's batches (shown only when the phase has ``progress``)."""

    def __init__(self, phase, epoch, epochs, n):
        super().__init__()
        self.phase, self.epoch, self.epochs, self.n = phase, epoch, epochs, n
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.phase.progress:
            from tqdm.auto import tqdm

            steps = -(-self.n // self.phase.config.train.batch_size)
            self.bar = tqdm(total=steps, desc=f"{self.phase.name} {self.epoch + 1}/{self.epochs}", unit="batch",
                            leave=False)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()


def _compile(model, config: RunConfig, lr: float, steps: int):
    from edge_ecg.model._tf import keras

    tc = config.train
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.05)
    loss = focal_loss(tc.focal_gamma) if tc.imbalance == "focal" else "sparse_categorical_crossentropy"
    ema = {"use_ema": True, "ema_momentum": tc.ema_momentum} if tc.ema_momentum > 0 else {}
    # with EMA, each fit() call (one epoch) ends by writing the average into the model
    model.compile(optimizer=keras.optimizers.Adam(schedule, **ema), loss=loss)


def seed_everything(seed: int, threads: int) -> None:
    """Seed Python, NumPy and TensorFlow, fix TF's thread counts and turn on op determinism."""
    from edge_ecg.model._tf import keras, set_threads, tf

    set_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_run(
    config: RunConfig,
    db_dir: str | Path,
    out: str | Path,
    *,
    nstdb_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    lead: str | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    beats: tuple | None = None,
    records: TrainingRecords | None = None,
    role=None,
) -> TrainResult:
    """Train ``config`` and write the run folder ``out``.

    The beats are those of ``records`` (:func:`training_records`, resolved by the caller), else
    of ``config.train.data``'s record sets resolved here (``mitdb`` is ``db_dir`` when given, other
    registry names are looked for in ``data_root`` first). ``lead`` reads that lead from every
    record (default: the model's ``window.lead`` where a record has it, else its database's default lead).

    ``nstdb_dir`` is the noise database (found beside ``db_dir`` when not given; only needed
    when ``augment.noise_prob > 0``). Raises :class:`ConfigError`/:class:`DataError` with one
    line for bad input before any training starts. ``beats`` = ``(train, validation)`` trains
    on beat sets made elsewhere (a :class:`~edge_ecg.beats.dataset.BeatSet` or, for training,
    a :class:`~edge_ecg.beats.shards.ShardedBeats`) instead of reading ``config.train.data``.

    ``resume`` writes the run into ``.<out>.partial`` (:func:`resume_dir`) and saves each phase's
    state after every epoch; a later call with ``resume`` and the same configuration continues
    from the last finished epoch (only without a ``train.strategy``).

    Under ``train.strategy = multi_worker`` only the chief writes ``out`` (``role``: the
    :func:`~edge_ecg.model.distribute.cluster_role` a caller has read already); every other worker
    trains in a temporary folder that is removed when it is done (:mod:`edge_ecg.model.distribute`).
    """
    from edge_ecg.model.distribute import cluster_role

    t_start = time.perf_counter()
    db_dir = Path(db_dir) if db_dir is not None else None
    tc = config.train
    if role is None:  # a malformed TF_CONFIG stops here, before anything is written
        role = cluster_role(tc.strategy)
    if resume and tc.strategy != "default":
        raise ConfigError(f"--resume works only with train.strategy default, not {tc.strategy!r}")
    if beats is not None:
        records = TrainingRecords(db_dir, *(list(dict.fromkeys(b.record.tolist())) for b in beats), lead=lead)
    elif records is None:
        records = training_records(config, db_dir, data_root=data_root, lead=lead)
    db_dir = records.db_dir
    init_path = resolve_init(tc.init, config) if tc.init else None
    noise = None
    aug = config.augment
    if aug.enabled and aug.noise_prob > 0:
        from edge_ecg.beats.augment import find_nstdb, load_noise_bank

        noise = load_noise_bank(find_nstdb(db_dir, nstdb_dir), config.window, aug)
    run = _RunInputs(config, records, beats, noise, init_path, role, progress, echo, t_start, resume)
    if not role.is_chief:  # a worker trains in a scratch folder; the chief writes `out`
        metrics = _write_run(run, _worker_dir())
        echo(f"worker {role.index} of {role.workers} done; the chief writes the run folder ({metrics['seconds']:.0f} s)")
        return TrainResult(run_dir=Path(out), metrics=metrics, is_chief=False)
    with staged_run_dir(out, force, resume) as run_dir:  # a complete run replaces `out`, or nothing does
        metrics = _write_run(run, run_dir)
    echo(f"run folder: {out} ({metrics['seconds']:.0f} s)")
    return TrainResult(run_dir=Path(out), metrics=metrics)


@dataclass
class _RunInputs:
    """What :func:`train_run` checked and resolved before training: everything :func:`_write_run` needs."""

    config: RunConfig
    records: TrainingRecords
    beats: tuple | None
    noise: object
    init_path: Path | None
    role: object
    progress: bool
    echo: Callable[[str], None]
    t_start: float
    resume: bool = False


def _write_run(run: _RunInputs, run_dir: Path) -> dict:
    """The training itself, written into ``run_dir`` (a staging folder, or a worker's scratch
    folder, removed here); returns the metrics."""
    config, tc, beats, echo, progress = run.config, run.config.train, run.beats, run.echo, run.progress
    records, noise = run.records, run.noise
    record_sets, val_names, train_names = records.record_sets, records.val_names, records.train_names
    if run.resume and (run_dir / RUN_CONFIG).is_file() and (run_dir / RUN_CONFIG).read_text() != to_json(config):
        raise ConfigError(f"{run_dir}: an interrupted run of another configuration; remove that folder to start "
                          "afresh, or resume with the configuration it was started with")
    if config.augment.run_prob > 0 and config.model.sequence_beats:
        raise ConfigError("augment.run_prob needs model.sequence_beats = 0 (a synthetic run is drawn in one window)")
    (run_dir / RUN_CONFIG).write_text(to_json(config))

    from edge_ecg.model.arch import build_model, count_params
    from edge_ecg.model.distribute import make_strategy
    from edge_ecg.model.qat import quantize_model
    from edge_ecg.model.run import strip_qat

    seed_everything(tc.seed, tc.threads)
    strategy = make_strategy(tc.strategy)
    if beats is not None and tc.feed == "auto":  # beats made elsewhere: the feed their kind needs
        from edge_ecg.beats.shards import ShardedBeats

        feed, why = ("shards" if isinstance(beats[0], ShardedBeats) else "memory"), "auto: the beats given"
    else:
        feed, why = resolve_feed(tc, ecg_seconds(record_sets) if tc.feed == "auto" else 0.0, available_memory_bytes())
    if feed != tc.feed:  # what `auto` chose runs; config.json keeps what was asked
        config = replace(config, train=replace(tc, feed=feed))
        tc = config.train
        echo(f"feed: {feed} ({why})")
    if beats is None:
        beats = records.load(config, progress)
    train, val = beats
    if len(train) == 0 or len(val) == 0:
        raise DataError("the training or validation records hold no annotated beats")
    weights = class_weights(train.y, tc.class_weight_power, tc.max_class_weight)
    if tc.imbalance == "none":
        weights = np.ones(len(CLASSES))
    scale = None
    if record_sets is not None:
        db_weight = {rs.name: rs.weight for rs in record_sets}
        if len(set(db_weight.values())) > 1:
            scale = np.array([db_weight[r.split("/", 1)[0]] for r in train.record], dtype=np.float64)
        for rs in record_sets:
            mine = np.char.startswith(train.record.astype(str), rs.name + "/")
            echo(f"  {rs.name}: {len(rs.records)} records ({len(set(rs.patients().values()))} patients), "
                 f"{int(mine.sum())} training beats, sampling weight {rs.weight:g}, lead "
                 f"{rs.lead or 'by the database rule'}")
    if tc.in_run_weight != 1:
        in_run = in_run_beats(train.record, train.sample, train.y, config.window.fs)
        scale = (np.ones(len(train)) if scale is None else scale) * np.where(in_run, tc.in_run_weight, 1.0)
        echo(f"  S beats inside runs: {int(in_run.sum())} of {int((train.y == CLASSES.index('S')).sum())}, "
             f"sampling weight x{tc.in_run_weight:g}")
    echo(f"train: {len(train)} beats from {len(train_names)} records {train.class_counts()}")
    echo(f"validation: {len(val)} beats from records {', '.join(val_names)} {val.class_counts()}")

    with _scope(strategy):
        model = build_model(config.model, config.window)
        if run.init_path is not None:
            load_init_weights(model, run.init_path)
        steps = -(-len(train) // tc.batch_size)
        _compile(model, config, tc.learning_rate, steps * tc.epochs)
    if run.init_path is not None:
        echo(f"starting from the weights of {run.init_path}")
    echo(f"model {config.model.arch}: {count_params(model)} parameters; imbalance: {tc.imbalance} "
         f"(class weights {', '.join(f'{c} {w:.2f}' for c, w in zip(CLASSES, weights))})")
    float_phase = _Phase("float", model, train, val, config, noise, weights, run_dir, progress, echo, 0, strategy,
                         None if strategy is None else build_model(config.model, config.window), scale)
    float_phase.resume = run.resume
    t0 = time.perf_counter()
    float_summary = float_phase.run(tc.epochs)
    float_summary["seconds"] = time.perf_counter() - t0
    save_clean(model, config, run_dir / RUN_FLOAT_MODEL)
    history = list(float_phase.history)

    qat_summary = None
    if tc.qat and tc.qat_epochs > 0:
        t0 = time.perf_counter()
        with _scope(strategy):
            qat_model = quantize_model(model, config.model, config.window, lstm=tc.qat_lstm)
            _compile(qat_model, config, tc.qat_learning_rate, steps * tc.qat_epochs)
        qat_eval = None if strategy is None else quantize_model(model, config.model, config.window, lstm=tc.qat_lstm)
        qat_phase = _Phase("qat", qat_model, train, val, config, noise, weights, run_dir, progress, echo, 1, strategy,
                           qat_eval, scale)
        qat_phase.best_epoch = 0  # patience counts from the start of QAT
        qat_phase.resume = run.resume
        qat_summary = qat_phase.run(tc.qat_epochs)
        qat_summary["seconds"] = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy": .keras cannot hold QAT wrappers
            qat_model.save(run_dir / RUN_QAT_WRAPPED, include_optimizer=False)
        strip_qat(qat_model).save(run_dir / RUN_QAT_MODEL)
        history += qat_phase.history

    metrics = {
        "arch": config.model.arch,
        "params": count_params(model),
        "train_records": train_names,
        "val_records": val_names,
        "train_class_counts": train.class_counts(),
        "val_class_counts": val.class_counts(),
        "class_weights": dict(zip(CLASSES, map(float, weights))),
        "noise_augmentation": None if noise is None else {"types": list(noise.tracks), "minutes": noise.minutes},
        "data": None if record_sets is None else [rs.describe() for rs in record_sets],
        "val_patients": None if records.patient_of is None else sorted({records.patient_of[r] for r in val_names}),
        "init": None if run.init_path is None else str(run.init_path),
        "float": float_summary,
        "qat": qat_summary,
        "history": history,
        "strategy": {"name": tc.strategy, "workers": run.role.workers,
                     "replicas": 1 if strategy is None else int(strategy.num_replicas_in_sync)},
        "feed": tc.feed,
        "resumed": [{"phase": p.name, "epoch": p.resumed_at} for p in (float_phase, qat_phase if qat_summary else None)
                    if p is not None and p.resumed_at is not None],
        "seconds": time.perf_counter() - run.t_start,
    }
    if not run.role.is_chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        return metrics
    (run_dir / RUN_METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_curves(history, run_dir / RUN_CURVES)
    return metrics


def resolve_init(init: str | Path, config: RunConfig) -> Path:
    """The float model file ``train.init`` names (a run folder's ``model.keras`` or a ``.keras``
    file with ``config.json`` beside it), after checking that it was trained with the same window
    and inputs as ``config``; a one-line :class:`ConfigError` otherwise."""
    from edge_ecg.config import load_config, to_dict
    from edge_ecg.errors import ModelError

    path = Path(init).expanduser()
    if path.is_dir():
        path = path / RUN_FLOAT_MODEL
    if not path.is_file() or path.suffix.lower() != ".keras":
        raise ModelError(f"--init {init}: give a run folder (with model.keras) or a .keras file")
    cfg_path = path.parent / RUN_CONFIG
    if not cfg_path.is_file():
        raise ModelError(f"--init {init}: no config.json beside {path.name} (needed to check the window)")
    theirs = load_config(cfg_path)
    for part in ("window", "model"):
        a, b = to_dict(getattr(theirs, part)), to_dict(getattr(config, part))
        diff = [k for k in a if a[k] != b.get(k)]
        if diff:
            k = diff[0]
            raise ConfigError(f"--init {init}: its {part}.{k} is {a[k]!r} but this run's is {b.get(k)!r}; "
                              f"fine-tuning needs the same window and network (train without --config to use its own)")
    return path


def load_init_weights(model, path: Path) -> None:
    """Copy the weights of the float model at ``path`` into ``model`` (same architecture)."""
    from edge_ecg.model.run import load_keras_model

    source = load_keras_model(path)
    try:
        model.set_weights(source.get_weights())
    except ValueError as exc:
        raise ConfigError(f"--init {path}: its weights do not fit this network ({first_line(exc, 120)})") from None


#: Resident bytes per training beat with ``train.feed = memory`` (windows, RR, the epoch's augmented
#: copy and TensorFlow's input buffers): the slope between DS1 (37,030 training beats, 1,395 MB peak)
#: and DS1 + 40 svdb records (132,170 beats, 3,233 MB) in tools/results/train_memory.json, rounded up.
MEMORY_FEED_BYTES_PER_BEAT = 20_000
#: ``feed = auto`` budgets beats for this many per second of ECG (180 beats/min, above any record's mean).
AUTO_FEED_BEATS_PER_SECOND = 3.0


def available_memory_bytes() -> int | None:
    """Memory the kernel says a new process can use (``MemAvailable``), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def ecg_seconds(record_sets) -> float:
    """Seconds of ECG in the records of ``record_sets`` (from their headers; nothing else is read)."""
    from edge_ecg.records.load import read_header

    total = 0.0
    for folder, name in [(rs.folder, r) for rs in record_sets for r in rs.records]:
        h = read_header(folder, name)
        fs = float(getattr(h, "fs", 0) or 0)
        n = float(getattr(h, "sig_len", 0) or 0)
        total += n / fs if fs > 0 else 0.0
    return total


def resolve_feed(train: TrainConfig, seconds: float, available: int | None) -> tuple[str, str]:
    """``(feed, why)``: ``train.feed``, or for ``auto`` the one that fits.

    ``auto`` is ``memory`` (the faster feed on one machine) under the default strategy when the
    beats of ``seconds`` of ECG (:data:`AUTO_FEED_BEATS_PER_SECOND`, :data:`MEMORY_FEED_BYTES_PER_BEAT`)
    need at most half the ``available`` memory (bytes; None: unknown, assumed to fit), else
    ``shards`` (streamed from disk; every distribution strategy uses it).
    """
    if train.feed != "auto":
        return train.feed, "train.feed"
    if train.strategy != "default":
        return "shards", f"auto: train.strategy {train.strategy} streams from shards"
    need = seconds * AUTO_FEED_BEATS_PER_SECOND * MEMORY_FEED_BYTES_PER_BEAT
    if available is None:
        return "memory", f"auto: about {need / 1e9:.1f} GB of beats; available memory unknown"
    if need <= available / 2:
        return "memory", f"auto: about {need / 1e9:.1f} GB of beats fit in {available / 1e9:.1f} GB available"
    return "shards", f"auto: about {need / 1e9:.1f} GB of beats would not fit in half of {available / 1e9:.1f} GB available"


def load_training_beats(record_sets, val_names: list[str], config: RunConfig, progress: bool = True) -> tuple:
    """``(train, validation)`` beats of the :class:`~edge_ecg.records.sets.RecordSet` s
    ``record_sets`` (ids ``db/record``, each set on its own lead): validation (the records
    ``val_names``) always as an in-memory BeatSet; training as one too with
    ``train.feed = memory``, else as :class:`~edge_ecg.beats.shards.ShardedBeats` (windows stay
    on disk)."""
    tc = config.train
    if tc.feed == "memory":
        from edge_ecg.beats.dataset import build_sets_beatset

        beats = build_sets_beatset(record_sets, config.window, progress=progress)
        is_val = np.isin(beats.record, val_names)
        return beats.subset(~is_val), beats.subset(is_val)
    from edge_ecg.beats.shards import build_shards, database_sources

    sources = [src for rs in record_sets
               for src in database_sources(rs.folder, rs.records, config.window, db=rs.name, lead=rs.lead,
                                              database=rs.database)]
    beats = build_shards(sources, config.window, progress=progress)
    is_val = np.isin(beats.record, val_names)
    return beats.subset(~is_val), beats.subset(is_val).load()


def _worker_dir() -> Path:
    """A non-chief worker's scratch run folder (removed when training ends, or at exit)."""
    import atexit
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="edge-ecg-worker-"))
    (path / RUN_CHECKPOINTS).mkdir()
    atexit.register(shutil.rmtree, path, True)
    return path


def _scope(strategy):
    """``strategy.scope()``, or a context that does nothing without a strategy."""
    from contextlib import nullcontext

    return nullcontext() if strategy is None else strategy.scope()


def save_clean(model, config: RunConfig, path: str | Path) -> Path:
    """Save the float ``model``'s weights in a fresh, uncompiled copy (no optimizer, no custom loss)."""
    from edge_ecg.model.arch import build_model

    clean = build_model(config.model, config.window)
    clean.set_weights(model.get_weights())
    clean.save(path)
    return Path(path)


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Training loss, validation loss and validation macro-F1 per epoch (float then QAT) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = np.arange(1, len(history) + 1)
    phases = [h["phase"] for h in history]
    ax1.plot(x, [h["loss"] for h in history], label="train loss (weighted, augmented)")
    ax1.plot(x, [h["val"]["loss"] for h in history], label="validation loss")
    ax2.plot(x, [_percent(h["val"]["macro_f1"]) for h in history], label="macro-F1 (N,S,V)")
    for c in ("S", "V"):  # a class the validation records lack has no F1: not drawn, said in the legend
        f1 = [_percent(h["val"][c]["f1"]) for h in history]
        ax2.plot(x, f1, label=f"{c} F1" if any(v == v for v in f1) else f"{c} F1 (no {c} beats in validation)",
                 alpha=0.7)
    if "qat" in phases:
        start = phases.index("qat") + 0.5
        for ax in (ax1, ax2):
            ax.axvline(start, color="grey", ls="--", lw=1)
            ax.text(start, ax.get_ylim()[1], " QAT", va="top", color="grey")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation (held-out DS1 records), %")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def resolve_config(config: RunConfig, **overrides) -> RunConfig:
    """``config`` with CLI overrides applied (``arch``, ``epochs``, ``qat``, ``seed``; None keeps)."""
    model, train = config.model, config.train
    if overrides.get("arch") is not None:
        model = replace(model, arch=overrides["arch"])
    changes = {k: overrides[k] for k in ("epochs", "qat", "seed") if overrides.get(k) is not None}
    if changes:
        train = replace(train, **changes)
    return replace(config, model=model, train=train)



def _percent(f1) -> float:
    """A validation F1 (0-1, None when undefined) in % for a curve; NaN (a gap) when undefined."""
    return float("nan") if f1 is None else 100.0 * f1
