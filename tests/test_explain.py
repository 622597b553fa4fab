"""Integrated gradients: completeness holds and attribution lands where the evidence is."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf

from edge_ecg.config import CLASSES, RR_FEATURES, WindowConfig  # noqa: E402
from edge_ecg.model.explain import integrated_gradients, neutral_rr, plot_explanation  # noqa: E402

W = WindowConfig(fs=100.0, pre_s=0.3, post_s=0.3, rr_features=RR_FEATURES[:6])  # six RR features


@pytest.fixture(scope="module")
def spike_model():
    """A model that learned one thing: a positive spike at sample 10 means V."""
    from edge_ecg.tfcompat import load_tf

    tf, keras = load_tf()
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.1, (600, W.length, 1)).astype(np.float32)
    y = np.zeros(600, dtype=np.int64)
    X[:300, 10, 0] += 3.0
    y[:300] = CLASSES.index("V")
    rr = np.tile(neutral_rr(np.full(6, 0.8), W.rr_features), (600, 1))
    beat_in = keras.Input((W.length, 1), name="beat")
    rr_in = keras.Input((6,), name="rr")
    h = keras.layers.Conv1D(4, 3, padding="same", activation="tanh")(beat_in)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Concatenate()([h, rr_in])
    out = keras.layers.Dense(5, activation="softmax")(h)
    model = keras.Model([beat_in, rr_in], out)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    fit = model.fit({"beat": X, "rr": rr}, y, epochs=15, batch_size=64, verbose=0)
    assert fit.history["accuracy"][-1] > 0.95, "the test model failed to learn the spike"
    return model, X, rr


def test_completeness_and_location(spike_model, tmp_path):
    model, X, rr = spike_model
    expl = integrated_gradients(model, X[0, :, 0], rr[0], W, steps=128)
    assert CLASSES[expl.target] == "V"
    assert abs(expl.residual) < 0.05  # attributions add up to p(x) - p(baseline)
    assert int(np.argmax(expl.beat_attr)) == 10  # the spike carries the evidence
    data = expl.to_dict(W, rr[0])
    assert len(data["beat_attr"]) == W.length and data["target"] == "V"
    assert set(data["rr_attr"]) == set(W.rr_features)
    png = plot_explanation(tmp_path / "e.png", X[0, :, 0], expl, W, title="test", true_label="V", rr=rr[0])
    assert png.stat().st_size > 5000


def test_neutral_rr_is_an_on_time_beat():
    f = ("pre_rr", "local_rr", "pre_rr_ratio")
    np.testing.assert_allclose(neutral_rr(np.array([0.4, 0.9, 0.44]), f), [0.9, 0.9, 1.0])


def test_neutral_rr_knows_every_rr_feature_and_keeps_the_rhythm():
    """Every feature a model may take has a neutral value; the irregularities (the rhythm
    before this beat) keep the beat's own."""
    from edge_ecg.config import RR_FEATURES

    values = np.arange(1, len(RR_FEATURES) + 1, dtype=np.float32) / 10
    out = dict(zip(RR_FEATURES, neutral_rr(values, RR_FEATURES)))
    own = dict(zip(RR_FEATURES, values))
    assert out["rr_irregularity"] == own["rr_irregularity"]
    assert out["rr_irregularity_median"] == own["rr_irregularity_median"]
    assert out["pre_rr_ratio"] == out["prev_rr_ratio"] == out["pre_rr_long_ratio"] == 1.0
    assert out["pre_rr"] == out["prev_rr"] == own["local_rr"]


def test_explain_cli_on_a_run_folder(tiny_db, tmp_path):
    import json

    from click.testing import CliRunner

    from edge_ecg.cli import main
    from edge_ecg.config import ModelConfig, RunConfig, to_json
    from edge_ecg.model.arch import build_model

    run = tmp_path / "run"
    run.mkdir()
    cfg = RunConfig(model=ModelConfig(conv_filters=(4, 4), lstm_units=4, dense_units=4))
    build_model(cfg.model, cfg.window).save(run / "model.keras")
    (run / "config.json").write_text(to_json(cfg))
    runner = CliRunner()
    res = runner.invoke(main, ["explain", "--model", str(run), "--record", "900", "--data", str(tiny_db),
                               "--beat", "20", "--json", "--steps", "32"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["beat"] == 20 and data["reference"] == "V"
    assert len(data["beat_attr"]) == cfg.window.length and abs(data["residual"]) < 0.05
    png = tmp_path / "b.png"
    res = runner.invoke(main, ["explain", "--model", str(run), "--record", "900", "--data", str(tiny_db),
                               "--time", "3.0", "--out", str(png)])
    assert res.exit_code == 0 and "strongest evidence" in res.output and png.is_file()
    res = runner.invoke(main, ["explain", "--model", str(run), "--record", "900", "--data", str(tiny_db),
                               "--beat", "999"])
    assert res.exit_code == 1 and "out of range" in res.output
    res = runner.invoke(main, ["explain", "--model", str(run), "--record", "900", "--data", str(tiny_db)])
    assert res.exit_code == 2 and "exactly one of --beat" in res.output
