"""tools/cv_select.py: the folds and the choice, without training anything."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edge_ecg.config import RunConfig, from_dict
from edge_ecg.records.aami import DS1, DS2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cv():
    spec = importlib.util.spec_from_file_location("cv_select", ROOT / "tools" / "cv_select.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folds_hold_out_every_ds1_record_exactly_once_and_never_ds2(cv):
    held = [r for fold in cv.FOLDS for r in fold]
    assert sorted(held) == sorted(DS1)
    assert not set(held) & set(DS2)
    assert cv.FOLDS[0] == RunConfig().train.val_records  # fold 1 is the usual validation set


def test_fold_configs_are_valid_run_configs_differing_only_in_validation_records(cv):
    for name in ("rr_scale5", "rr_scale5_rrnoise"):
        base = json.loads((cv.CANDIDATES / f"{name}.json").read_text())
        for k, fold in enumerate(cv.FOLDS):
            config = cv.fold_config(name, k)
            from_dict(RunConfig, config)  # strict: unknown keys would raise
            assert tuple(config["train"]["val_records"]) == fold
            config["train"]["val_records"] = base["train"]["val_records"]
            assert config == base


def test_a_challenger_must_beat_the_baseline_by_more_than_the_margin(cv):
    assert cv.choose([0.80, 0.804], 0.005) == 0
    assert cv.choose([0.80, 0.806], 0.005) == 1
    assert cv.choose([0.80, 0.79, 0.83], 0.005) == 2


def test_an_unknown_candidate_is_one_clear_line(cv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cv.main(["train", "no_such_candidate", "--runs", str(tmp_path)])
    assert "no candidate 'no_such_candidate'" in str(exc.value)
    assert not any(tmp_path.iterdir())


def test_scores_are_cached_until_a_fold_is_retrained(cv, tmp_path, monkeypatch):
    import os

    calls = []
    monkeypatch.setattr(cv, "_score_folds", lambda c, runs, mitdb, svdb=False: calls.append(c) or {"score": 0.5 + len(calls)})
    for k in range(len(cv.FOLDS)):
        run = cv.fold_dir(tmp_path, "cand", k)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text("{}")
        os.utime(run / "metrics.json", (1_000_000, 1_000_000))
    assert cv.score_candidate("cand", tmp_path, tmp_path)["score"] == 1.5
    assert cv.score_candidate("cand", tmp_path, tmp_path)["score"] == 1.5  # from cv_score.json
    assert calls == ["cand"]
    (cv.fold_dir(tmp_path, "cand", 2) / "metrics.json").write_text("{}")  # retrained: newer than the cache
    assert cv.score_candidate("cand", tmp_path, tmp_path)["score"] == 2.5


def test_score_fold_scores_finished_folds_ahead_and_score_reuses_them(cv, tmp_path, monkeypatch, capsys):
    import os

    calls = []
    monkeypatch.setattr(cv, "_end_to_end", lambda run, mitdb, records: calls.append(run.name) or
                        ([f"s:{r}" for r in records], [f"o:{r}" for r in records]))
    monkeypatch.setattr(cv, "_mitdb", lambda path: tmp_path)
    in_run = []
    monkeypatch.setattr(cv, "_in_run", lambda run, mitdb, records: in_run.append(run.name) or
                        {r: {"in_run": [2, 1]} for r in records})
    for k in (0, 2):  # folds 1 and 3 finished, 2 and 4 still training
        run = cv.fold_dir(tmp_path, "cand", k)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text("{}")
        os.utime(run / "metrics.json", (1_000_000, 1_000_000))
    assert cv.main(["score-fold", "cand", "--svdb", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cand fold 1: scored" in out and "cand fold 2: not trained yet, skipped" in out
    assert calls == ["fold1", "fold3"] and in_run == ["fold1", "fold3"]  # --svdb: round 10's in-run counts too
    assert cv.fold_in_run(cv.fold_dir(tmp_path, "cand", 0), tmp_path, cv.held_out(0, True))["svdb/800"] == {"in_run": [2, 1]}
    assert in_run == ["fold1", "fold3"]  # from the run folder's cache
    again = cv.fold_scores(cv.fold_dir(tmp_path, "cand", 2), tmp_path, cv.held_out(2, True))
    assert calls == ["fold1", "fold3"]  # from the run folder's cache
    assert again == ([f"s:{r}" for r in cv.held_out(2, True)], [f"o:{r}" for r in cv.held_out(2, True)])
    cv.fold_scores(cv.fold_dir(tmp_path, "cand", 2), tmp_path, cv.held_out(2, False))  # other records: scored anew
    assert calls == ["fold1", "fold3", "fold3"]


def test_folds_reads_kept_scores_only_and_marks_what_is_missing(cv, tmp_path, monkeypatch, capsys):
    """`folds` prints a reading of the scored folds from their kept files; it never scores."""
    monkeypatch.setattr(cv, "_end_to_end", lambda run, mitdb, records: pytest.fail("folds must not score"))
    scores = {}

    def fake_summary(offline, stream):
        scores["n"] = len(offline)
        return {"offline": {"macro_f1": 0.5, "S_f1": 0.25, "V_f1": 0.75}, "stream": {"macro_f1": 0.625}, "score": 0.5}

    monkeypatch.setattr(cv, "_summary", fake_summary)
    run = cv.fold_dir(tmp_path, "cand", 1)
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    records = cv.held_out(1, True)
    import pickle

    (run / "held_out_scores.pkl").write_bytes(pickle.dumps({"records": list(records), "stream": list(records),
                                                            "offline": list(records), "metrics_sha256": cv._metrics_hash(run)}))
    (run / "held_out_inrun.json").write_text(json.dumps({"records": list(records), "metrics_sha256": cv._metrics_hash(run),
                                                         "counts": {r: {"in_run": [3, 2]} for r in records}}))
    trained_only = cv.fold_dir(tmp_path, "cand", 2)
    trained_only.mkdir(parents=True)
    (trained_only / "metrics.json").write_text("{}")
    assert cv.main(["folds", "cand", "--svdb", "--runs", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("cand ") and "fold 1: -" in line and "fold 3: -" in line and "fold 4: -" in line
    assert f"fold 2: 50.0/62.5 S 25 V 75 in-run {2 * len(records)}/{3 * len(records)}" in line
    assert scores["n"] == len(records)
    (run / "metrics.json").write_text('{"retrained": 1}')  # kept scores of an older run are not read
    assert cv.fold_reading(run, records) is None


@pytest.mark.parametrize("command", ["score", "train"])
def test_a_missing_data_folder_is_one_line_and_exit_1(cv, tmp_path, capsys, command):
    runs = tmp_path / "runs"
    assert cv.main([command, "rr_scale5", "--runs", str(runs), "--data", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cv_select: ") and "no such folder" in err and len(err.splitlines()) == 1
    assert not runs.exists()  # no fold was started


def test_train_without_data_anywhere_stops_before_any_fold(cv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGE_ECG_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    assert cv.main(["train", "rr_scale5", "--runs", str(runs)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no mitdb data found" in err and len(err.splitlines()) == 1
    assert not runs.exists()


def test_every_committed_candidate_is_a_complete_configuration(cv):
    """Candidates spell out every field, so a change of the built-in defaults cannot change them."""
    from edge_ecg.config import to_dict

    for path in sorted(cv.CANDIDATES.glob("*.json")):
        written = json.loads(path.read_text())
        assert written == to_dict(from_dict(RunConfig, written)), path.name


def test_seed_variants_train_the_same_candidate_with_another_seed(cv):
    assert cv.split_seed("rr_scale5_rrpath@seed2") == ("rr_scale5_rrpath", 2)
    assert cv.split_seed("rr_scale5_rrpath") == ("rr_scale5_rrpath", None)
    assert cv.with_seeds("a", [0, 1, 2]) == ["a", "a@seed1", "a@seed2"]
    base, seeded = cv.fold_config("rr_scale5_rrpath", 2), cv.fold_config("rr_scale5_rrpath@seed2", 2)
    assert seeded["train"]["seed"] == 2 and base["train"]["seed"] == 0
    seeded["train"]["seed"] = 0
    assert seeded == base
    with pytest.raises(SystemExit):
        cv.split_seed("a@seedX")


def test_several_seeds_score_by_their_mean(cv, tmp_path, monkeypatch, capsys):
    fake = {"a": 0.70, "a@seed1": 0.72, "b": 0.75, "b@seed1": 0.69}
    monkeypatch.setattr(cv, "score_candidate", lambda name, runs, mitdb, svdb=False: {
        "score": fake[name], "offline": {"macro_f1": fake[name], "S_f1": 0.3, "V_f1": 0.8},
        "stream": {"macro_f1": fake[name], "S_f1": 0.3, "V_f1": 0.8}})
    monkeypatch.setattr(cv, "_mitdb", lambda path: tmp_path)
    out = tmp_path / "r.json"
    assert cv.main(["score", "a", "b", "--seeds", "0,1", "--runs", str(tmp_path), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [round(c["score"], 3) for c in result["candidates"]] == [0.71, 0.72]
    assert result["chosen"] == "b"  # by the mean, though its seed 1 is the worst run of all
    assert result["seeds"] == [0, 1] and set(result["candidates"][1]["seeds"]) == {"0", "1"}


def test_round10_value_charges_an_unstable_in_run_decision(cv):
    """Rule 2: mean seed score minus a third of the in-run sensitivity's sample sd."""
    assert cv.round10_value([0.8], [0.3]) == pytest.approx(0.8)
    steady = cv.round10_value([0.80, 0.80, 0.80], [0.60, 0.60, 0.60])
    shaky = cv.round10_value([0.80, 0.80, 0.80], [0.30, 0.60, 0.90])
    assert steady == pytest.approx(0.80) and shaky == pytest.approx(0.80 - 0.30 / 3)


