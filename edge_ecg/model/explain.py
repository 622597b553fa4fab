"""Why did the model say that? Integrated gradients over a beat's window and RR features.

Integrated gradients (Sundararajan, Taly, Yan. Axiomatic attribution for deep networks.
ICML 2017) attribute the change in one class probability, from a neutral *baseline* input
to the real one, to each input value:

    attr_i = (x_i - b_i) * mean over a in (0, 1] of d p_class(b + a (x - b)) / d x_i

The attributions add up to ``p_class(x) - p_class(b)`` (completeness), which
:func:`integrated_gradients` reports as ``residual`` so a reader can see the
approximation is sound. Baselines: a flat window (all zeros: the normalised window's
centre) and a regular rhythm (every RR feature as if the beat came on time: intervals
equal to ``local_rr``, ratios 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_ecg.config import CLASSES, DEFAULT_RR_S, WindowConfig


@dataclass
class Explanation:
    """Attributions for one beat: ``beat_attr`` ``(L,)``, ``rr_attr`` ``(F,)`` or ``None``."""

    target: int  # class index explained
    probs: np.ndarray  # (5,) model output for the real input
    baseline_prob: float  # p_target at the baseline
    beat_attr: np.ndarray
    rr_attr: np.ndarray | None
    residual: float  # sum of attributions - (p_target(x) - p_target(baseline))

    def to_dict(self, window: WindowConfig, rr: np.ndarray | None = None) -> dict:
        """JSON-able: probabilities by class, attributions per sample (and per RR feature)."""
        out = {
            "target": CLASSES[self.target],
            "probs": {c: round(float(p), 6) for c, p in zip(CLASSES, self.probs)},
            "baseline_prob": float(self.baseline_prob),
            "residual": float(self.residual),
            "fs": window.fs,
            "r_index": window.pre,
            "beat_attr": [round(float(a), 7) for a in self.beat_attr],
        }
        if self.rr_attr is not None:
            out["rr_attr"] = {n: float(a) for n, a in zip(window.rr_features, self.rr_attr)}
            if rr is not None:
                out["rr"] = {n: float(v) for n, v in zip(window.rr_features, rr)}
        return out


def neutral_rr(rr: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    """RR features of a beat that came exactly on time: intervals = ``local_rr``, ratios 1
    (the rhythm's irregularities are kept: they describe the beats before, not this one)."""
    values = dict(zip(features, np.asarray(rr, dtype=np.float32)))
    local = float(values.get("local_rr", values.get("pre_rr", DEFAULT_RR_S)))
    neutral = {"pre_rr": local, "prev_rr": local, "local_rr": local,
               "pre_rr_ratio": 1.0, "prev_rr_ratio": 1.0, "pre_rr_long_ratio": 1.0,
               "rr_irregularity": float(values.get("rr_irregularity", 0.0)),
               "rr_irregularity_median": float(values.get("rr_irregularity_median", 0.0))}
    return np.array([neutral[f] for f in features], dtype=np.float32)


def integrated_gradients(model, beat: np.ndarray, rr: np.ndarray | None, window: WindowConfig,
                         target: int | None = None, steps: int = 64) -> Explanation:
    """Integrated gradients of one beat for class ``target`` (default: the predicted class).

    ``model`` is a tf_keras model with inputs ``beat`` ``(L, 1)`` and optionally ``rr``
    ``(F,)``; ``beat`` is the normalised window ``(L,)``; ``steps`` points on the straight
    path from the baseline (midpoint rule).
    """
    from edge_ecg.tfcompat import load_tf

    tf, _ = load_tf()
    x = np.asarray(beat, dtype=np.float32).reshape(1, -1, 1)
    base_x = np.zeros_like(x)
    use_rr = len(model.inputs) > 1
    r = np.asarray(rr, dtype=np.float32).reshape(1, -1) if use_rr else None
    base_r = neutral_rr(r[0], window.rr_features)[None, :] if use_rr else None

    def predict(bx, br):
        return model({"beat": bx, "rr": br} if use_rr else {"beat": bx}, training=False)

    probs = predict(x, r).numpy()[0]
    target = int(np.argmax(probs)) if target is None else int(target)
    alphas = ((np.arange(steps, dtype=np.float32) + 0.5) / steps)[:, None, None]
    path_x = tf.constant(base_x + alphas * (x - base_x))
    path_r = tf.constant(base_r + alphas[:, :, 0] * (r - base_r)) if use_rr else None
    with tf.GradientTape() as tape:
        tape.watch(path_x)
        if use_rr:
            tape.watch(path_r)
        out = predict(path_x, path_r)[:, target]
    grads = tape.gradient(out, [path_x, path_r] if use_rr else [path_x])
    beat_attr = ((x - base_x)[0, :, 0] * grads[0].numpy().mean(axis=0)[:, 0]).astype(np.float32)
    rr_attr = ((r - base_r)[0] * grads[1].numpy().mean(axis=0)).astype(np.float32) if use_rr else None
    base_prob = float(predict(base_x, base_r).numpy()[0, target])
    total = float(beat_attr.sum() + (rr_attr.sum() if rr_attr is not None else 0.0))
    return Explanation(target, probs, base_prob, beat_attr, rr_attr, total - (float(probs[target]) - base_prob))


def plot_explanation(path, beat: np.ndarray, expl: Explanation, window: WindowConfig, title: str = "",
                     true_label: str | None = None, rr: np.ndarray | None = None):
    """A PNG: the window coloured by attribution, probability bars, and RR attributions."""
    from edge_ecg.plotting import pyplot

    plt = pyplot()
    t = (np.arange(len(beat)) - window.pre) / window.fs
    attr = expl.beat_attr
    lim = float(np.abs(attr).max()) or 1.0
    fig = plt.figure(figsize=(10, 4.2))
    grid = fig.add_gridspec(1, 2, width_ratios=[4, 1.2], wspace=0.35)
    ax = fig.add_subplot(grid[0])
    ax.plot(t, beat, color="0.25", lw=0.9, zorder=2)
    sc = ax.scatter(t, beat, c=attr, cmap="coolwarm", vmin=-lim, vmax=lim, s=9, zorder=3)
    ax.axvline(0.0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("time from R peak (s)")
    ax.set_ylabel("normalised ECG")
    head = f"predicted {CLASSES[expl.target]} ({expl.probs[expl.target]:.0%})"
    if true_label:
        head += f", reference {true_label}"
    ax.set_title(f"{title}\n{head}" if title else head, fontsize=10)
    cb = fig.colorbar(sc, ax=ax, pad=0.01)
    cb.set_label(f"integrated gradients for {CLASSES[expl.target]}")
    bx = fig.add_subplot(grid[1])
    colors = ["C2" if i == expl.target else "0.7" for i in range(len(CLASSES))]
    bx.barh(list(CLASSES)[::-1], expl.probs[::-1], color=colors[::-1])
    bx.set_xlim(0, 1)
    bx.set_xlabel("probability")
    if expl.rr_attr is not None:
        lines = ["RR attribution"] + [f"{n}: {a:+.3f}" for n, a in zip(window.rr_features, expl.rr_attr)]
        bx.text(0.02, -0.32, "\n".join(lines), transform=bx.transAxes, fontsize=7, va="top", family="monospace")
    from edge_ecg.outputs import save_figure

    try:
        save_figure(fig, path, "--out", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
