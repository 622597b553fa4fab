"""The training loop: DS1 only, patient-wise validation, imbalance handling, QAT, a run folder.

:func:`train_run` does, in order:

1. builds (or loads from cache) the beat set of ``train.records`` (DS1 by default) and holds
   out the whole records ``train.val_records`` for validation (patient-wise);
2. trains the float model on freshly augmented windows each epoch, keeping the weights of
   the epoch with the best validation macro-F1 over N, S and V (EC57 statistics) and
   stopping after ``early_stopping_patience`` epochs without improvement;
3. with ``train.qat``, folds the batch norms, wraps the model for fake quantisation
   (:mod:`edge_ecg.model.qat`) and fine-tunes it for ``qat_epochs``, again keeping the best;
4. writes the run folder.

Run folder::

    config.json        the full resolved RunConfig
    model.keras        the float tf_keras model (batch norm not folded)
    model_qat.keras    the QAT-trained weights in a plain BN-folded model: what `edge-ecg convert`
                       turns into int8 (by calibration, see edge_ecg.model.qat.strip_qat)
    qat_wrapped.h5     the QAT model itself (fake-quant wrappers; load with qat.load_qat_model)
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

from edge_ecg.config import CLASSES, RunConfig, to_json
from edge_ecg.errors import ConfigError, DataError
from edge_ecg.records.aami import DS1, DS2

log = logging.getLogger(__name__)

RUN_FILES = ("config.json", "model.keras", "model_qat.keras", "qat_wrapped.h5", "metrics.json", "curves.png")


@dataclass
class TrainResult:
    """What :func:`train_run` made: the run folder and the metrics written to ``metrics.json``."""

    run_dir: Path
    metrics: dict


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
            if not (out / "config.json").is_file():
                raise ConfigError(f"{out}: exists and is not an edge-ecg run folder (no config.json); not replacing it")
    return out


@contextlib.contextmanager
def staged_run_dir(out: str | Path, force: bool = False):
    """Yield a new hidden sibling of ``out`` (with ``checkpoints/``) to write a run into.

    Only when the block ends normally is an earlier ``out`` (checked by
    :func:`prepare_run_dir`) moved aside and removed, and the new folder renamed to ``out``
    (renames within one folder: never a half-written run under that name). On an error or
    Ctrl-C the staging folder is removed and ``out`` is left exactly as it was.
    """
    out = prepare_run_dir(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create the run folder ({exc.strerror or exc})") from None
    try:
        (staging / "checkpoints").mkdir()
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / out.name)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_records(db_dir: str | Path, config: RunConfig) -> tuple[list[str], list[str]]:
    """Training and validation record names, after checking they exist and hold no DS2 record."""
    db_dir = Path(db_dir)
    records = list(config.train.records) or list(DS1)
    leaked = [r for r in records if r in DS2]
    if leaked:
        raise ConfigError(f"train.records includes DS2 record {leaked[0]}: DS2 is kept for the final report only")
    missing = [r for r in records if not (db_dir / f"{r}.hea").is_file()]
    if missing:
        what = "DS1 records" if len(missing) == len(records) else "training records"
        raise DataError(f"{db_dir}: no {what} {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                        f"({len(missing)} of {len(records)} missing); point --data at the mitdb folder")
    val = [r for r in config.train.val_records if r in records]
    if not val:
        raise ConfigError("none of train.val_records is among train.records: validation needs held-out records")
    train = [r for r in records if r not in val]
    if not train:
        raise ConfigError("every training record is a validation record; leave some for training")
    return train, val


# --------------------------------------------------------------------------- imbalance


def class_weights(y: np.ndarray, power: float, cap: float) -> np.ndarray:
    """Per-class weights ``(5,)``: ``min((n_max / n_c) ** power, cap)``, 0 for absent classes,
    scaled so that the mean weight over the beats ``y`` is 1."""
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    w = np.zeros(len(CLASSES))
    present = counts > 0
    w[present] = np.minimum((counts.max() / counts[present]) ** power, cap)
    w /= (w[y]).mean()
    return w


def epoch_order(y: np.ndarray, rng: np.random.Generator, mode: str, weights: np.ndarray) -> np.ndarray:
    """Indices of one epoch (``len(y)`` of them): a permutation, or for ``balanced_sampling``
    a draw with replacement where beat i has probability proportional to ``weights[y[i]]``."""
    if mode == "balanced_sampling":
        p = weights[y]
        return rng.choice(len(y), size=len(y), replace=True, p=p / p.sum())
    return rng.permutation(len(y))


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

    def __init__(self, name, model, train, val, config, noise, weights, run_dir, progress, echo, seed_offset):
        self.name, self.model, self.train, self.val = name, model, train, val
        self.config, self.noise, self.weights = config, noise, weights
        self.run_dir, self.progress, self.echo = run_dir, progress, echo
        self.seed_offset = seed_offset
        k = config.model.sequence_beats
        if k:  # variant (b): each beat with the k - 1 before it, within its record
            from edge_ecg.beats.sequence import sequence_index

            self.train_idx, self.val_idx = sequence_index(train.record, k), sequence_index(val.record, k)
        else:
            self.train_idx = self.val_idx = None
        self.history: list[dict] = []
        self.best_f1, self.best_epoch = -1.0, -1

    def run(self, epochs: int) -> dict:
        from edge_ecg.model.augment import augment_rr, augment_windows

        tc, use_rr = self.config.train, self.config.model.use_rr
        ckpt = self.run_dir / "checkpoints"
        best_path, last_path = ckpt / f"{self.name}_best.weights.h5", ckpt / f"{self.name}_last.weights.h5"
        patience = tc.early_stopping_patience
        for epoch in range(epochs):
            t0 = time.perf_counter()
            rng = np.random.default_rng([tc.seed, self.seed_offset, epoch])
            order = epoch_order(self.train.y, rng, tc.imbalance, self.weights)
            if self.train_idx is None:
                X = augment_windows(self.train.X[order], rng, self.config.augment, self.config.window, self.noise)
                rr = augment_rr(self.train.rr, self.train.record, self.train.sample, rng, self.config.augment,
                                self.config.window)[order]
                feed = _inputs(X, rr, use_rr)
            else:  # augment every beat once, then gather each drawn beat's sequence
                X = augment_windows(self.train.X, rng, self.config.augment, self.config.window, self.noise)
                rr = augment_rr(self.train.rr, self.train.record, self.train.sample, rng, self.config.augment,
                                self.config.window)
                feed = _inputs(X, rr, use_rr, self.train_idx[order])
            y = self.train.y[order]
            sw = None if tc.imbalance in ("balanced_sampling", "none") else self.weights[y].astype(np.float32)
            fit = self.model.fit(
                feed, y, sample_weight=sw, batch_size=tc.batch_size,
                epochs=1, shuffle=False, verbose=0, callbacks=[_ProgressBar(self, epoch, epochs, len(y))],
            )
            del feed, X, rr
            probs = self.model.predict(_inputs(self.val.X, self.val.rr, use_rr, self.val_idx), batch_size=1024,
                                       verbose=0)
            scores = validation_scores(probs, self.val)
            row = {"phase": self.name, "epoch": epoch + 1, "loss": float(fit.history["loss"][-1]),
                   "val": scores, "seconds": time.perf_counter() - t0}
            self.history.append(row)
            self.model.save_weights(last_path)
            f1 = scores["macro_f1"] or 0.0
            improved = f1 > self.best_f1
            if improved:
                self.best_f1, self.best_epoch = f1, epoch + 1
                self.model.save_weights(best_path)
            self.echo(
                f"{self.name} epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, val loss {scores['loss']:.4f}, "
                f"val macro-F1 {100 * f1:.2f}% (S Se {_pct(scores['S']['se'])}, +P {_pct(scores['S']['ppv'])}; "
                f"V Se {_pct(scores['V']['se'])}, +P {_pct(scores['V']['ppv'])}), {row['seconds']:.0f} s"
                + (" *" if improved else "")
            )
            if epoch + 1 - self.best_epoch >= patience:
                self.echo(f"{self.name}: no improvement for {patience} epochs; stopping early")
                break
        self.model.load_weights(best_path)
        best = self.history[self.best_epoch - 1]
        return {"best_epoch": self.best_epoch, "epochs_run": len(self.history), "val": best["val"]}


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
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``config`` on ``config.train.records`` from ``db_dir`` and write the run folder ``out``.

    ``nstdb_dir`` is the noise database (found beside ``db_dir`` when not given; only needed
    when ``augment.noise_prob > 0``). Raises :class:`ConfigError`/:class:`DataError` with one
    line for bad input before any training starts.
    """
    t_start = time.perf_counter()
    db_dir = Path(db_dir)
    train_names, val_names = check_records(db_dir, config)
    noise = None
    aug = config.augment
    if aug.enabled and aug.noise_prob > 0:
        from edge_ecg.model.augment import find_nstdb, load_noise_bank

        noise = load_noise_bank(find_nstdb(db_dir, nstdb_dir), config.window, aug)
    with staged_run_dir(out, force) as run_dir:  # a complete run replaces `out`, or nothing does
        metrics = _write_run(config, db_dir, run_dir, train_names, val_names, noise, progress, echo, t_start)
    echo(f"run folder: {out} ({metrics['seconds']:.0f} s)")
    return TrainResult(run_dir=Path(out), metrics=metrics)


