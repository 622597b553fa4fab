"""One lead rule: ``stream --replay``, the offline builder and evaluation read the same lead.

The rule (:meth:`edge_ecg.records.databases.Database.choose_lead`): ``--lead`` when given, else
the model's ``window.lead`` where the record has it, else the database's order. A record whose
first signal is not the model's lead used to be replayed on the database's choice while
evaluation read the model's lead.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_ecg.beats.dataset import record_lead
from edge_ecg.config import WindowConfig
from edge_ecg.evaluate.end_to_end import load_record_id
from edge_ecg.records.databases import REGISTRY, folder_database
from edge_ecg.records.load import load_record
from edge_ecg.stream.sources import open_replay

from conftest import synthetic_ecg


def _write(folder, name, leads, fs=360.0):
    """A 2-lead record (signal 0 ``leads[0]``, signal 1 ``leads[1]``, different shapes) with beats."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    x, samples, syms = synthetic_ecg(30, fs=fs, seed=3)
    sig = np.column_stack([-0.7 * x, x])  # signal 0 is not signal 1
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=list(leads), p_signal=sig, fmt=["212", "212"],
                adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=str(folder))
    wfdb.wrann(name, "atr", np.asarray(samples), symbol=list(syms), write_dir=str(folder))


@pytest.mark.parametrize("db, leads", [
    ("mydb", ("V5", "MLII")),  # a folder of your own: signal 0 V5, signal 1 MLII
    ("svdb", ("ECG1", "MLII")),  # a database whose own order prefers signal 0
])
def test_replay_and_evaluate_read_the_models_lead(tmp_path, db, leads):
    window = WindowConfig()
    assert window.lead == "MLII" != leads[0]
    (tmp_path / "mitdb").mkdir()
    _write(tmp_path / db, "x1", leads)

    replayed = open_replay(str(tmp_path / db / "x1"), model_lead=window.lead)
    built = record_lead(tmp_path / db, "x1", window, None, folder_database(tmp_path / db))
    if db in REGISTRY:  # evaluate's record ids name registry databases (svdb/800)
        scored = load_record_id(tmp_path / "mitdb", f"{db}/x1", window)
    else:
        scored = load_record(tmp_path / db, "x1", lead=built)

    assert replayed.lead == scored.lead == built == "MLII"
    np.testing.assert_array_equal(replayed.signal, scored.signal)
    # --lead still wins everywhere
    assert open_replay(str(tmp_path / db / "x1"), lead=leads[0], model_lead=window.lead).lead == leads[0]
