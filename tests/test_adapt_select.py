"""tools/adapt_select.py round 2: out-of-fold pooling (each record by the fold model that did not
train on it), per-record adapters, and the result's shape, on small synthetic WFDB records."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_ecg.beats.dataset import BeatSet, build_beatset
from edge_ecg.config import CLASSES, AdaptConfig, WindowConfig
from edge_ecg.evaluate.classify import predict_records
from edge_ecg.runtime.adapt import adapt_records, make_adapter

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BEATS, FakeClassifier, write_db_record  # noqa: E402
from test_adapt import bigeminy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def select(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    return importlib.import_module("adapt_select")


class Stub:
    """Just what :func:`make_adapter` reads of a classifier (no model file)."""

    classes = CLASSES

    def __init__(self, window: WindowConfig):
        self.window = window
        self.rr_features = window.rr_features


def fold_model(seed: int) -> FakeClassifier:
    """A fake classifier whose outputs depend on ``seed`` (one per fold)."""
    clf = FakeClassifier()
    clf.W = np.random.default_rng(seed).standard_normal(clf.W.shape).astype(np.float32)
    return clf


def test_fold_assignment_follows_cv_select_and_refuses_in_fold_records(select, tmp_path):
    import cv_select

    ids = ["mitdb/209", "svdb/800", "mitdb/223", "svdb/808"]
    got = select.fold_assignment(ids)
    for rid, k in got.items():
        name = rid.split("/", 1)[1] if rid.startswith("mitdb/") else rid
        assert name in cv_select.held_out(k - 1, svdb=True)
        assert all(name not in cv_select.held_out(j, svdb=True) for j in range(4) if j != k - 1)
    with pytest.raises(ValueError, match="mitdb/100"):  # a DS2 record is in no fold
        select.fold_assignment(["mitdb/100"])
    # a fold whose metrics say it trained on its own held-out record is not out of fold
    (tmp_path / "fold2").mkdir()
    (tmp_path / "fold2" / "metrics.json").write_text(json.dumps({"train_records": ["svdb/808"]}))
    assert select.fold_assignment(["svdb/800"], tmp_path) == {"svdb/800": 1}
    with pytest.raises(ValueError, match="svdb/808"):
        select.fold_assignment(["svdb/808"], tmp_path)


def test_missing_fold_model_is_a_clear_error(select, tmp_path):
    with pytest.raises(FileNotFoundError, match="fold3.*convert"):
        select.load_fold_models(tmp_path, [3])


def test_adapt_by_model_gives_each_record_its_own_models_adapter(select):
    """Records of two models, interleaved: each record's output equals adapting it alone with
    its own model's adapter (and the two models' adapters differ on it)."""
    with_rr = Stub(WindowConfig())
    no_rr = Stub(WindowConfig(rr_features=()))
    parts, names = [], ["a", "b", "c", "d"]
    for i, name in enumerate(names):
        X, rr, probs, y = bigeminy(120, p_v=0.93, seed=i)
        probs[y == CLASSES.index("N")] = [0.94, 0.06, 0, 0, 0]  # both classes confident: prototypes form
        parts.append((X, rr, probs, y, np.full(len(y), name)))
    X, rr, probs, y, rec = (np.concatenate([p[j] for p in parts]) for j in range(5))
    beats = BeatSet(X, rr, y, rec, np.arange(len(y), dtype=np.int64), WindowConfig())
    model_of = {"a": with_rr, "b": no_rr, "c": with_rr, "d": no_rr}
    config = AdaptConfig(design="prototype")
    out, flags = select.adapt_by_model(model_of, beats, probs, config)
    assert flags.any()
    differs = 0
    for (Xr, rrr, pr, _, _), name in zip(parts, names):
        sel = rec == name
        own, own_flags = adapt_records(make_adapter(model_of[name], config), rec[sel], Xr, rrr, pr)
        np.testing.assert_allclose(out[sel], own, atol=1e-6)
        np.testing.assert_array_equal(flags[sel], own_flags)
        other = no_rr if model_of[name] is with_rr else with_rr
        differs += not np.allclose(adapt_records(make_adapter(other, config), rec[sel], Xr, rrr, pr)[0], own)
    assert differs == len(names)
    # one classifier for all: the plain path
    single, _ = select.adapt_by_model(with_rr, beats, probs, config)
    np.testing.assert_allclose(single, select.adapt_by_model(dict.fromkeys(names, with_rr), beats, probs, config)[0])


@pytest.fixture
def two_folds_data(tmp_path):
    """``mitdb/`` (360 Hz, MLII) records 106 (fold 1) and 209 (fold 2), ``svdb/`` (128 Hz, ECG1)
    records 800 (fold 1) and 808 (fold 2)."""
    root = tmp_path / "data"
    for i, name in enumerate(["106", "209"]):
        write_db_record(root / "mitdb", name, 360.0, ("MLII", "V1"), BEATS, seed=i)
    for i, name in enumerate(["800", "808"]):
        write_db_record(root / "svdb", name, 128.0, ("ECG1", "ECG2"), BEATS, seed=10 + i)
    return root


def test_oof_record_set_scores_each_record_by_its_own_fold(select, two_folds_data):
    root = two_folds_data
    sources = {"mitdb": (root / "mitdb", ["209", "106"]), "svdb": (root / "svdb", ["800", "808"])}
    models = {1: fold_model(1), 2: fold_model(2)}
    assignment = select.fold_assignment([f"{db}/{n}" for db, (_, ns) in sources.items() for n in ns])
    assert assignment == {"mitdb/106": 1, "mitdb/209": 2, "svdb/800": 1, "svdb/808": 2}
    beats, probs, excluded, clf_of = select.oof_record_set(sources, models, assignment)
    assert list(dict.fromkeys(beats.record.tolist())) == ["mitdb/209", "mitdb/106", "svdb/800", "svdb/808"]
    assert excluded == {}
    for rid, k in assignment.items():
        assert clf_of[rid] is models[k]
        db, name = rid.split("/")
        lead = {"mitdb": "MLII", "svdb": "ECG1"}[db]
        alone = build_beatset(root / db, [name], models[k].window, lead=lead, progress=False)
        sel = beats.record == rid
        np.testing.assert_array_equal(beats.sample[sel], alone.sample)
        np.testing.assert_allclose(probs[sel], predict_records(models[k], alone), atol=1e-6)
        other = models[3 - k]
        assert not np.allclose(probs[sel], predict_records(other, alone), atol=1e-3)


def test_run_oof_selection_result(select, two_folds_data):
    root = two_folds_data
    sources = {"mitdb": (root / "mitdb", ["106", "209"]), "svdb": (root / "svdb", ["800", "808"])}
    result = select.run_oof_selection(root / "no-folds", root, sources=sources, progress=False,
                                      models={1: fold_model(1), 2: fold_model(2)})
    assert result["record_fold"] == {"mitdb/106": 1, "mitdb/209": 2, "svdb/800": 1, "svdb/808": 2}
    assert set(result["results"]) == {"none", "cluster", "prototype"}
    n = {db: sum(result["class_counts_per_database"][db].values()) for db in ("mitdb", "svdb")}
    assert n["mitdb"] + n["svdb"] == result["beats"] > 0
    for name, r in result["results"].items():
        assert set(r["per_database"]) == {"mitdb", "svdb"}
        assert set(r["per_record_f1"]) == set(result["record_fold"])
        assert r["figures"]["accuracy"] is not None
    d = result["decision"]
    assert d["winner"] in ("cluster", "prototype")
    assert d["scores"] == {c: result["results"][c]["figures"]["score"] for c in ("cluster", "prototype")}
    json.dumps(result)  # JSON-able


def test_defaults_follow_the_latest_selection_round():
    """What ``--adapt`` runs by default is round 2's decision (tools/results/adapt_select_oof.json)."""
    from edge_ecg.runtime.adapt import ADAPT_BY_DEFAULT

    path = ROOT / "tools" / "results" / "adapt_select_oof.json"
    if not path.is_file():
        pytest.skip("no round-2 result committed (tools/results/adapt_select_oof.json)")
    decision = json.loads(path.read_text())["decision"]
    assert AdaptConfig().design == decision["winner"]
    assert ADAPT_BY_DEFAULT is decision["on_by_default"]


