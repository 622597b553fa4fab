"""Shared fixtures: the real MIT-BIH folder when present, small WFDB records made here, and a
stand-in classifier for the stream."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from edge_ecg.config import CLASSES, RR_FEATURES, WindowConfig
from edge_ecg.runtime.classifier import Classifier

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


#: Fixtures that build, train or convert a model with TensorFlow: a test using one (directly or
#: through another fixture) is marked ``tf`` and left out of the quick loop (README, Development).
TF_FIXTURES = frozenset({"int8_model", "models", "spike_model", "trained", "run_dir", "qat_run"})
#: Fixtures that read the real PhysioNet databases: a test using one is marked ``realdata``.
REALDATA_FIXTURES = frozenset({"mitdb_dir", "svdb_dir", "nstdb_dir"})


def pytest_collection_modifyitems(config, items):
    """Mark tests ``tf`` / ``realdata`` by the fixtures they use, so no test has to remember to."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & TF_FIXTURES:
            item.add_marker(pytest.mark.tf)
        if names & REALDATA_FIXTURES:
            item.add_marker(pytest.mark.realdata)


_MODULE_MARKS = re.compile(r"^pytestmark = .*$", re.M)


def pytest_ignore_collect(collection_path: Path, config):
    """A module marked as a whole (``pytestmark = pytest.mark.tf``) that ``-m`` deselects is not
    imported at all: importing TensorFlow alone takes ~15 s, most of the quick loop's budget."""
    markexpr = config.getoption("markexpr", "")
    if not markexpr or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    line = _MODULE_MARKS.search(collection_path.read_text(encoding="utf-8"))
    marks = set(re.findall(r"pytest\.mark\.(\w+)\b(?!\()", line.group(0))) if line else set()
    if not marks:
        return None
    try:
        from _pytest.mark.expression import Expression  # what -m itself evaluates

        selected = Expression.compile(markexpr).evaluate(lambda name, **kwargs: name in marks)
    except Exception:  # a pytest without this API: collect it, -m still deselects its tests
        return None
    return True if not selected else None


def _real_db(db: str) -> Path | None:
    env = os.environ.get("EDGE_ECG_DATA")
    for base in ([Path(env)] if env else []) + [SHARED]:
        if any((base / db / f"{name}.hea").is_file() for name in ("100", "em", "800")):
            return base / db
    return None


def _real_db_or_skip(db: str, title: str) -> Path:
    path = _real_db(db)
    if path is None:
        pytest.skip(f"{title} not found in ../shared/data/{db} or $EDGE_ECG_DATA/{db}")
    return path


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    """The real MIT-BIH Arrhythmia Database folder, or skip."""
    return _real_db_or_skip("mitdb", "MIT-BIH")


@pytest.fixture(scope="session")
def svdb_dir() -> Path:
    """The real svdb folder (40 of its 78 records), or skip."""
    return _real_db_or_skip("svdb", "svdb")


@pytest.fixture(scope="session")
def nstdb_dir() -> Path:
    """The real MIT-BIH Noise Stress Test Database folder, or skip."""
    return _real_db_or_skip("nstdb", "nstdb")


def synthetic_ecg(n_beats: int, fs: float = 360.0, rr_s: float = 0.8, seed: int = 0, classes=None):
    """A crude but QRS-like ECG: Gaussian P, QRS and T waves per beat.

    Returns ``(signal_mV (n,), beat_samples (n_beats,), symbols list)``. ``classes`` is a
    list of MIT-BIH symbols per beat ('N', 'A' premature, 'V' wide and early).
    """
    rng = np.random.default_rng(seed)
    classes = classes or ["N"] * n_beats
    t_beats, t = [], 1.0
    for sym in classes:
        t += rr_s * (0.7 if sym in "AV" else 1.0) * (1 + 0.02 * rng.standard_normal())
        t_beats.append(t)
    n = int((t_beats[-1] + 1.0) * fs)
    x = np.zeros(n)
    tt = np.arange(n) / fs
    for tb, sym in zip(t_beats, classes):
        width = 0.045 if sym == "V" else 0.012
        amp = 1.6 if sym == "V" else 1.0
        x += amp * np.exp(-0.5 * ((tt - tb) / width) ** 2)
        x -= 0.15 * np.exp(-0.5 * ((tt - tb - 0.03) / 0.01) ** 2)
        x += 0.3 * np.exp(-0.5 * ((tt - tb - 0.25) / 0.05) ** 2)
        if sym != "V":
            x += 0.12 * np.exp(-0.5 * ((tt - tb + 0.16) / 0.025) ** 2)
    x += 0.01 * rng.standard_normal(n)
    samples = np.round(np.asarray(t_beats) * fs).astype(int)
    return x.astype(np.float64), samples, list(classes)


