"""Benchmark sections for ``tools/bench.py``.

Each section is a module here with:

- ``NAME``: the section name used on the command line (``python tools/bench.py NAME``);
- ``TITLE``: its heading in BENCHMARKS.md;
- ``run(ctx: BenchContext) -> dict``: measure, write any PNGs into ``ctx.out_dir``, return
  JSON-able results (the runner adds machine, versions, date and the command);
- ``render(result: dict) -> str``: the section's Markdown for BENCHMARKS.md, built only
  from ``result`` so the report can be regenerated without measuring again.

Results land in ``tools/results/<NAME>.json``; BENCHMARKS.md is generated, never edited.

``tools/`` is not a package: its scripts run as ``python tools/NAME.py`` (Python puts
``tools/`` first on ``sys.path``), so they import this package as ``benchmarks`` and each other
by name, with no path tricks; what they share with the library lives in ``edge_ecg``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "results"
#: A source checkout's data folder: ``../shared/data`` beside the repository.
CHECKOUT_DATA = ROOT.parent / "shared" / "data"


def data_root(given: str | Path | None = None) -> Path:
    """The folder holding ``mitdb/``, ``nstdb/``, ``svdb/`` for a tool: ``given`` (``--data-root``),
    else ``$EDGE_ECG_DATA``, else :data:`CHECKOUT_DATA` -- the library's rule
    (:func:`edge_ecg.records.locate.find_data_root`) with this checkout's folder."""
    from edge_ecg.records.locate import find_data_root

    return find_data_root(given, checkout=CHECKOUT_DATA)

#: Package versions recorded with every result.
VERSIONS_OF = ("edge-ecg", "numpy", "scipy", "wfdb", "tensorflow", "tf-keras", "ai-edge-litert",
               "tflite-runtime", "tflite-micro", "neurokit2")


@dataclass
class BenchContext:
    """What a section gets: where data is, where to write, and how thorough to be."""

    data_root: Path  # a folder holding mitdb/ and nstdb/
    out_dir: Path = RESULTS
    quick: bool = False  # a few records / runs: for the test suite, not for publishing
    model: Path | None = None  # the int8 .tflite (or run folder) to measure; None: models/ default
    extra: dict = field(default_factory=dict)

    @property
    def mitdb(self) -> Path:
        return self.data_root / "mitdb"

    @property
    def nstdb(self) -> Path:
        return self.data_root / "nstdb"


def shipped_model(ctx: BenchContext) -> Path:
    """The int8 .tflite to measure: ``--model`` (a file, or a folder holding one), else models/.

    The same choice ``edge-ecg stream`` makes when given no ``--model``.
    """
    from edge_ecg.stream.classifier_files import find_default_model

    if ctx.model is None:
        return find_default_model()
    path = Path(ctx.model)
    return find_default_model(path) if path.is_dir() else path


#: The DS1-only model kept beside the shipped one (``models/ds1_only/``): the row comparable with
#: published inter-patient work, measured in the same runs as the shipped model.
DS1_ONLY = ROOT / "models" / "ds1_only"


#: The cross-validation fold runs of the shipped recipe (round 12's ``wide_runs``, seed 0; fold 1 is
#: the shipped model's own run): the out-of-fold models that score the records it trained on.
SHIPPED_FOLDS = RESULTS / "cv12_runs" / "wide_runs"

#: The model shipped before the current one (``models/previous/``, issue 28's "shipped model"): its
#: speed is the reference of the speed target, its accuracy a row beside the shipped one's.
PREVIOUS = ROOT / "models" / "previous"


def ds1_only_model(ctx: BenchContext) -> Path | None:
    """The DS1-only int8 .tflite measured beside the shipped model, or None (absent, or ``--model`` given)."""
    return _kept_model(ctx, DS1_ONLY)


def previous_model(ctx: BenchContext) -> Path | None:
    """The previously shipped int8 .tflite measured beside the shipped model, or None (absent, or ``--model`` given)."""
    return _kept_model(ctx, PREVIOUS)


def _kept_model(ctx: BenchContext, folder: Path) -> Path | None:
    if ctx.model is not None:
        return None
    path = folder / "edge_ecg_int8.tflite"
    return path if path.is_file() else None


def model_label(tflite: Path) -> str:
    """What a model was trained on, from the training metrics beside it: ``"DS1 + svdb (40 records)"``."""
    import json

    from edge_ecg.records.aami import DS1

    metrics = tflite.parent / "training_metrics.json"
    if not metrics.is_file():
        return tflite.parent.name
    m = json.loads(metrics.read_text())
    by_db: dict[str, list[str]] = {}
    for rec in list(m.get("train_records", [])) + list(m.get("val_records", [])):
        db, _, name = rec.rpartition("/")
        by_db.setdefault(db or "mitdb", []).append(name)
    if not by_db:  # runs from before multi-database training: DS1
        return "DS1 only"
    parts = []
    for db, names in by_db.items():
        if db == "mitdb" and sorted(names) == sorted(DS1):
            parts.append("DS1")
        else:
            parts.append(f"{db} ({len(names)} records)")
    return " + ".join(parts) if len(parts) > 1 else f"{parts[0]} only"


def machine_info() -> dict:
    """This machine, Python and package versions, and the time, for a result's header."""
    versions = {}
    for name in VERSIONS_OF:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except Exception:
        commit = ""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        "python": sys.version.split()[0],
        "versions": versions,
        "commit": commit,
    }