def test_round10_only_a_fast_enough_challenger_replaces_the_baseline(cv):
    """Rules 3-4: an ineligible (too slow) challenger never wins; no margin; ties go to the first listed."""
    assert cv.round10_choose([0.70, 0.75], [True, False]) == 0
    assert cv.round10_choose([0.70, 0.7001], [True, True]) == 1
    assert cv.round10_choose([0.70, 0.69], [True, True]) == 0
    assert cv.round10_choose([0.70, 0.75, 0.75], [True, True, True]) == 1
    assert cv.round10_choose([0.70, 0.72, 0.75], [True, True, True]) == 2


def test_round10_candidates_meet_the_committed_speed_gate_before_training(cv):
    """The speed each round-10 challenger was measured at (random weights, tools/arch_speed.py) is
    committed, and the candidates' windows are what the model card says."""
    speed = json.loads((ROOT / "tools" / "results" / "arch_speed_round10.json").read_text())["models"]
    for name in ("fast_short", "fast_short_rr"):
        assert speed[name]["ratio_p50"] <= cv.ROUND10_SPEED_LIMIT
        config = json.loads((cv.CANDIDATES / f"{name}.json").read_text())
        assert (config["window"]["pre_s"], config["window"]["post_s"], config["model"]["lstm_units"]) == (0.35, 0.5, 16)
    assert cv.IN_RUN_PREV_RR_RATIO == 0.85