def write_record(folder: Path, name: str, signal_mv, beat_samples, symbols, fs=360.0, lead="MLII", second_lead="V1"):
    """Write a 2-lead WFDB record (format 212, 200 adu/mV) with an ``atr`` file."""
    import wfdb

    sig = np.column_stack([signal_mv, 0.5 * np.asarray(signal_mv)])
    wfdb.wrsamp(
        name, fs=fs, units=["mV", "mV"], sig_name=[lead, second_lead], p_signal=sig,
        fmt=["212", "212"], adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=str(folder),
    )
    wfdb.wrann(name, "atr", np.asarray(beat_samples), symbol=list(symbols), write_dir=str(folder))
    return folder / name


@pytest.fixture
def tiny_db(tmp_path) -> Path:
    """A folder with two small synthetic records ('900', '901') written with wfdb."""
    folder = tmp_path / "tinydb"
    folder.mkdir()
    for i, name in enumerate(["900", "901"]):
        syms = ["N"] * 20 + ["V", "N", "A", "N"] * 3 + ["N"] * 10
        x, s, c = synthetic_ecg(len(syms), seed=i, classes=syms)
        write_record(folder, name, x, s, c)
    (folder / "RECORDS").write_text("900\n901\n")
    return folder


def write_db_record(folder, name, fs, leads, symbols, comments=(), seed=0):
    """A small 2-lead record at ``fs`` Hz with leads named ``leads`` and an ``atr`` file."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    x, samples, syms = synthetic_ecg(len(symbols), fs=fs, seed=seed, classes=list(symbols))
    sig = np.column_stack([x, 0.5 * x])
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=list(leads), p_signal=sig, fmt=["212", "212"],
                adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=str(folder), comments=list(comments))
    wfdb.wrann(name, "atr", np.asarray(samples), symbol=syms, write_dir=str(folder))


BEATS = ["N"] * 12 + ["V", "N", "A", "N", "B", "N"] * 2 + ["N"] * 6


@pytest.fixture
def two_databases(tmp_path):
    """``svdb/`` at 128 Hz (leads ECG1, ECG2; one patient per record) and ``incartdb/`` at 257 Hz
    (leads II, V1; I01 and I02 from patient 1, I03 from patient 2, by their header comments)."""
    root = tmp_path / "data"
    for i, name in enumerate(["800", "802", "804"]):
        write_db_record(root / "svdb", name, 128.0, ("ECG1", "ECG2"), BEATS, seed=i)
    (root / "svdb" / "RECORDS").write_text("800\n802\n804\n")
    for i, (name, patient) in enumerate([("I01", 1), ("I02", 1), ("I03", 2)]):
        write_db_record(root / "incartdb", name, 257.0, ("II", "V1"), BEATS, comments=[f"<age>: 60 Patient {patient}"], seed=i)
    return root


#: ``python -c CLI_WRAPPER <edge-ecg args>`` runs the CLI in a fresh interpreter, then prints
#: ``IMPORTED=<comma list>`` of the heavy modules it pulled in (the device side must pull none).
CLI_WRAPPER = r"""
import sys
from edge_ecg.cli import main
try:
    main(sys.argv[1:], prog_name="edge-ecg")
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
print("IMPORTED=" + ",".join(m for m in ("tensorflow", "wfdb", "pandas") if m in sys.modules), flush=True)
sys.exit(code)
"""


def imported_heavy_modules(stdout: str) -> set[str]:
    """The modules a :data:`CLI_WRAPPER` run reported importing."""
    line = [ln for ln in stdout.splitlines() if ln.startswith("IMPORTED=")][-1]
    return {m for m in line[len("IMPORTED="):].split(",") if m}


class FakeClassifier(Classifier):
    """A :class:`Classifier` without history; class = a fixed function of the window and RR features."""

    window = WindowConfig(rr_features=RR_FEATURES)  # all six, so rr[:, :5] is defined
    classes = CLASSES
    rr_features = RR_FEATURES
    uses_rr = True

    def __init__(self, delay_s: float = 0.0):
        self.W = np.random.default_rng(0).standard_normal((self.window.length, 5)).astype(np.float32)
        self.calls = 0
        self.delay_s = delay_s

    def reset(self) -> None:
        """No beat history: nothing to forget."""

    def predict_batch(self, X, rr):
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s * len(X))
        z = 0.1 * (np.asarray(X) @ self.W) + np.asarray(rr)[:, :5]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
