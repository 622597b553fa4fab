"""Reports over many records: gross vs average, without(232), text, JSON, PNG, predictions."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from edge_ecg.errors import DataError, EdgeEcgError
from edge_ecg.evaluate import MATRIX_LABELS, RecordScore, Report, score_predictions, score_record

L = {c: i for i, c in enumerate(MATRIX_LABELS)}


def make(name: str, **counts) -> RecordScore:
    m = np.zeros((6, 6), dtype=np.int64)
    for key, value in counts.items():
        m[L[key[0]], L[key[1].upper()]] = value
    return RecordScore(name, m)


def test_gross_sums_matrices_and_average_means_per_record_figures():
    a = make("100", Nn=500, Vv=90, Vn=10)  # V Se 0.9
    b = make("101", Nn=300, Vv=1, Vo=1)  # V Se 0.5
    c = make("103", Nn=400)  # no V beats: V Se undefined
    rep = Report([a, b, c])
    assert np.array_equal(rep.matrix, a.matrix + b.matrix + c.matrix)
    assert rep.gross["V"]["se"] == pytest.approx(91 / 102)  # not (0.9 + 0.5) / 2
    assert rep.average["V"]["se"] == pytest.approx(0.7)
    assert rep.average["V"]["se_n_records"] == 2
    assert rep.average["qrs"]["se"] == pytest.approx(np.mean([1.0, 301 / 302, 1.0]))
    assert list(rep.per_record) == ["100", "101", "103"]
    assert rep.per_record["101"]["qrs"]["se"] == pytest.approx(301 / 302)


def test_without_removes_records_and_232_gets_its_own_gross_row():
    rep = Report([make("100", Nn=100, Ss=2, Sn=2), make("232", Nn=50, Ss=90, Sn=10, Ns=30)], title="DS2")
    w = rep.without("232")
    assert w.names == ["100"] and w.gross["S"]["se"] == pytest.approx(0.5)
    assert rep.gross["S"]["se"] == pytest.approx(92 / 104)
    assert rep.without(["100", "232"]).names == []
    text = rep.to_text()
    assert "Gross w/o 232" in text
    row = next(line for line in text.splitlines() if line.startswith("Gross w/o 232"))
    assert "50.00" in row  # S Se without 232
    assert "Gross w/o 232" not in w.to_text()
    data = rep.to_dict()
    assert data["gross_without_232"]["S"]["se"] == pytest.approx(0.5)
    assert "gross_without_232" not in w.to_dict()


def test_text_report_is_aligned_and_shows_undefined_as_dash():
    rep = Report([make("100", Nn=1000, Vv=40, Nv=2, No=3, On=1), make("101", Nn=900)], title="demo")
    text = rep.to_text()
    lines = text.splitlines()
    assert lines[0].startswith("demo: EC57") and "2 records" in lines[0]
    table = [line for line in lines if line.split(" ")[0] in ("Record", "100", "101", "Gross", "Average")
             and not line.startswith("Gross per class")]
    assert len(table) == 5 and len({len(line) for line in table}) == 1  # one width: aligned
    row_101 = next(line for line in lines if line.startswith("101 "))
    assert " - " in row_101 + " "  # V Se of a record without V beats
    assert "Gross per class" in text
    # the matrix gets an O row and column when something was missed or extra
    assert any(line.split()[:1] == ["O"] for line in lines)
    clean = Report([make("100", Nn=10, Vv=2)]).to_text()
    assert "O = no beat" not in clean and "1 record)" in clean


def test_json_round_trip_has_no_nan():
    rep = Report([make("100", Nn=10, Vv=2, Vo=1)], settings={"start_s": 0.0})
    text = rep.to_json()
    data = json.loads(text)  # allow_nan=False in to_json would have raised on NaN
    assert data["labels"] == list(MATRIX_LABELS)
    assert np.array_equal(np.array(data["matrix"]), rep.matrix)
    assert data["gross"]["S"]["se"] is None and data["gross"]["V"]["se"] == pytest.approx(2 / 3)
    assert data["records"][0]["name"] == "100" and data["settings"] == {"start_s": 0.0}


def test_names_must_be_distinct_and_blank_names_are_numbered():
    with pytest.raises(DataError, match="twice"):
        Report([make("100"), make("100")])
    assert Report([make(""), make("")]).names == ["#1", "#2"]
    with pytest.raises(DataError, match="RecordScore"):
        Report([np.zeros((6, 6))])


def test_plot_confusion_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rep = Report([make("100", Nn=1000, Ss=30, Sn=5, Vv=40, No=3, Ov=1)], title="demo")
    out = rep.plot_confusion(tmp_path / "cm.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_confusion_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib...` fail
    with pytest.raises(EdgeEcgError, match="matplotlib"):
        Report([make("100", Nn=1)]).plot_confusion(tmp_path / "cm.png")


def test_score_predictions_groups_beats_by_record():
    records = np.array(["a", "a", "a", "b", "b", "a"])
    samples = np.array([100, 500, 900, 100, 500, 40000])
    y_true = np.array(["N", "V", "S", "N", "N", "N"])
    probs = np.zeros((6, 5), dtype=np.float32)
    probs[np.arange(6), [0, 2, 0, 0, 2, 0]] = 1.0  # N V N | N V | N
    rep = score_predictions(records, samples, y_true, probs, fs=360.0)
    assert rep.names == ["a", "b"]
    a = rep.records[0].matrix
    assert (a[L["N"], L["N"]], a[L["V"], L["V"]], a[L["S"], L["N"]]) == (2, 1, 1)
    assert rep.records[1].matrix[L["N"], L["V"]] == 1
    assert rep.gross["V"]["ppv"] == pytest.approx(0.5) and rep.gross["qrs"]["se"] == 1.0
    # labels by index give the same; VF intervals and the learning period drop beats
    same = score_predictions(records, samples, y_true, np.array([0, 2, 0, 0, 2, 0]), fs=360.0)
    assert np.array_equal(same.matrix, rep.matrix)
    cut = score_predictions(records, samples, y_true, probs, fs=360.0, excluded={"a": [[400, 1000]]}, start_s=1.0)
    assert cut.records[0].matrix.sum() == 1 and cut.records[0].n_unscored_ref == 3
    assert cut.records[1].matrix.sum() == 1  # b's beat at sample 100 < 360 is dropped


def test_score_predictions_rejects_mismatched_inputs():
    with pytest.raises(DataError, match="samples"):
        score_predictions(["a", "a"], [1], ["N", "N"], ["N", "N"], fs=360.0)
    with pytest.raises(DataError, match="probabilities"):
        score_predictions(["a"], [1], ["N"], np.zeros((1, 3)), fs=360.0)


def test_report_of_synthetic_records_end_to_end(tiny_db):
    from edge_ecg.records import load_record

    scores = []
    for name in ("900", "901"):
        rec = load_record(tiny_db, name)
        test = rec.beat_samples[1:] + 5  # first beat missed
        labels = np.where(rec.beat_classes[1:] == "S", "N", rec.beat_classes[1:])  # S called N
        scores.append(score_record(rec.beat_samples, rec.beat_classes, test, labels, fs=rec.fs, name=name))
    rep = Report(scores)
    g = rep.gross
    n_beats = sum(int(s.matrix[:5].sum()) for s in scores)
    assert g["qrs"]["se"] == pytest.approx((n_beats - 2) / n_beats) and g["qrs"]["ppv"] == 1.0
    assert g["S"]["se"] == 0.0 and g["V"]["se"] == 1.0 and math.isnan(g["S"]["ppv"])
    assert "900" in rep.to_text() and "901" in rep.to_text()


def test_the_evaluate_facade_is_flat_and_the_stream_never_loads_it():
    """``from edge_ecg.evaluate import X`` works for every public name; the live chain emits
    beats and imports no evaluation (ground truth is matched by a run consumer)."""
    import subprocess

    import edge_ecg.evaluate as evaluate

    for name in evaluate.__all__:
        assert getattr(evaluate, name) is not None
    code = ("import sys, edge_ecg.stream.pipeline, edge_ecg.stream.runner\n"
            "print(sorted(m for m in sys.modules if m.startswith('edge_ecg.evaluate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
