"""Training streamed from shards, under tf.distribute strategies, and two workers on localhost."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_ecg.cli import main

pytest.importorskip("tf_keras")
pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {
    "model": {"conv_filters": [8, 8], "lstm_units": 8, "dense_units": 8},
    "augment": {"noise_prob": 0.0},
    "train": {"records": ["900", "901"], "val_records": ["901"], "batch_size": 16, "qat_epochs": 1},
}
RUN_FILES = {"config.json", "model.keras", "model_qat.keras", "qat_wrapped.h5", "metrics.json", "curves.png",
             "checkpoints"}


def _config(tmp_path, augment=None, **train):
    path = tmp_path / "smoke.json"
    path.write_text(json.dumps({**SMOKE, "train": {**SMOKE["train"], **train},
                                "augment": {**SMOKE["augment"], **(augment or {})}}))
    return path


def _train_args(tiny_db, config, out, *extra):
    return ["train", "--data", str(tiny_db), "--config", str(config), "--epochs", "1", "--out", str(out), *extra]


# the second: issue 28's synthetic runs and in-run weight drawn the same way from disk as in memory
@pytest.mark.parametrize("extra", [{}, {"augment": {"run_prob": 0.5}, "in_run_weight": 3.0}], ids=["plain", "runs"])
def test_sharded_training_reads_batch_by_batch_and_equals_the_in_memory_run(tiny_db, tmp_path, monkeypatch, extra):
    from edge_ecg.beats.shards import ShardedBeats

    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    reads = []
    windows = ShardedBeats.windows
    monkeypatch.setattr(ShardedBeats, "windows", lambda self, index: reads.append(len(index)) or windows(self, index))
    history = {}
    for feed in ("memory", "shards"):
        out = tmp_path / feed
        res = CliRunner().invoke(main, _train_args(tiny_db, _config(tmp_path, feed=feed, **extra), out, "--no-qat",
                                                   "--quiet"), catch_exceptions=False)
        assert res.exit_code == 0, res.output
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["feed"] == feed
        assert json.loads((out / "config.json").read_text())["augment"]["run_prob"] == (0.5 if extra else 0.0)
        history[feed] = metrics["history"]
    # 42 training beats of 900 in batches of 16, read from disk per batch (1: the signature probe);
    # the 42 validation beats of 901 are read once, into memory
    assert sorted(reads) == [1, 10, 16, 16, 42]
    assert history["shards"][0]["steps"] == history["memory"][0]["steps"] == 3
    assert history["shards"][0]["loss"] == history["memory"][0]["loss"]  # bit for bit
    assert history["shards"][0]["val"] == history["memory"][0]["val"]


def test_malformed_tf_config_is_one_line_and_writes_nothing(tiny_db, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = _config(tmp_path)
    for text, needle in [("{not json", "TF_CONFIG is not valid JSON"),
                         ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}',
                          "task.index 3 is out of range"),
                         ("", "needs the TF_CONFIG environment variable")]:
        monkeypatch.setenv("TF_CONFIG", text)
        res = CliRunner().invoke(main, _train_args(tiny_db, config, out, "--strategy", "multi_worker"))
        assert res.exit_code != 0
        assert len(res.output.strip().splitlines()) == 1 and needle in res.output, res.output
        assert not out.exists()
    res = CliRunner().invoke(main, _train_args(tiny_db, config, out, "--strategy", "ring"))
    assert res.exit_code == 2 and "multi_worker" in res.output


@pytest.mark.slow
def test_mirrored_strategy_trains_float_and_qat_and_writes_the_run_folder(tiny_db, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, _train_args(tiny_db, _config(tmp_path), out, "--strategy", "mirrored", "--quiet"),
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == RUN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"]["name"] == "mirrored" and metrics["strategy"]["replicas"] >= 1
    assert [h["phase"] for h in metrics["history"]] == ["float", "qat"]  # QAT runs under the strategy too
    assert all(math.isfinite(h["loss"]) for h in metrics["history"])


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_workers_on_localhost_step_together_and_only_the_chief_writes(tiny_db, tmp_path):
    """One short epoch (float, then QAT) with MultiWorkerMirroredStrategy across two processes."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    config, out = _config(tmp_path), tmp_path / "run"
    procs, scratch = [], []
    for index in range(2):
        scratch.append(tmp_path / f"tmp{index}")
        scratch[-1].mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch[-1]), "CUDA_VISIBLE_DEVICES": "",
               "EDGE_ECG_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "edge_ecg", "train", *_train_args(tiny_db, config, out, "--strategy", "multi_worker")[1:]],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, text in zip(procs, outputs):
        assert proc.returncode == 0, text[-3000:]
    losses = []
    for text in outputs:
        found = re.findall(r"^(float|qat) epoch 1/1: loss (\S+),", text, flags=re.M)
        assert [phase for phase, _ in found] == ["float", "qat"], text[-3000:]
        losses.append([float(v) for _, v in found])
    assert all(math.isfinite(v) for v in losses[0] + losses[1])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)  # one model: the same all-reduced loss
    assert "run folder:" in outputs[0] and re.search(r"done: worker 1 of 2, \d+ steps", outputs[1])

    assert {p.name for p in out.iterdir()} == RUN_FILES  # the chief wrote the whole run folder
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == {"name": "multi_worker", "workers": 2, "replicas": 2}
    # 42 training beats in global batches of 16, split between the two workers' replicas
    assert [h["steps"] for h in metrics["history"]] == [2, 2]
    assert not list(scratch[1].iterdir())  # the other worker's temporary run folder is gone
