"""Which model the stream runs, loading it, checking it fits, and timing it alone (``profile``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from edge_ecg.errors import ModelError
from edge_ecg.signal.detect import MAX_FS, MIN_FS

#: Where a repository checkout keeps the shipped models (next to the package folder).
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def shipped_models_dir() -> Path:
    """The folder holding the shipped int8 model: ``edge_ecg/models`` package data in an installed
    wheel (read with :mod:`importlib.resources`), else a checkout's top-level ``models/``."""
    from importlib import resources  # here: a stream given --model never needs it

    packaged = resources.files("edge_ecg").joinpath("models")
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return MODELS_DIR


def shipped_config():
    """The shipped model's :class:`~edge_ecg.config.RunConfig` (``config.json`` beside it): what
    `edge-ecg train` retrains when given no configuration."""
    from edge_ecg.config import load_config

    return load_config(shipped_models_dir() / "config.json")


def find_default_model(models_dir: str | Path | None = None) -> Path:
    """The int8 ``.tflite`` in ``models_dir``, else ``$EDGE_ECG_MODELS``, else the shipped one
    (:func:`shipped_models_dir`).

    Prefers a name containing ``int8``; several candidates pick the newest. A missing
    folder or no model is a :class:`ModelError` saying what to do.
    """
    if models_dir is not None:
        folder = Path(models_dir)
    elif os.environ.get("EDGE_ECG_MODELS"):
        folder = Path(os.environ["EDGE_ECG_MODELS"])
    else:
        folder = shipped_models_dir()
    models = sorted(folder.glob("*.tflite")) if folder.is_dir() else []
    models = [m for m in models if "edgetpu" not in m.name]
    if not models:
        raise ModelError(
            f"no model given and no .tflite found in {folder}; pass --model FILE.tflite (an edge-ecg "
            f"model made by `edge-ecg convert`, on any machine), or reinstall edge-ecg, whose wheel ships one"
        )
    int8 = [m for m in models if "int8" in m.name] or models
    return max(int8, key=lambda p: p.stat().st_mtime)


def model_path(model: str | Path | None) -> Path:
    """The .tflite ``--model`` names: a file as given; a folder (a run folder, models/) its int8
    .tflite (:func:`find_default_model`); None the shipped model."""
    if model is None:
        return find_default_model()
    path = Path(model)
    if path.is_dir() and not any(p for p in path.glob("*.tflite") if "edgetpu" not in p.name):
        raise ModelError(f"{path}: a folder without a .tflite; convert the run first: edge-ecg convert --model {path}")
    return find_default_model(path) if path.is_dir() else path


def load_classifier(model: str | Path | None = None, threads: int = 1, delegate: str = "none"):
    """A :class:`edge_ecg.runtime.TFLiteClassifier` for ``model`` (default: :func:`find_default_model`),
    checked to fit the stream (window rate a detector can run at, a class per output)."""
    from edge_ecg.runtime.interpreter import TFLiteClassifier

    path = model_path(model)
    clf = TFLiteClassifier(path, threads=threads, delegate=delegate)
    check_fits_stream(clf, str(path))
    return clf


def check_fits_stream(clf, where: str = "model") -> None:
    """Raise :class:`ModelError` when a classifier's metadata does not fit the live pipeline."""
    w = clf.window
    if not MIN_FS <= w.fs <= MAX_FS:
        raise ModelError(f"{where}: window rate {w.fs:g} Hz is outside the {MIN_FS:g}-{MAX_FS:g} Hz the stream detects at")
    n_out = int(np.prod(clf.metadata.outputs[0].shape))
    if n_out != len(clf.classes):
        raise ModelError(f"{where}: the model outputs {n_out} values but its metadata names {len(clf.classes)} classes")
    if w.post_s > 5.0 or w.pre_s > 10.0:
        raise ModelError(f"{where}: window {w.pre_s} s + {w.post_s} s is too long for live use")


