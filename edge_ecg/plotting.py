"""The one way edge-ecg imports matplotlib: lazily, headless, with a clear error if missing."""

from __future__ import annotations

from edge_ecg.config import CLASS_COLORS  # one colour per AAMI class, in every plot and on the live page
from edge_ecg.errors import EdgeEcgError


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (works without a display)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgeEcgError("plots need matplotlib: pip install 'edge-ecg[plot]'") from None
    return plt


#: Legend entry of the boxes drawn around a model label that differs from the reference.
MISMATCH_LABEL = "boxed: differs from the reference"


def strip_legend_handles(boxed: bool) -> list:
    """Legend handles of a strip: one line per class colour and, when disagreements can be
    boxed (``boxed``), an unfilled box saying what the boxes mean."""
    plt = pyplot()
    from matplotlib.patches import Patch

    handles = [plt.Line2D([], [], color=c, lw=2, label=k) for k, c in CLASS_COLORS.items()]
    if boxed:
        handles.append(Patch(facecolor="none", edgecolor="0.3", label=MISMATCH_LABEL))
    return handles


#: A strip longer than this (s) is drawn in rows of :data:`ROW_S` seconds, one under the other.
MAX_ROW_S = 30.0
ROW_S = 20.0


def plot_strip(path, signal, fs: float, start_s: float, beats_s, labels, ref_s=(), ref_labels=(), title: str = "",
               unit: str = "mV"):
    """An ECG strip PNG: detected beats coloured by class above, reference labels beneath.

    ``signal`` is the stretch to draw (1-D, ``unit``) starting at ``start_s`` seconds;
    ``beats_s``/``labels`` the detected beats (s, class letters or ``None`` for unclassified);
    ``ref_s``/``ref_labels`` the reference annotations. Disagreements are boxed. A stretch
    longer than :data:`MAX_ROW_S` seconds is drawn in rows of :data:`ROW_S` seconds.
    """
    import numpy as np

    plt = pyplot()
    x = np.asarray(signal, dtype=float)
    t = start_s + np.arange(len(x)) / fs
    span = t[-1] - t[0] if len(t) > 1 else 1.0
    per_row = len(x) if span <= MAX_ROW_S else int(ROW_S * fs)
    rows = max(1, int(np.ceil((len(x) - 1) / per_row)))
    width = max(8.0, min(24.0, min(span, ROW_S if rows > 1 else span) * 1.2))
    fig, axes = plt.subplots(rows, 1, figsize=(width, 3.4 * rows), squeeze=False)
    ref_s, ref_labels = np.asarray(ref_s, dtype=float), list(ref_labels)
    lo, hi = (float(np.min(x)), float(np.max(x))) if x.size else (0.0, 1.0)
    for k, ax in enumerate(axes[:, 0]):
        sl = slice(k * per_row, (k + 1) * per_row + 1)
        _draw_strip(ax, t[sl], x[sl], (lo, hi), beats_s, labels, ref_s, ref_labels, unit, legend=k == 0)
    if title:
        axes[0, 0].set_title(title, fontsize=10, loc="left")
    from edge_ecg.outputs import save_figure

    try:
        save_figure(fig, path, "--out", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _draw_strip(ax, t, x, limits, beats_s, labels, ref_s, ref_labels, unit: str, legend: bool) -> None:
    """One row of a strip: the signal ``x`` at times ``t`` (s) with beats and reference labels."""
    import numpy as np

    ax.plot(t, x, color="0.2", lw=0.7)
    lo, hi = limits
    pad = 0.25 * (hi - lo or 1.0)
    ax.set_ylim(lo - 2 * pad, hi + 2 * pad)
    for bt, lab in zip(beats_s, labels):
        if not t[0] <= bt <= t[-1]:
            continue
        color = CLASS_COLORS.get(lab, "0.7") if lab else "0.8"
        ax.axvline(bt, color=color, lw=1.0, alpha=0.5)
        near = np.argmin(np.abs(ref_s - bt)) if len(ref_s) else None
        agree = near is not None and abs(ref_s[near] - bt) <= 0.15 and ref_labels[near] == lab
        box = None if agree or not len(ref_s) else {"boxstyle": "round,pad=0.15", "fc": "none", "ec": color}
        ax.text(bt, hi + pad, lab or "·", color=color, ha="center", va="bottom", fontsize=9, weight="bold", bbox=box)
    for rt, lab in zip(ref_s, ref_labels):
        if t[0] <= rt <= t[-1]:
            ax.text(rt, lo - pad, lab, color=CLASS_COLORS.get(lab, "0.5"), ha="center", va="top", fontsize=8)
    ax.text(t[0], hi + 1.6 * pad, "model", fontsize=7, color="0.4", va="bottom")
    if len(ref_s):
        ax.text(t[0], lo - 1.6 * pad, "reference", fontsize=7, color="0.4", va="top")
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel(unit)
    if legend:
        handles = strip_legend_handles(boxed=bool(len(ref_s)) and len(beats_s) > 0)
        ax.legend(handles=handles, ncol=len(handles), loc="upper right", fontsize=7, frameon=False,
                  bbox_to_anchor=(1, 1.18))
