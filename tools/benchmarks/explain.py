"""Why did it say that? Integrated-gradient explanations of the shipped model on DS2.

The beats are chosen by a rule, not by hand: for each class, among the DS2 beats whose
reference label is that class and which the Keras model (the int8 model's source) labels
correctly, the **typical** one is the beat at the median of the class probability (ties:
the earliest). Beside it, the mean absolute attribution over up to 30 correctly labelled
beats per class (evenly spaced through the class's beats in time order) shows where in
the window the evidence usually lies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAME = "explain"
TITLE = "Why did it say that? (integrated gradients)"

PER_CLASS = 30


def attribution_shares(expl, t_ms: np.ndarray) -> dict:
    """Fractions of the total |attribution| before the QRS, in it (within 100 ms of R), after it, and on RR."""
    a = np.abs(expl.beat_attr)
    rr = float(np.abs(expl.rr_attr).sum()) if expl.rr_attr is not None else 0.0
    total = float(a.sum()) + rr or 1.0
    return {"before": float(a[t_ms < -100].sum()) / total, "qrs": float(a[np.abs(t_ms) <= 100].sum()) / total,
            "after": float(a[t_ms > 100].sum()) / total, "rr": rr / total}


def run(ctx) -> dict:
    from benchmarks import ROOT

    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.config import CLASSES
    from edge_ecg.export.convert import load_source_model
    from edge_ecg.export.pipeline import keras_predict
    from edge_ecg.model.explain import integrated_gradients, plot_explanation
    from edge_ecg.plotting import CLASS_COLORS, pyplot
    from edge_ecg.records import DS2

    source = load_source_model(Path(ctx.model).parent if ctx.model else ROOT / "models")
    window = source.window
    records = ("100", "208", "232") if ctx.quick else DS2
    beats = build_beatset(ctx.mitdb, records, window, progress=False)
    probs = keras_predict(source.model, beats.X, beats.rr if len(source.model.inputs) > 1 else None)
    pred = np.argmax(probs, axis=1)
    per_class = 5 if ctx.quick else PER_CLASS
    t_ms = (np.arange(window.length) - window.pre) / window.fs * 1000.0
    out = {"model": str(source.path), "records": list(records), "rule": __doc__.split("\n\n")[1].replace("\n", " "),
           "typical": {}, "profiles": {}}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for c, name in enumerate(CLASSES):
        correct = np.flatnonzero((beats.y == c) & (pred == c))
        if len(correct) == 0:
            continue
        p = probs[correct, c]
        typical = int(correct[np.argsort(p, kind="stable")[(len(p) - 1) // 2]])
        expl = integrated_gradients(source.model, beats.X[typical], beats.rr[typical], window, target=c)
        png = ctx.out_dir / f"explain_{name}.png"
        t_beat = float(beats.sample[typical] / window.fs)
        plot_explanation(png, beats.X[typical], expl, window, true_label=name, rr=beats.rr[typical],
                         title=f"typical {name}: record {beats.record[typical]} at {t_beat:.1f} s")
        out["typical"][name] = {
            "record": str(beats.record[typical]), "time_s": round(t_beat, 3), "prob": float(probs[typical, c]),
            "shares": attribution_shares(expl, t_ms), "residual": float(expl.residual),
            "rr_attr": {f: float(a) for f, a in zip(window.rr_features, expl.rr_attr)} if expl.rr_attr is not None else None,
            "n_correct": int(len(correct)),
        }
        picks = correct[np.linspace(0, len(correct) - 1, min(per_class, len(correct))).round().astype(int)]
        attrs = np.array([np.abs(integrated_gradients(source.model, beats.X[i], beats.rr[i], window, target=c).beat_attr)
                          for i in picks])
        profile = attrs.mean(axis=0)
        out["profiles"][name] = {"beats": int(len(picks)), "peak_ms": float(t_ms[int(np.argmax(profile))])}
        ax.plot(t_ms, profile / (profile.max() or 1.0), color=CLASS_COLORS[name], lw=1.2, label=f"{name} ({len(picks)} beats)")
    ax.axvline(0, color="0.6", ls="--", lw=0.8)
    ax.set_xlabel("time from R peak (ms)")
    ax.set_ylabel("mean |attribution| (peak = 1)")
    ax.set_title("Where the evidence lies, by class (correctly labelled DS2 beats)", fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(ctx.out_dir / "explain_profiles.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def render(result: dict) -> str:
    lines = [
        f"Model `{Path(result['model']).name}` (the int8 model's Keras source). {result['rule']}",
        "",
        "Share of the explanation (|attribution|) by where it lies: before the QRS (earlier than 100 ms before R: "
        "P wave, previous beat), in the QRS (within 100 ms of R), after it (T wave, next beat), and on the RR features.",
        "",
        "| class | typical beat | probability | before QRS | QRS | after QRS | RR features | residual |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    typical = {n: result["typical"][n] for n in "NSVFQ" if n in result["typical"]}
    for name, t in typical.items():
        sh = t["shares"]
        lines.append(f"| {name} | record {t['record']} at {t['time_s']:.1f} s | {100 * t['prob']:.1f} % | "
                     f"{100 * sh['before']:.0f} % | {100 * sh['qrs']:.0f} % | {100 * sh['after']:.0f} % | "
                     f"{100 * sh['rr']:.0f} % | {t['residual']:+.4f} |")
    lines += ["", "Residual: the sum of attributions minus the probability change from the baseline (flat window, "
              "on-time rhythm); near zero means the explanation accounts for the whole decision.", ""]
    lines.append(" ".join(f"![{n}](tools/results/explain_{n}.png)" for n in typical))
    lines += ["", "![profiles](tools/results/explain_profiles.png)", ""]
    lines.append("Peak of the mean attribution: " + ", ".join(
        f"{n} {result['profiles'][n]['peak_ms']:+.0f} ms ({result['profiles'][n]['beats']} beats)"
        for n in typical if n in result["profiles"]) + ".")
    return "\n".join(lines)