def _rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def profile_model(model: str | Path | None = None, threads: int = 1, delegate: str = "none", runs: int = 1000,
                  warmup: int = 20, seed: int = 0, adapt: bool = False) -> dict:
    """Time the model alone: load time, then ``runs`` single-beat inferences on random normalised
    windows (after ``warmup``). Returns milliseconds (mean, p50, p95, p99, max), beats/s,
    the runtime used, the model's size and quantisation, and the process's resident memory.
    ``adapt``: also time each beat with the wearer's adaptation after the model (``adapt``:
    p50 with and alone, ms, and the ratio with / without)."""
    if runs < 1:
        raise ModelError(f"--runs must be >= 1, got {runs}")
    t0 = time.perf_counter()
    clf = load_classifier(model, threads=threads, delegate=delegate)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    L, F = clf.window.length, len(clf.metadata.rr_features) or len(clf.window.rr_features)
    X = rng.standard_normal((min(runs, 256), L)).astype(np.float32)
    rr = np.abs(rng.normal(0.8, 0.1, (len(X), F))).astype(np.float32)
    for i in range(warmup):
        clf.predict(X[i % len(X)], rr[i % len(X)])
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        clf.predict(X[i % len(X)], rr[i % len(X)])
        times[i] = time.perf_counter() - t
    ms = times * 1000.0
    path = model_path(model)
    extra = {"adapt": time_adaptation(clf, X, rr, runs)} if adapt else {}
    return {
        "model": str(path),
        "size_kb": round(path.stat().st_size / 1024.0, 1),
        "quantization": clf.metadata.quantization,
        "arch": clf.metadata.arch,
        "runtime": clf.runtime_name,
        "threads": threads,
        "delegate": delegate,
        "window": {"fs": clf.window.fs, "samples": L, "pre_s": clf.window.pre_s, "post_s": clf.window.post_s},
        "load_ms": round(load_s * 1000.0, 2),
        "runs": runs,
        "latency_ms": {
            "mean": round(float(ms.mean()), 4),
            "p50": round(float(np.percentile(ms, 50)), 4),
            "p95": round(float(np.percentile(ms, 95)), 4),
            "p99": round(float(np.percentile(ms, 99)), 4),
            "max": round(float(ms.max()), 4),
        },
        "beats_per_s": round(runs / float(times.sum()), 1),
        "rss_mb": None if _rss_mb() is None else round(_rss_mb(), 1),
        **extra,
    }


def time_adaptation(clf, X: np.ndarray, rr: np.ndarray, runs: int) -> dict:
    """Per-beat time (ms, p50) of the model alone, of the model followed by the wearer's
    adaptation (one beat at a time, as a stream labels them) and of the adaptation alone, all
    timed in one loop on windows ``X`` ``(m, L)`` (so a busy machine slows both alike), and
    the ratio with / without. The adapter has learnt from ``X`` first, as a warm stream has."""
    from edge_ecg.runtime.adapt import make_adapter

    adapter = make_adapter(clf)
    adapter.adapt_batch(X, rr, clf.predict_batch(X, rr))
    model, alone = np.empty(runs), np.empty(runs)
    for i in range(runs):
        x, r = X[i % len(X)][None], rr[i % len(X)][None]
        t = time.perf_counter()
        p = clf.predict(x[0], r[0])[None]
        t1 = time.perf_counter()
        adapter.adapt_batch(x, r, p)
        t2 = time.perf_counter()
        model[i], alone[i] = t1 - t, t2 - t1
    p50 = {k: float(np.percentile(v, 50)) * 1000.0 for k, v in (("model", model), ("with", model + alone),
                                                                  ("alone", alone))}
    return {"design": adapter.config.design, "without_p50_ms": round(p50["model"], 4),
            "with_p50_ms": round(p50["with"], 4), "alone_p50_ms": round(p50["alone"], 4),
            "ratio_p50": round(p50["with"] / p50["model"], 3) if p50["model"] > 0 else None}
