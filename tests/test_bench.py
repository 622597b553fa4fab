"""The benchmark suite's quick mode runs end to end and renders every section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FakeClassifier

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("accuracy", "ablation", "noise", "qrs", "latency", "memory", "stream", "adapt", "explain")


@pytest.mark.slow
@pytest.mark.realdata
def test_quick_benchmarks_run_and_render(mitdb_dir, nstdb_dir, tmp_path):
    if not (ROOT / "models" / "edge_ecg_int8.tflite").is_file():
        pytest.skip("no shipped model in models/")
    if mitdb_dir.parent != nstdb_dir.parent:
        pytest.skip("mitdb and nstdb must sit in one data root")
    res = subprocess.run([sys.executable, "tools/bench.py", "all", "--quick", "--data-root", str(mitdb_dir.parent),
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "Could not render" not in report
    assert report.count("\n## ") == len(SECTIONS)
    for name in SECTIONS:
        result = json.loads((tmp_path / f"{name}.json").read_text())
        assert result["_meta"]["quick"] is True and result["_meta"]["command"].startswith("python tools/bench.py")
    assert (tmp_path / "noise_em.png").stat().st_size > 5000
    assert "<!-- bench:headline:start -->" in (ROOT / "README.md").read_text()  # --out leaves README alone


def test_committed_report_links_only_committed_pictures():
    """Every image BENCHMARKS.md and README.md show exists in the repository (paths from the root)."""
    import re

    for doc in ("BENCHMARKS.md", "README.md"):
        text = (ROOT / doc).read_text()
        links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
        missing = [link for link in links if not link.startswith("http") and not (ROOT / link).is_file()]
        assert not missing, f"{doc} links missing pictures: {missing}"


def test_a_failing_section_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    """`bench.py all` keeps going past a broken section, keeps its old result, and exits 1 naming it."""
    import importlib.util
    import types

    spec = importlib.util.spec_from_file_location("bench_under_test", ROOT / "tools" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def section(name, run):
        return types.SimpleNamespace(NAME=name, TITLE=name.title(), run=run, render=lambda r: f"value {r['v']}")

    def broken(ctx):
        raise RuntimeError("the board never answered")

    mods = {"first": section("first", broken), "second": section("second", lambda ctx: {"v": 2})}
    monkeypatch.setattr(bench, "sections", lambda: mods)
    (tmp_path / "first.json").write_text(json.dumps({"v": 1}))  # an earlier result of the broken section
    code = bench.main(["all", "--out", str(tmp_path), "--data-root", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED sections: first" in err and "the board never answered" in err
    assert json.loads((tmp_path / "second.json").read_text())["v"] == 2
    assert json.loads((tmp_path / "first.json").read_text()) == {"v": 1}
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "value 1" in report and "value 2" in report


def test_the_end_to_end_gap_is_broken_down_by_record():
    """DS2 stream vs offline: per-record S/V counts, and the records whose errors grow most."""
    from benchmarks.stream import largest_gaps, per_record_counts

    from edge_ecg.evaluate import score_record

    fs = 360.0
    ref = [100, 500, 900, 1300, 1700]
    classes = ["N", "S", "N", "V", "N"]
    offline = [score_record(ref, classes, ref, classes, fs, name="a"),
               score_record(ref, classes, ref, classes, fs, name="b")]
    # record a: the stream calls one N beat S and adds an extra beat labelled S; b: it misses the V beat
    stream = [score_record(ref, classes, ref + [2100], ["S", "S", "N", "V", "N", "S"], fs, name="a"),
              score_record(ref, classes, [100, 500, 900, 1700], ["N", "S", "N", "N"], fs, name="b")]
    rows = per_record_counts(stream, offline)
    assert rows["a"]["qrs_extra"] == 1 and rows["a"]["qrs_missed"] == 0
    assert rows["a"]["S_stream"] == {"tp": 1, "fp": 2, "fn": 0}
    assert rows["a"]["S_offline"] == {"tp": 1, "fp": 0, "fn": 0}
    assert rows["b"]["qrs_missed"] == 1 and rows["b"]["V_stream"] == {"tp": 0, "fp": 0, "fn": 1}
    assert largest_gaps(rows, "S") == [("a", 2, 0)]
    assert largest_gaps(rows, "V") == [("b", 0, 1)]


def test_snapping_moves_matched_detections_onto_their_reference_beats_only():
    from edge_ecg.evaluate import snap_to_reference as snap

    # 105 and 490 match 100 and 500; 700 is 200 samples from any beat (extra); 1300 is past the end
    out = snap([100, 500, 900], [105, 490, 700, 1300], fs=360.0)
    assert out.tolist() == [100, 500, 700, 1300]
    assert snap([100], [], fs=360.0).tolist() == []


def test_the_end_to_end_gap_is_decomposed_step_by_step(tiny_db):
    """Stream, its detections through the offline builder, snapped detections, reference beats:
    the second equals the first (the live chain builds the offline windows), and the render
    names what jitter and missed/extra beats cost."""
    from benchmarks.stream import render_decomposition

    from edge_ecg.evaluate import end_to_end_scores, gap_decomposition
    from edge_ecg.records.load import load_record

    scores = end_to_end_scores(FakeClassifier(), tiny_db, ["900", "901"], decompose=True)
    assert set(scores) == {"stream", "offline", "at_stream_positions", "snapped", "unclassified"}
    for st, again in zip(scores["stream"], scores["at_stream_positions"]):
        assert (st.matrix == again.matrix).all()
    for off, name in zip(scores["offline"], ["900", "901"]):
        assert off.stats["qrs"]["tp"] == len(load_record(tiny_db, name).beat_samples)
    dec = gap_decomposition(scores)
    assert set(dec) == {"stream", "at_stream_positions", "snapped", "offline"}
    assert dec["stream"] == dec["at_stream_positions"]

    plain = end_to_end_scores(FakeClassifier(), tiny_db, ["900"])
    assert set(plain) == {"stream", "offline", "unclassified"}

    text = "\n".join(render_decomposition({"decomposition": dec}))
    assert "reproduces" in text and "does not reproduce" not in text
    assert "missed and extra beats" in text
    dec["at_stream_positions"] = {"veb_f1": 0.5, "sveb_f1": 0.5}
    assert "does not reproduce" in "\n".join(render_decomposition({"decomposition": dec}))


TOOLS = ("bench.py", "boards.py", "cv_select.py", "adapt_select.py", "impulses.py", "train_memory.py",
         "select_model.py", "retrain_check.py", "lead_check.py", "web_screens.py")


def test_tools_run_as_plain_scripts_without_path_tricks():
    """`python tools/X.py` from the root works with the package installed: no tool edits sys.path
    (Python puts tools/ first; what tools share with the library lives in edge_ecg)."""
    import re

    edits = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*(\+?=|\[)")
    for path in [ROOT / "tools" / name for name in TOOLS] + sorted((ROOT / "tools" / "benchmarks").glob("*.py")):
        assert not edits.search(path.read_text()), f"{path.relative_to(ROOT)} edits sys.path"
    for name in TOOLS:
        res = subprocess.run([sys.executable, f"tools/{name}", "--help"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0 and res.stdout.startswith("usage:"), (name, res.stderr[-800:])


def test_the_ablation_verdict_is_read_from_the_seeds():
    from benchmarks.ablation import verdict

    def runs(**scores):
        return [{"arch": a, "seed": i, "ds2": {"macro_f1": v}} for a, vals in scores.items() for i, v in enumerate(vals)]

    text = verdict(runs(cnn=[0.70, 0.74], lstm=[0.72, 0.75], cnn_lstm=[0.80, 0.78]))
    assert "cnn 70.0, 74.0" in text and "cnn_lstm 78.0, 80.0" in text and "beats either half" in text
    assert "within the seed spread" in verdict(runs(cnn=[0.70, 0.74], lstm=[0.72, 0.79], cnn_lstm=[0.80, 0.78]))
    assert "overlap" in verdict(runs(cnn=[0.70, 0.79], lstm=[0.72, 0.79], cnn_lstm=[0.80, 0.78]))
    assert "no verdict" in verdict(runs(cnn=[0.7], cnn_lstm=[0.8]))


def test_retrain_check_compares_histories_epoch_by_epoch():
    from retrain_check import compare_history

    def hist(*rows):
        return [{"phase": p, "epoch": e, "loss": loss, "val": {"macro_f1": f1}} for p, e, loss, f1 in rows]

    shipped = hist(("float", 1, 0.61, 0.718), ("float", 2, 0.37, 0.808), ("qat", 1, 0.30, 0.80))
    same = compare_history(hist(("float", 1, 0.61, 0.718), ("float", 2, 0.37, 0.808), ("qat", 1, 0.30, 0.80)), shipped)
    assert same["identical"] == same["epochs"] == same["shipped_epochs"] == 3
    drift = compare_history(hist(("float", 1, 0.61, 0.718), ("float", 2, 0.3701, 0.808), ("float", 3, 0.3, 0.8)), shipped)
    assert drift["identical"] == 1 and [r["identical"] for r in drift["rows"]] == [True, False, False]
    assert drift["rows"][2]["shipped_loss"] is None


def test_a_whole_stream_process_is_timed_by_its_cpu(tiny_db):
    """Issue 28's replay target counts start-up: the benchmark times ``edge-ecg stream --replay`` as a
    command, by the child's CPU time."""
    from benchmarks.stream import WHOLE_PROCESS_TARGET_X, whole_process

    model = ROOT / "models" / "edge_ecg_int8.tflite"
    if not model.is_file():
        pytest.skip("no shipped model in models/")
    got = whole_process(model, tiny_db / "900", 40.0, repeats=2)
    assert got["record"] == "900" and len(got["cpu_s_all"]) == 2 and got["cpu_s"] == min(got["cpu_s_all"]) > 0.05
    assert abs(got["x_realtime_cpu"] - 40.0 / got["cpu_s"]) < 0.01 * got["x_realtime_cpu"]
    assert got["met"] == (got["x_realtime_cpu"] >= WHOLE_PROCESS_TARGET_X) and got["target_x"] == 1500.0
    with pytest.raises(RuntimeError, match="stream run failed"):
        whole_process(model, tiny_db / "no_such_record", 40.0, repeats=1)


def test_the_stability_benchmark_reads_the_latest_decided_round_and_its_kept_runs(tmp_path):
    from benchmarks.seeds import _run_dir, latest_round

    assert latest_round(tmp_path) is None
    (tmp_path / "cv_round9.json").write_text('{"chosen": "a"}')
    (tmp_path / "cv_round11.json").write_text('{"chosen": "b"}')
    (tmp_path / "cv_round12.json").write_text('{"candidates": []}')  # not decided yet
    assert latest_round(tmp_path).name == "cv_round11.json"
    for folder in ("cv8_runs/b", "cv11_runs/b", "cv11_runs/b@seed2"):
        (tmp_path / folder / "fold1").mkdir(parents=True)
        (tmp_path / folder / "fold1" / "model_qat.keras").write_bytes(b"x")
    assert _run_dir("b", 0, tmp_path) == tmp_path / "cv11_runs" / "b" / "fold1"  # the newest round's copy
    assert _run_dir("b", 2, tmp_path) == tmp_path / "cv11_runs" / "b@seed2" / "fold1"
    assert not (_run_dir("b", 1, tmp_path) / "model_qat.keras").is_file()  # never trained: run() says so