def _write_run(config: RunConfig, db_dir: Path, run_dir: Path, train_names, val_names, noise, progress: bool,
               echo: Callable[[str], None], t_start: float) -> dict:
    """The training itself, written into ``run_dir``; returns the metrics."""
    (run_dir / "config.json").write_text(to_json(config))

    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.model.arch import build_model, count_params
    from edge_ecg.model.qat import quantize_model, strip_qat

    tc = config.train
    seed_everything(tc.seed, tc.threads)
    beats = build_beatset(db_dir, list(tc.records) or list(DS1), config.window, progress=progress)
    is_val = np.isin(beats.record, val_names)
    train, val = beats.subset(~is_val), beats.subset(is_val)
    if len(train) == 0 or len(val) == 0:
        raise DataError("the training or validation records hold no annotated beats")
    weights = class_weights(train.y, tc.class_weight_power, tc.max_class_weight)
    if tc.imbalance == "none":
        weights = np.ones(len(CLASSES))
    echo(f"train: {len(train)} beats from {len(train_names)} records {train.class_counts()}")
    echo(f"validation: {len(val)} beats from records {', '.join(val_names)} {val.class_counts()}")

    model = build_model(config.model, config.window)
    steps = -(-len(train) // tc.batch_size)
    _compile(model, config, tc.learning_rate, steps * tc.epochs)
    echo(f"model {config.model.arch}: {count_params(model)} parameters; imbalance: {tc.imbalance} "
         f"(class weights {', '.join(f'{c} {w:.2f}' for c, w in zip(CLASSES, weights))})")
    float_phase = _Phase("float", model, train, val, config, noise, weights, run_dir, progress, echo, 0)
    t0 = time.perf_counter()
    float_summary = float_phase.run(tc.epochs)
    float_summary["seconds"] = time.perf_counter() - t0
    save_clean(model, config, run_dir / "model.keras")
    history = list(float_phase.history)

    qat_summary = None
    if tc.qat and tc.qat_epochs > 0:
        t0 = time.perf_counter()
        qat_model = quantize_model(model, config.model, config.window, lstm=tc.qat_lstm)
        _compile(qat_model, config, tc.qat_learning_rate, steps * tc.qat_epochs)
        qat_phase = _Phase("qat", qat_model, train, val, config, noise, weights, run_dir, progress, echo, 1)
        qat_phase.best_epoch = 0  # patience counts from the start of QAT
        qat_summary = qat_phase.run(tc.qat_epochs)
        qat_summary["seconds"] = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy": .keras cannot hold QAT wrappers
            qat_model.save(run_dir / "qat_wrapped.h5", include_optimizer=False)
        strip_qat(qat_model, config.model, config.window).save(run_dir / "model_qat.keras")
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
        "float": float_summary,
        "qat": qat_summary,
        "history": history,
        "seconds": time.perf_counter() - t_start,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_curves(history, run_dir / "curves.png")
    return metrics


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
    ax2.plot(x, [100 * (h["val"]["macro_f1"] or 0) for h in history], label="macro-F1 (N,S,V)")
    for c in ("S", "V"):
        ax2.plot(x, [100 * (h["val"][c]["f1"] or 0) for h in history], label=f"{c} F1", alpha=0.7)
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