def test_bench_svdb_section_goes_out_of_fold_for_a_model_trained_on_svdb(select, tmp_path, monkeypatch):
    """tools/benchmarks/adapt.py: a model that trained on svdb records gets its svdb section out of
    fold (each record by its fold's model, offline and through the stream); one that did not,
    or has no training record list, is measured itself (None)."""
    from benchmarks import adapt as bench_adapt

    root = tmp_path / "data"
    for i, name in enumerate(["800", "808"]):
        write_db_record(root / "svdb", name, 128.0, ("ECG1", "ECG2"), BEATS, seed=i)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model = model_dir / "m.tflite"
    model.write_bytes(b"not read")
    records, config = ["800", "808"], AdaptConfig()
    assert bench_adapt.out_of_fold_svdb(model, root / "svdb", records, config, None) is None
    metrics = model_dir / "training_metrics.json"
    metrics.write_text(json.dumps({"train_records": ["mitdb/101"], "val_records": ["mitdb/106"]}))
    assert bench_adapt.out_of_fold_svdb(model, root / "svdb", records, config, None) is None
    metrics.write_text(json.dumps({"train_records": ["mitdb/101"], "val_records": ["svdb/808"]}))
    models = {1: fold_model(1), 2: fold_model(2)}
    monkeypatch.setattr(select, "load_fold_models", lambda folds, ks: {k: models[k] for k in sorted(set(ks))})
    streamed = {}
    real_stream_run = bench_adapt.stream_run

    def spy(clf, rec, cfg):
        streamed.setdefault(rec.name, set()).add(id(clf))
        return real_stream_run(clf, rec, cfg)

    monkeypatch.setattr(bench_adapt, "stream_run", spy)
    out = bench_adapt.out_of_fold_svdb(model, root / "svdb", records, config, None)
    assert out["out_of_fold"]["record_fold"] == {"svdb/800": 1, "svdb/808": 2}
    assert out["out_of_fold"]["measured_model_trained_on"] == 1
    assert streamed == {"800": {id(models[1])}, "808": {id(models[2])}}
    assert set(out["offline"]["per_record_f1"]["none"]) == {"svdb/800", "svdb/808"}
    assert out["stream"]["none"]["accuracy"] is not None
    assert "out of fold" in bench_adapt.svdb_oof_title(out)
