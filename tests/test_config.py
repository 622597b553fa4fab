import json
from pathlib import Path

import pytest

from edge_ecg.config import RunConfig, WindowConfig, config_hash, from_dict, load_config, to_dict, to_json
from edge_ecg.errors import ConfigError


def test_round_trip_through_json(tmp_path):
    cfg = RunConfig(window=WindowConfig(fs=250.0, pre_s=1.0))
    path = tmp_path / "c.json"
    path.write_text(to_json(cfg))
    assert load_config(path) == cfg


def test_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[window]\nfs = 250\nlead = "V1"\n[train]\nepochs = 3\n')
    cfg = load_config(path)
    assert cfg.window.fs == 250.0 and cfg.window.lead == "V1" and cfg.train.epochs == 3


def test_unknown_key_names_the_key_and_suggests(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"epoch": 3}}))
    with pytest.raises(ConfigError, match=r"unknown key c.json.train.epoch \(did you mean 'epochs'\?\)"):
        load_config(path)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"window": {"fs": "fast"}}, "window.fs must be a number"),
        ({"train": {"epochs": 2.5}}, "train.epochs must be a whole number"),
        ({"train": {"qat": "yes"}}, "train.qat must be true or false"),
        ({"window": {"rr_features": ["pre_rr", "bogus"]}}, "unknown RR feature 'bogus'"),
        ({"model": {"arch": "transformer"}}, "unknown arch 'transformer'"),
        ({"window": {"lowpass_hz": 200.0}}, "lowpass_hz < fs/2"),
        ({"window": {"resample_width": 0}}, "window.resample_width must be a whole number from 1 to 16"),
    ],
)
def test_bad_values_are_one_line_errors(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        from_dict(RunConfig, data)
    assert "\n" not in str(info.value)


def test_broken_file_and_missing_file(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid json"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.json")


def test_hash_changes_with_content_only():
    assert config_hash(WindowConfig()) == config_hash(WindowConfig())
    assert config_hash(WindowConfig()) != config_hash(WindowConfig(post_s=0.5))
    assert to_dict(WindowConfig())["rr_features"] == ["pre_rr_ratio", "prev_rr_ratio", "pre_rr_long_ratio"]


def test_window_geometry():
    w = WindowConfig(fs=180.0, pre_s=1.5, post_s=1.0)
    assert (w.pre, w.post, w.length) == (270, 180, 451)


def test_the_built_in_configuration_is_the_ds1_only_models():
    """The dataclass defaults are the DS1-only recipe kept in models/ds1_only/ (the model comparable
    with published inter-patient work); a config file's missing keys take them."""
    from pathlib import Path

    ds1_only = Path(__file__).resolve().parents[1] / "models" / "ds1_only" / "config.json"
    assert load_config(ds1_only) == RunConfig()


def test_train_with_no_configuration_starts_from_the_shipped_models():
    """`edge-ecg train` with no options retrains models/ (README and the model card say so):
    DS1 + the 40 even-numbered svdb records and round 12's `wide_runs` (a coarser, smaller
    network, two more RR features, training on runs); everything else the built-in recipe."""
    from dataclasses import replace
    from pathlib import Path

    from edge_ecg.stream.classifier_files import shipped_config

    shipped = shipped_config()
    assert shipped == load_config(Path(__file__).resolve().parents[1] / "models" / "config.json")
    assert shipped.train.data == ("mitdb:DS1", "svdb:EVEN")
    assert any(r.startswith("svdb/") for r in shipped.train.val_records)
    base = RunConfig()
    same_schedule = replace(shipped.train, data=base.train.data, val_records=base.train.val_records,
                            in_run_weight=base.train.in_run_weight)
    assert same_schedule == base.train  # the schedule is the DS1-only recipe's
    assert shipped.train.in_run_weight == 4.0 and shipped.augment.run_prob == 0.3
    assert replace(shipped.augment, run_prob=base.augment.run_prob) == base.augment
    assert (shipped.model.pool, shipped.model.lstm_units) == (4, 24)
    assert replace(shipped.model, pool=base.model.pool, lstm_units=base.model.lstm_units) == base.model
    assert shipped.window.rr_features == base.window.rr_features + ("pre_rr", "rr_irregularity_median")
    assert replace(shipped.window, rr_features=base.window.rr_features) == base.window


def test_feed_auto_holds_beats_in_memory_only_when_they_fit():
    from dataclasses import replace

    from edge_ecg.model.train import AUTO_FEED_BEATS_PER_SECOND, MEMORY_FEED_BYTES_PER_BEAT, resolve_feed

    tc = RunConfig().train
    assert tc.feed == "auto"
    hour = 3600.0  # about 3 * 3600 * 20 kB = 216 MB of beats budgeted
    need = hour * AUTO_FEED_BEATS_PER_SECOND * MEMORY_FEED_BYTES_PER_BEAT
    assert resolve_feed(tc, hour, available=int(4 * need))[0] == "memory"
    feed, why = resolve_feed(tc, hour, available=int(1.5 * need))
    assert feed == "shards" and "would not fit" in why
    assert resolve_feed(tc, hour, available=None)[0] == "memory"  # unknown: the faster feed
    assert resolve_feed(replace(tc, strategy="mirrored"), hour, available=int(4 * need))[0] == "shards"
    assert resolve_feed(replace(tc, feed="shards"), hour, available=int(4 * need)) == ("shards", "train.feed")
    assert resolve_feed(replace(tc, feed="memory"), 1e9, available=1) == ("memory", "train.feed")
    with pytest.raises(ConfigError, match="train.feed must be one of auto, shards, memory"):
        replace(tc, feed="disk")


def test_old_train_records_become_a_train_data_spec_on_load(tmp_path):
    """One training-data path: an old config's train.records (MIT-BIH names) is read as the
    spec mitdb:<names>; an empty list (DS1) is dropped; records beside data is an error."""
    def load(train):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({"train": train}))
        return load_config(path).train

    assert load({"records": ["101", "106"]}).data == ("mitdb:101,106",)
    assert load({"records": [], "data": ["svdb"]}).data == ("svdb",)
    assert load({"records": []}).data == () and load({"records": []}).specs() == ("mitdb:DS1",)
    with pytest.raises(ConfigError, match="give data only"):
        load({"records": ["101"], "data": ["svdb"]})
    assert not hasattr(load({}), "records")
    shipped = json.loads((Path(__file__).resolve().parents[1] / "models" / "config.json").read_text())
    assert "records" not in shipped["train"]


def test_each_rr_feature_is_defined_once_and_the_shipped_metadata_still_says_so():
    """config.RR_DEFINITIONS is the one table: the names RR_FEATURES, the text converted models
    carry (byte for byte what the shipped models were converted with)."""
    from edge_ecg.config import RR_DEFINITIONS, RR_FEATURES
    from edge_ecg.export.metadata import rr_definitions
    from edge_ecg.runtime.metadata import read_metadata

    assert RR_FEATURES == tuple(RR_DEFINITIONS) and all(RR_DEFINITIONS.values())
    models = Path(__file__).resolve().parents[1] / "models"
    for path in (models / "edge_ecg_int8.tflite", models / "ds1_only" / "edge_ecg_int8.tflite"):
        meta = read_metadata(path)
        assert meta.rr_definitions == rr_definitions(tuple(meta.rr_features)), path