def test_round11_candidates_are_what_its_rule_says_and_meet_the_speed_gate(cv):
    speed = json.loads((ROOT / "tools" / "results" / "arch_speed_round11.json").read_text())["models"]
    expected = {"fast_wide_rr": (1.5, 1.0, 4, 24), "fast_mid_rr": (0.7, 0.8, 3, 24)}
    for name, (pre, post, pool, units) in expected.items():
        assert speed[name]["ratio_p50"] <= cv.ROUND10_SPEED_LIMIT
        config = json.loads((cv.CANDIDATES / f"{name}.json").read_text())
        w, m = config["window"], config["model"]
        assert (w["pre_s"], w["post_s"], m["pool"], m["lstm_units"]) == (pre, post, pool, units)
        assert w["rr_features"][-2:] == ["pre_rr", "rr_irregularity_median"]
        assert name in cv.ROUND11_RULE


def test_round12_challenger_is_fast_wide_rr_trained_on_runs_and_timed_as_it(cv):
    speed = json.loads((ROOT / "tools" / "results" / "arch_speed_round11.json").read_text())["models"]
    base = json.loads((cv.CANDIDATES / "fast_wide_rr.json").read_text())
    runs = json.loads((cv.CANDIDATES / "wide_runs.json").read_text())
    assert runs["augment"].pop("run_prob") == 0.3 and runs["train"].pop("in_run_weight") == 4.0
    assert base["augment"].pop("run_prob") == 0.0 and base["train"].pop("in_run_weight") == 1.0
    assert runs == base  # nothing else differs
    assert cv.same_network("wide_runs", speed) == "fast_wide_rr"
    assert cv.same_network("fast_wide_rr", speed) == "fast_wide_rr"
    assert cv.same_network("rrpath_svdb", speed) is None  # the shipped recipe: another network
    for name in ("fast_wide_rr", "wide_runs", "run_prob 0.3", "in_run_weight 4", "arch_speed_round11.json"):
        assert name in cv.ROUND12_RULE
    for key, value in (("augment", "run_prob"), ("train", "in_run_weight")):  # real settings, not typos
        from edge_ecg.config import RunConfig, from_dict

        assert getattr(getattr(from_dict(RunConfig, json.loads((cv.CANDIDATES / "wide_runs.json").read_text())), key),
                       value) in (0.3, 4.0)


def test_kept_fold_scores_survive_a_checkout_and_not_a_retraining(cv, tmp_path, monkeypatch):
    """A fold's kept scores name its metrics.json by hash: file times reset by a git checkout do not
    throw them away, a retrained fold (other metrics.json) does."""
    import os

    calls = []
    monkeypatch.setattr(cv, "_in_run", lambda run, mitdb, records: calls.append(1) or {r: {"in_run": [1, 1]} for r in records})
    run = cv.fold_dir(tmp_path, "cand", 0)
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"seconds": 1}')
    records = cv.held_out(0, True)
    cv.fold_in_run(run, tmp_path, records)
    os.utime(run / "held_out_inrun.json", (1_000, 1_000))  # older than metrics.json, as after a checkout
    cv.fold_in_run(run, tmp_path, records)
    assert calls == [1]
    (run / "metrics.json").write_text('{"seconds": 2}')  # retrained
    cv.fold_in_run(run, tmp_path, records)
    assert calls == [1, 1]
