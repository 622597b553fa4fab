"""Which records a model was trained on, so an evaluation of them can say so.

A score on a model's own training records is not a test result. :func:`training_records`
reads the training records (``db/record`` names, as ``train`` writes them in ``metrics.json``)
from what travels with a model: a converted model's own metadata (``training_records``,
written by ``convert``), its run folder's ``metrics.json``, or the ``training_metrics.json``
shipped beside a converted model (``models/``). :func:`trained_on`
gives the evaluated records among them and :func:`overlap_warning` the one line a report
carries. No TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Files, beside the model or in its run folder, that list its training records (``train_records``).
METRICS_FILES = ("metrics.json", "training_metrics.json")


def training_records(model: str | Path, run_dir: str | Path | None = None) -> set[str] | None:
    """The ``db/record`` names ``model`` (a model file or run folder) was trained on, its
    validation records (they chose its epochs) included, or None when nothing beside it says
    (a model made elsewhere)."""
    model = Path(model)
    embedded = _embedded_records(model)
    if embedded:
        return embedded
    folders = [Path(run_dir)] if run_dir is not None else []
    folders.append(model if model.is_dir() else model.parent)
    for folder in folders:
        for name in METRICS_FILES:
            path = folder / name
            if not path.is_file():
                continue
            try:
                metrics = json.loads(path.read_text())
                records = list(metrics.get("train_records") or []) + list(metrics.get("val_records") or [])
            except (OSError, ValueError, AttributeError, TypeError):
                continue
            if records:
                return {str(r) for r in records}
    return None


def _embedded_records(model: Path) -> set[str] | None:
    """The training records a .tflite's own metadata lists, or None (not a .tflite, none listed, unreadable)."""
    if model.suffix != ".tflite" or not model.is_file():
        return None
    from edge_ecg.errors import ModelError
    from edge_ecg.runtime.metadata import read_metadata

    try:
        return set(read_metadata(model).training_records) or None
    except ModelError:
        return None


def trained_on(trained: set[str] | None, database: str, names: list[str]) -> list[str]:
    """The records of ``names`` (in ``database``) that are in ``trained`` (bare names, in order)."""
    if not trained:
        return []
    return [n for n in names if f"{database}/{n}" in trained or (database == "mitdb" and n in trained)]


def overlap_warning(overlap: list[str], n_scored: int, database: str) -> str | None:
    """One line for a report that scores records the model trained on (None when none)."""
    if not overlap:
        return None
    shown = ", ".join(overlap[:6]) + (", ..." if len(overlap) > 6 else "")
    return (f"the model was trained (or validated) on {len(overlap)} of these {n_scored} {database} records ({shown}): their "
            f"scores are not a test result; give --records the others")
