"""Many records' EC57 scores: gross (summed) and averaged figures, as text, JSON and a plot.

Gross statistics sum the records' confusion matrices first and then divide, as EC57
prescribes; the average is the mean of the per-record figures over the records where a
figure is defined (a record without V beats has no V sensitivity). Because the S class of
de Chazal's DS2 is dominated by record 232 (the MIT-BIH README notes its long runs of
APCs), the text report adds a "gross without 232" row whenever 232 is scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from edge_ecg.config import CLASSES
from edge_ecg.errors import DataError, EdgeEcgError
from edge_ecg.evaluate.ec57 import (
    MATRIX_LABELS,
    O,
    RecordScore,
    as_class_indices,
    as_intervals,
    check_matrix,
    ec57_stats,
    inside_intervals,
    json_safe,
)
from edge_ecg.evaluate.match import as_positions

#: The record that dominates DS2's S class; reported with and without.
SVEB_DOMINANT_RECORD = "232"

# (label, path into the stats dict, decimals) of the per-record table, in EC57's order.
_COLUMNS: tuple[tuple[str, tuple[str, str], int], ...] = (
    ("QRS Se", ("qrs", "se"), 2),
    ("QRS +P", ("qrs", "ppv"), 2),
    ("V Se", ("V", "se"), 2),
    ("V +P", ("V", "ppv"), 2),
    ("V FPR", ("V", "fpr"), 3),
    ("V F1", ("V", "f1"), 2),
    ("S Se", ("S", "se"), 2),
    ("S +P", ("S", "ppv"), 2),
    ("S FPR", ("S", "fpr"), 3),
    ("S F1", ("S", "f1"), 2),
    ("Acc", ("accuracy", ""), 2),
    ("mF1", ("macro_f1", ""), 2),
)
_FIGURES = ("se", "ppv", "fpr", "f1")


def _pct(x: float, decimals: int) -> str:
    """A fraction as a percentage with ``decimals`` places, or ``-`` when undefined."""
    return "-" if x is None or math.isnan(x) else f"{100.0 * x:.{decimals}f}"


def _get(stats: dict, path: tuple[str, str]) -> float:
    value = stats[path[0]]
    return value[path[1]] if path[1] else value


class Report:
    """EC57 scores of several records.

    ``records`` are :class:`~edge_ecg.evaluate.ec57.RecordScore` objects with distinct
    names (an empty name becomes ``#1``, ``#2``, ...). ``settings`` (e.g. ``{"start_s": 0,
    "tolerance_s": 0.15}``) is printed under the title and kept in :meth:`to_dict`.
    """

    def __init__(self, records: Iterable[RecordScore], title: str = "", settings: dict | None = None):
        self.records: list[RecordScore] = []
        seen: set[str] = set()
        for i, rec in enumerate(records):
            if not isinstance(rec, RecordScore):
                raise DataError(f"Report takes RecordScore objects, got {type(rec).__name__}")
            if not rec.name:
                rec = RecordScore(f"#{i + 1}", rec.matrix, rec.n_unscored_ref, rec.n_unscored_test)
            if rec.name in seen:
                raise DataError(f"record {rec.name!r} is scored twice in one report")
            seen.add(rec.name)
            self.records.append(rec)
        self.title = title
        self.settings = dict(settings or {})
        self.warnings: list[str] = []  # one line each, printed under the title and kept in to_dict

    # ---------------------------------------------------------------- numbers

    @property
    def names(self) -> list[str]:
        """Record names, in report order."""
        return [r.name for r in self.records]

    @property
    def matrix(self) -> np.ndarray:
        """The summed 6 x 6 confusion matrix (rows reference, columns test, ``N S V F Q O``)."""
        total = np.zeros((len(MATRIX_LABELS),) * 2, dtype=np.int64)
        for rec in self.records:
            total += rec.matrix
        return total

    @property
    def gross(self) -> dict:
        """:func:`~edge_ecg.evaluate.ec57.ec57_stats` of the summed matrix (EC57's gross figures)."""
        return ec57_stats(self.matrix)

    @property
    def per_record(self) -> dict[str, dict]:
        """Record name -> its :func:`~edge_ecg.evaluate.ec57.ec57_stats`, in report order."""
        return {rec.name: rec.stats for rec in self.records}

    @property
    def average(self) -> dict:
        """Mean of the per-record figures (fractions), each over the records where it is defined.

        Same layout as :attr:`gross` for the figures (``qrs``: se, ppv; each class: se, ppv,
        fpr, f1; ``accuracy``; ``macro_f1``), each with a ``<figure>_n_records`` companion
        (e.g. ``average["V"]["se_n_records"]``): how many records it averages. A figure no
        record defines is NaN.
        """
        rows = list(self.per_record.values())

        def mean(path: tuple[str, str]) -> dict:
            values = [v for v in (_get(r, path) for r in rows) if not math.isnan(v)]
            return {"mean": float(np.mean(values)) if values else math.nan, "n_records": len(values)}

        out: dict = {"qrs": {}}
        for key in ("se", "ppv"):
            m = mean(("qrs", key))
            out["qrs"][key], out["qrs"][f"{key}_n_records"] = m["mean"], m["n_records"]
        for cls in CLASSES:
            out[cls] = {}
            for key in _FIGURES:
                m = mean((cls, key))
                out[cls][key], out[cls][f"{key}_n_records"] = m["mean"], m["n_records"]
        for key in ("accuracy", "macro_f1"):
            m = mean((key, ""))
            out[key], out[f"{key}_n_records"] = m["mean"], m["n_records"]
        return out

    def without(self, record_names: str | Sequence[str]) -> Report:
        """A report of the same records minus ``record_names`` (a name or a list of names)."""
        drop = {record_names} if isinstance(record_names, str) else {str(n) for n in record_names}
        title = f"{self.title} without {', '.join(sorted(drop))}".strip()
        return Report([r for r in self.records if r.name not in drop], title=title, settings=self.settings)

    # ---------------------------------------------------------------- output

    def to_dict(self) -> dict:
        """JSON-ready dict: title, settings, labels, summed matrix, gross, average, per record.

        Undefined figures (0/0) are ``None``. ``gross_without_232`` is present when record
        232 is in the report.
        """
        out = {
            "title": self.title,
            "settings": self.settings,
            "labels": list(MATRIX_LABELS),
            "n_records": len(self.records),
            "matrix": self.matrix.tolist(),
            "gross": self.gross,
            "average": self.average,
            "records": [rec.to_dict() for rec in self.records],
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if SVEB_DOMINANT_RECORD in self.names and len(self.records) > 1:
            out[f"gross_without_{SVEB_DOMINANT_RECORD}"] = self.without(SVEB_DOMINANT_RECORD).gross
        return json_safe(out)

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string (``null`` for undefined figures)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_text(self) -> str:
        """The report as aligned plain text.

        A per-record table (percentages; FPR with three decimals as bxb prints it; ``-`` where
        undefined), then gross (summed matrices), average (mean of per-record figures) and,
        when record 232 is present, gross without 232; then gross figures per class and the
        confusion matrix (6 x 6 with O when there are missed or extra beats, else 5 x 5).
        """
        lines: list[str] = []
        n = len(self.records)
        head = f"EC57 beat-by-beat scores ({n} record{'s' if n != 1 else ''})"
        lines.append(f"{self.title}: {head}" if self.title else head)
        if self.settings:
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        lines.extend(f"  WARNING: {w}" for w in self.warnings)
        lines.append("")
        lines.extend(self._record_table())
        lines.append("")
        lines.extend(self._class_table())
        lines.append("")
        lines.extend(_matrix_lines(self.matrix))
        lines.append("")
        lines.append(
            "Se = TP/(TP+FN), +P = TP/(TP+FP), FPR = FP/(FP+TN), in %. V FP = Nv+Sv+Ov; S FP = Ns+Vs+Fs+Os "
            "(EC57/bxb). Gross sums the matrices, Average is the mean of per-record figures."
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"Report({len(self.records)} records, title={self.title!r})"

    def _record_table(self) -> list[str]:
        name_w = max([len("Gross w/o 232"), *(len(n) for n in self.names)])
        widths = [max(len(label), 7) for label, _, _ in _COLUMNS]
        header = f"{'Record':<{name_w}} {'Beats':>7} " + " ".join(f"{lab:>{w}}" for (lab, _, _), w in zip(_COLUMNS, widths))

        def row(label: str, stats: dict, beats: str) -> str:
            cells = [f"{_pct(_get(stats, path), dec):>{w}}" for (_, path, dec), w in zip(_COLUMNS, widths)]
            return f"{label:<{name_w}} {beats:>7} " + " ".join(cells)

        lines = [header, "-" * len(header)]
        for rec in self.records:
            s = rec.stats
            lines.append(row(rec.name, s, str(s["n_ref"])))
        lines.append("-" * len(header))
        gross = self.gross
        lines.append(row("Gross", gross, str(gross["n_ref"])))
        lines.append(row("Average", self.average, ""))
        if SVEB_DOMINANT_RECORD in self.names and len(self.records) > 1:
            w = self.without(SVEB_DOMINANT_RECORD).gross
            lines.append(row(f"Gross w/o {SVEB_DOMINANT_RECORD}", w, str(w["n_ref"])))
        return lines

    def _class_table(self) -> list[str]:
        gross = self.gross
        header = f"{'Class':<6} {'Ref':>7} {'TP':>7} {'FN':>7} {'FP':>7} {'Se':>7} {'+P':>7} {'FPR':>7} {'F1':>7}"
        lines = ["Gross per class (summed matrices)", header, "-" * len(header)]
        for cls in CLASSES:
            c = gross[cls]
            lines.append(
                f"{cls:<6} {c['n_ref']:>7} {c['tp']:>7} {c['fn']:>7} {c['fp']:>7} {_pct(c['se'], 2):>7} "
                f"{_pct(c['ppv'], 2):>7} {_pct(c['fpr'], 3):>7} {_pct(c['f1'], 2):>7}"
            )
        lines.append(
            f"Accuracy over matched beats {_pct(gross['accuracy'], 2)}%, macro-F1 (N,S,V) {_pct(gross['macro_f1'], 2)}%, "
            f"QRS Se {_pct(gross['qrs']['se'], 2)}%, QRS +P {_pct(gross['qrs']['ppv'], 2)}%"
        )
        return lines

    def plot_confusion(self, path: str | Path, title: str | None = None) -> Path:
        """Save the summed confusion matrix as a PNG at ``path``; returns the path.

        Cells show beat counts; colours are row-normalised (the fraction of each reference
        class given each test label). The O row/column appear only when some beat was
        missed or extra. Needs matplotlib (imported here, drawn with the Agg canvas).
        """
        return plot_confusion(self.matrix, path, title=title or (self.title or "EC57 confusion matrix"))


# --------------------------------------------------------------------------- helpers


def _shown(matrix: np.ndarray) -> int:
    """How many rows/columns to show: 6 when O has counts, else 5."""
    return len(MATRIX_LABELS) if (matrix[O, :].any() or matrix[:, O].any()) else len(CLASSES)


def _matrix_lines(matrix: np.ndarray) -> list[str]:
    k = _shown(matrix)
    labels = MATRIX_LABELS[:k]
    m = matrix[:k, :k]
    w = max(6, len(str(int(m.sum()))) + 1)
    lines = ["Confusion matrix (rows reference, columns test" + ("; O = no beat)" if k > len(CLASSES) else ")")]
    lines.append(f"{'':>4}" + "".join(f"{c.lower():>{w}}" for c in labels) + f"{'total':>{w + 2}}")
    for i, c in enumerate(labels):
        lines.append(f"{c:>4}" + "".join(f"{int(v):>{w}}" for v in m[i]) + f"{int(m[i].sum()):>{w + 2}}")
    lines.append(f"{'sum':>4}" + "".join(f"{int(v):>{w}}" for v in m.sum(axis=0)) + f"{int(m.sum()):>{w + 2}}")
    return lines


def plot_confusion(matrix, path: str | Path, title: str = "EC57 confusion matrix") -> Path:
    """Save a 6 x 6 (or 5 x 5 when nothing was missed or extra) confusion matrix PNG.

    ``matrix`` rows are reference classes, columns test classes (``N S V F Q O``). Counts
    are printed in each cell; colours are row-normalised.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EdgeEcgError("plots need matplotlib: pip install 'edge-ecg[plot]'") from None
    m = check_matrix(matrix)
    k = _shown(m)
    m = m[:k, :k]
    col_labels = [c if c != "O" else "O\n(missed)" for c in MATRIX_LABELS[:k]]
    row_labels = [c if c != "O" else "O extra" for c in MATRIX_LABELS[:k]]
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros(m.shape, dtype=float), where=rows > 0)

    fig = Figure(figsize=(6.4, 5.4), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of the reference class (row)")
    for i in range(k):
        for j in range(k):
            if i == O and j == O:
                continue
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=9,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), col_labels)
    ax.set_yticks(range(k), [f"{lab} ({int(n)})" for lab, n in zip(row_labels, rows[:, 0])])
    ax.set_xlabel("test (predicted) class")
    ax.set_ylabel("reference class (beats)")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, format="png", bbox_inches="tight")
    except OSError as exc:
        raise EdgeEcgError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    return path


def score_predictions(
    records,
    samples,
    y_true,
    y_pred,
    fs: float,
    excluded: dict | None = None,
    start_s: float = 0.0,
    title: str = "",
) -> Report:
    """A :class:`Report` from beats classified at their reference positions.

    Offline evaluation of a classifier on annotated beats (e.g. a ``BeatSet``): ``records``
    (n,) record name of each beat, ``samples`` (n,) its R position in samples at ``fs`` Hz,
    ``y_true`` (n,) reference class, ``y_pred`` (n,) predicted class (letters or indices
    into ``CLASSES``) or (n, 5) class probabilities (argmax is taken). Since every test beat
    *is* a reference beat, nothing is missed or extra (no O row/column). ``excluded`` maps
    a record name to its (k, 2) VF/flutter intervals, whose beats are not scored;
    ``start_s`` skips each record's first seconds. Records appear in first-seen order.
    """
    names = np.asarray(records).astype(str)
    n = len(names)
    if names.ndim != 1:
        raise DataError(f"records must be one record name per beat, got shape {names.shape}")
    pos = as_positions(samples, "samples")
    if len(pos) != n:
        raise DataError(f"samples has {len(pos)} positions for {n} beats")
    truth = as_class_indices(y_true, n, "y_true")
    pred = np.asarray(y_pred)
    if pred.ndim == 2:
        if pred.shape != (n, len(CLASSES)):
            raise DataError(f"y_pred probabilities must be ({n}, {len(CLASSES)}), got {pred.shape}")
        pred = np.argmax(pred, axis=1)
    pred = as_class_indices(pred, n, "y_pred")
    if not math.isfinite(float(start_s)) or start_s < 0:
        raise DataError(f"start_s must be >= 0 seconds, got {start_s}")
    if not math.isfinite(float(fs)) or float(fs) <= 0:
        raise DataError(f"sampling rate fs must be a positive number of Hz, got {fs}")
    start = math.ceil(float(start_s) * float(fs) - 1e-9) if start_s > 0 else 0
    excluded = excluded or {}

    scores = []
    _, first = np.unique(names, return_index=True)
    for name in names[np.sort(first)]:
        sel = names == name
        keep = pos[sel] >= start
        intervals = as_intervals(excluded.get(name), f"excluded[{name!r}]")
        keep &= ~inside_intervals(pos[sel], intervals)
        matrix = np.zeros((len(MATRIX_LABELS),) * 2, dtype=np.int64)
        np.add.at(matrix, (truth[sel][keep], pred[sel][keep]), 1)
        scores.append(RecordScore(str(name), matrix, n_unscored_ref=int(np.count_nonzero(~keep))))
    settings = {"positions": "reference", "start_s": float(start_s)}
    return Report(scores, title=title, settings=settings)
