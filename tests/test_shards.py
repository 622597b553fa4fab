"""Beat shards on disk, per-batch augmentation, TF_CONFIG parsing and global-batch splitting (no TensorFlow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_ecg.config import AugmentConfig, TrainConfig, WindowConfig
from edge_ecg.errors import ConfigError, DataError

WINDOW = WindowConfig()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_shards_hold_exactly_the_built_beats_and_read_back_any_rows(tiny_db, cache):
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.beats.shards import build_shards, database_sources, shard_root

    ref = build_beatset(tiny_db, ["900", "901"], WINDOW, cache=False, progress=False)
    beats = build_shards(database_sources(tiny_db, ["900", "901"], WINDOW), WINDOW, progress=False)
    assert len(beats) == len(ref) == 84
    for name in ("y", "rr", "record", "sample"):
        np.testing.assert_array_equal(getattr(beats, name), getattr(ref, name))
    index = np.array([83, 0, 41, 42, 0, 7])  # both shards, out of order, a repeat
    np.testing.assert_array_equal(beats.windows(index), ref.X[index])
    loaded = beats.records(["901"]).load()
    np.testing.assert_array_equal(loaded.X, ref.X[ref.record == "901"])
    assert beats.class_counts() == ref.class_counts()
    assert len(list(shard_root().glob("*.X.npy"))) == 2  # one shard per record
    assert beats.index_bytes < ref.X.nbytes / 10  # what stays in memory is small beside the windows


def test_shards_are_reused_and_ids_carry_the_database(tiny_db, cache):
    from edge_ecg.beats.shards import RecordSource, build_shards, database_sources

    sources = database_sources(tiny_db, ["900", "901"], WINDOW, db="mine")
    build_shards(sources, WINDOW, progress=False)
    calls = []

    def counted(s):
        return RecordSource(s.rid, s.identity, lambda: calls.append(s.rid) or s.build())

    beats = build_shards([counted(s) for s in sources], WINDOW, progress=False)
    assert calls == []  # both shards were on disk already
    assert set(beats.record.tolist()) == {"mine/900", "mine/901"}
    other = WindowConfig(pre_s=0.5, post_s=0.5)
    beats = build_shards([counted(s) for s in database_sources(tiny_db, ["900"], other)], other, progress=False)
    assert calls == ["900"] and beats.windows([0]).shape == (1, other.length)  # a new window: a new shard
    with pytest.raises(DataError, match="listed twice"):
        build_shards(sources + sources[:1], WINDOW, progress=False)


def test_an_interrupted_shard_build_leaves_nothing_that_is_read(tiny_db, cache, tmp_path):
    from edge_ecg.beats.shards import RecordSource, build_shards, database_sources

    good = database_sources(tiny_db, ["900"], WINDOW)[0]

    def broken():
        beats = good.build()
        beats.rr = "not numbers"  # fails while the index is being written, after the windows
        return beats

    root = tmp_path / "shards"
    with pytest.raises(Exception):
        build_shards([RecordSource("900", good.identity, broken)], WINDOW, root=root, progress=False)
    assert not list(root.glob("*.index.npz")) and not list(root.glob("*.tmp"))
    beats = build_shards([good], WINDOW, root=root, progress=False)  # the next build completes it
    assert len(beats) == 42


def test_float16_shards_round_trip_within_half_precision(tiny_db, tmp_path):
    from edge_ecg.beats.shards import build_shards, database_sources

    src = database_sources(tiny_db, ["900"], WINDOW)
    full = build_shards(src, WINDOW, root=tmp_path / "a", progress=False)
    half = build_shards(src, WINDOW, root=tmp_path / "b", dtype="float16", progress=False)
    a, b = full.windows(np.arange(42)), half.windows(np.arange(42))
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=2e-3)
    with pytest.raises(ConfigError, match="float32, float16"):
        build_shards(src, WINDOW, root=tmp_path / "c", dtype="int8", progress=False)


def test_augmenting_batch_by_batch_equals_augmenting_the_epoch_at_once():
    from edge_ecg.beats.augment import NoiseBank, apply_augmentation, augment_windows, draw_augmentation

    rng = np.random.default_rng(0)
    bank = NoiseBank(fs=WINDOW.fs, tracks={"em": [rng.standard_normal(9000).astype(np.float32)],
                                           "ma": [rng.standard_normal(7000).astype(np.float32)] * 2}, minutes=1)
    cfg = AugmentConfig(noise_types=("em", "ma"), noise_prob=0.5, wander_prob=0.5)
    X = rng.standard_normal((200, WINDOW.length)).astype(np.float32)
    whole = augment_windows(X, np.random.default_rng(5), cfg, WINDOW, bank)
    draws = draw_augmentation(len(X), np.random.default_rng(5), cfg, WINDOW, bank)
    assert (draws.noise[:, 0] >= 0).any() and (~np.isnan(draws.wander[:, 0])).any()
    rows = np.random.default_rng(1).permutation(len(X))
    for part in np.array_split(rows, 7):
        np.testing.assert_array_equal(apply_augmentation(X[part], draws, part, cfg, WINDOW, bank), whole[part])
    off = AugmentConfig(enabled=False)
    gen = np.random.default_rng(2)
    draws = draw_augmentation(10, gen, off, WINDOW)
    assert gen.random() == np.random.default_rng(2).random()  # nothing drawn when augmentation is off
    np.testing.assert_array_equal(apply_augmentation(X[:10], draws, np.arange(10), off, WINDOW), X[:10])


def _tf_config(workers=2, kind="worker", index=0, chief=False):
    cluster = {"worker": [f"localhost:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["localhost:1999"]
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_tf_config_gives_each_process_its_place():
    from edge_ecg.model.distribute import ClusterRole, read_cluster

    assert read_cluster(_tf_config(index=0)) == ClusterRole(workers=2, index=0, is_chief=True)
    assert read_cluster(_tf_config(index=1)) == ClusterRole(workers=2, index=1, is_chief=False)
    assert read_cluster(_tf_config(chief=True, kind="chief")) == ClusterRole(workers=3, index=0, is_chief=True)
    assert read_cluster(_tf_config(chief=True, index=0)) == ClusterRole(workers=3, index=1, is_chief=False)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "needs the TF_CONFIG environment variable"),
        ("{cluster: 1", "TF_CONFIG is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "no 'cluster' object"),
        ('{"cluster": {"worker": ["a:1"]}}', "no 'task' object"),
        (_tf_config(index=2), "task.index 2 is out of range: cluster.worker has 2 addresses"),
        (_tf_config(index=-1), "task.index -1 is out of range"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}', "task.index must be a whole"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task.type 'chief' is not a role"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "'a', which is not host:port"),
        ('{"cluster": {"worker": ["a:99999"]}, "task": {"type": "worker", "index": 0}}', "not host:port"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "role 'ps'"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "address twice"),
    ],
)
def test_malformed_tf_config_is_one_clear_line(text, needle):
    from edge_ecg.model.distribute import read_cluster

    with pytest.raises(ConfigError) as err:
        read_cluster(text)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_strategy_and_feed_are_validated():
    from edge_ecg.model.distribute import ClusterRole, cluster_role

    assert cluster_role("mirrored") == ClusterRole()
    with pytest.raises(ConfigError, match="train.strategy must be one of default, mirrored, multi_worker"):
        TrainConfig(strategy="horovod")
    with pytest.raises(ConfigError, match="train.feed"):
        TrainConfig(feed="disk")
    with pytest.raises(ConfigError, match="only with train.strategy = 'default'"):
        TrainConfig(feed="memory", strategy="mirrored")


def test_global_batches_are_split_so_no_replica_is_left_empty():
    from edge_ecg.model.distribute import epoch_batches

    one = epoch_batches(10, 4)
    assert [b.tolist() for b in one] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    two = epoch_batches(10, 4, replicas=2)
    assert [len(b) for b in two] == [4, 4]  # the short tail is left out under a strategy
    assert [len(b) for b in epoch_batches(3, 4, replicas=2)] == [3]
    with pytest.raises(ConfigError, match="cannot be split among 4 replicas"):
        epoch_batches(3, 4, replicas=4)
    assert epoch_batches(0, 4) == []
