"""One record's EC57 confusion matrix, and the statistics EC57 derives from a matrix.

The matrix is 6 x 6: rows are the reference class, columns the test class, both in the
order ``N S V F Q O`` (:data:`MATRIX_LABELS`), where ``O`` stands for "no beat": row ``O``
counts extra test beats (no reference beat within the match window), column ``O`` counts
missed reference beats. Cell ``[O, O]`` is always 0.

Rules follow PhysioNet's ``bxb`` (the reference implementation of EC57):

- beats are paired by :func:`~edge_ecg.evaluate.match.match_beats` (150 ms window);
- reference beats inside a ventricular flutter/fibrillation episode (``excluded``) are not
  scored; a test beat inside such an episode that matches no reference beat is not an
  extra detection (a test beat there that does match a reference beat just outside it is
  scored as a pair, as in bxb);
- ``start_s`` (EC57 uses 300 s) skips a learning period. Unlike bxb, which lets only the
  last test beat before the start pair with the first scored reference beat, we match the
  whole record and then score the reference beats at or after the start (matched or not)
  and the unmatched test beats at or after it. A test beat after the start whose partner
  is a reference beat before it is not counted. The two differ at most by one beat at the
  boundary.

Class labels are de Chazal's AAMI mapping (``e`` and ``j`` escapes are N; bxb puts them in
S); see :mod:`edge_ecg.records.aami`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge_ecg.config import CLASSES
from edge_ecg.errors import DataError
from edge_ecg.evaluate.match import MATCH_WINDOW_S, as_positions, match_beats

#: Row/column labels of a confusion matrix: the five AAMI classes and ``O`` (no beat).
MATRIX_LABELS: tuple[str, ...] = (*CLASSES, "O")
#: Index of the pseudo-label ``O`` in :data:`MATRIX_LABELS`.
O = len(CLASSES)
_INDEX = {c: i for i, c in enumerate(CLASSES)}


# --------------------------------------------------------------------------- labels


def as_class_indices(labels, n: int, what: str) -> np.ndarray:
    """``labels`` (n,) as int64 indices into :data:`~edge_ecg.config.CLASSES`.

    Accepts class indices (0..4), class letters (``"N"``, ``"S"``, ``"V"``, ``"F"``,
    ``"Q"``) or MIT-BIH beat symbols (``"L"``, ``"A"``, ``"/"``, ... mapped by de Chazal's
    AAMI table). Anything else is a one-line :class:`DataError`.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{what} must have one label per beat ({n}), got shape {arr.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= len(CLASSES))
        if np.any(bad):
            raise DataError(f"{what}: class index {arr[bad][0]} is not in 0..{len(CLASSES) - 1} ({' '.join(CLASSES)})")
        return arr.astype(np.int64)
    if arr.dtype.kind not in "UO":
        raise DataError(f"{what} must be class letters ({' '.join(CLASSES)}) or indices, got dtype {arr.dtype}")
    arr = arr.astype(str)
    uniq, inverse = np.unique(arr, return_inverse=True)
    table = np.array([_letter_index(u, what) for u in uniq], dtype=np.int64)
    return table[inverse.reshape(-1)]


def _letter_index(letter: str, what: str) -> int:
    if letter in _INDEX:
        return _INDEX[letter]
    from edge_ecg.records.aami import AAMI_MAP  # only for raw MIT-BIH symbols

    if letter in AAMI_MAP:
        return _INDEX[AAMI_MAP[letter]]
    raise DataError(f"{what}: {letter!r} is neither an AAMI class ({' '.join(CLASSES)}) nor a MIT-BIH beat symbol")


def as_intervals(excluded, what: str = "excluded") -> np.ndarray:
    """``excluded`` as a (k, 2) int64 array of inclusive ``(start, end)`` sample pairs."""
    if excluded is None:
        return np.zeros((0, 2), dtype=np.int64)
    arr = np.asarray(excluded)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iuf":
        raise DataError(f"{what} must be (k, 2) sample intervals (start, end), got shape {arr.shape}")
    arr = np.rint(arr).astype(np.int64)
    if np.any(arr[:, 1] < arr[:, 0]):
        raise DataError(f"{what}: an interval ends before it starts ({arr[arr[:, 1] < arr[:, 0]][0].tolist()})")
    return arr


def inside_intervals(positions: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Bool mask (n,): which sample ``positions`` fall in any inclusive ``(start, end)`` interval."""
    mask = np.zeros(len(positions), dtype=bool)
    for start, end in intervals:
        mask |= (positions >= start) & (positions <= end)
    return mask


def json_safe(obj):
    """``obj`` (nested dicts/lists) with NaN replaced by ``None`` and numpy scalars by Python numbers."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


# --------------------------------------------------------------------------- one record


@dataclass
class RecordScore:
    """The EC57 outcome of one record.

    ``matrix`` is the 6 x 6 int64 confusion matrix (rows reference, columns test, order
    :data:`MATRIX_LABELS`). ``n_unscored_ref`` counts reference beats left out (VF/flutter
    episodes, learning period); ``n_unscored_test`` counts test beats left out (unmatched
    inside an episode or before ``start_s``, or paired with a learning-period beat).
    """

    name: str
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((len(MATRIX_LABELS),) * 2, dtype=np.int64))
    n_unscored_ref: int = 0
    n_unscored_test: int = 0

    def __post_init__(self) -> None:
        self.matrix = check_matrix(self.matrix)

    @property
    def stats(self) -> dict:
        """:func:`ec57_stats` of this record's matrix."""
        return ec57_stats(self.matrix)

    def to_dict(self) -> dict:
        """JSON-ready: name, the matrix as nested lists, unscored counts and the statistics (NaN -> None)."""
        return json_safe({
            "name": self.name,
            "labels": list(MATRIX_LABELS),
            "matrix": self.matrix.tolist(),
            "n_unscored_ref": int(self.n_unscored_ref),
            "n_unscored_test": int(self.n_unscored_test),
            "stats": self.stats,
        })


def check_matrix(matrix) -> np.ndarray:
    """``matrix`` as a 6 x 6 int64 array of non-negative counts, or a :class:`DataError`."""
    m = np.asarray(matrix)
    size = len(MATRIX_LABELS)
    if m.shape != (size, size):
        raise DataError(f"a confusion matrix must be {size} x {size} ({' '.join(MATRIX_LABELS)}), got shape {m.shape}")
    if m.dtype.kind not in "iu" and not (m.dtype.kind == "f" and np.all(m == np.rint(m))):
        raise DataError("a confusion matrix must hold whole beat counts")
    m = m.astype(np.int64)
    if np.any(m < 0):
        raise DataError("a confusion matrix cannot hold negative counts")
    return m


def score_record(
    ref_samples,
    ref_labels,
    test_samples,
    test_labels,
    fs: float,
    excluded=None,
    start_s: float = 0.0,
    tolerance_s: float = MATCH_WINDOW_S,
    name: str = "",
) -> RecordScore:
    """Score one record's test beats against its reference beats, as EC57/bxb does.

    ``ref_samples`` (n,) and ``test_samples`` (m,) are R positions in samples at ``fs`` Hz;
    ``ref_labels`` (n,) and ``test_labels`` (m,) are class letters, class indices or MIT-BIH
    beat symbols. ``test_labels=None`` scores detection only: a matched test beat takes its
    reference beat's class and an extra one counts as N. ``excluded`` is (k, 2) inclusive
    sample intervals of VF/flutter episodes (``Record.excluded``); ``start_s`` is the
    learning period in seconds (EC57: 300; the inter-patient literature: 0).
    """
    ref = as_positions(ref_samples, "ref_samples")
    test = as_positions(test_samples, "test_samples")
    ref_cls = as_class_indices(ref_labels, len(ref), "ref_labels")
    if test_labels is None:
        test_cls = np.zeros(len(test), dtype=np.int64)  # N unless matched (set below)
    else:
        test_cls = as_class_indices(test_labels, len(test), "test_labels")
    intervals = as_intervals(excluded)
    if not math.isfinite(float(start_s)) or start_s < 0:
        raise DataError(f"start_s must be >= 0 seconds, got {start_s}")
    start = int(math.ceil(float(start_s) * float(fs) - 1e-9)) if start_s > 0 else 0

    ref_in_vf = inside_intervals(ref, intervals)
    scored_ref = np.flatnonzero(~ref_in_vf)  # VF beats take no part, as in bxb
    ri, ti = match_beats(ref[scored_ref], test, fs, tolerance_s)
    ri = scored_ref[ri]
    if test_labels is None:
        test_cls = test_cls.copy()
        test_cls[ti] = ref_cls[ri]

    matrix = np.zeros((len(MATRIX_LABELS),) * 2, dtype=np.int64)
    # matched pairs, scored when the reference beat is in the scoring period
    keep = ref[ri] >= start
    np.add.at(matrix, (ref_cls[ri[keep]], test_cls[ti[keep]]), 1)
    # missed reference beats
    missed = np.ones(len(ref), dtype=bool)
    missed[ri] = False
    missed &= ~ref_in_vf & (ref >= start)
    np.add.at(matrix, (ref_cls[missed], O), 1)
    # extra test beats, except inside VF episodes or the learning period
    extra = np.ones(len(test), dtype=bool)
    extra[ti] = False
    unscored_extra = extra & (inside_intervals(test, intervals) | (test < start))
    extra &= ~unscored_extra
    np.add.at(matrix, (O, test_cls[extra]), 1)

    n_unscored_ref = int(np.count_nonzero(ref_in_vf | (ref < start)))
    n_unscored_test = int(np.count_nonzero(unscored_extra)) + int(np.count_nonzero(~keep))
    return RecordScore(name=str(name), matrix=matrix, n_unscored_ref=n_unscored_ref, n_unscored_test=n_unscored_test)


# --------------------------------------------------------------------------- statistics


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def class_counts(matrix, cls: str) -> dict:
    """TP, FN, FP and TN of class ``cls`` in a 6 x 6 matrix, by EC57's rules.

    - TP: reference ``cls`` labelled ``cls``.
    - FN: reference ``cls`` labelled anything else or missed (column O).
    - FP: column ``cls`` of every other row, O row included (extra detections), except
      that for V the F and Q rows are not FPs (EC57: ``FP = Nv + Sv + Ov``) and for S the Q
      row is not (``FP = Ns + Vs + Fs + Os``). N, F and Q use plain one-vs-rest (every other
      row of the column, O included).
    - TN: pairs whose reference is not ``cls`` (O row included, as in bxb) and whose test
      label is neither ``cls`` nor O. A reference F or Q beat labelled V (or Q labelled S)
      is thus neither FP nor TN, exactly as in bxb's ``VTN``/``STN``.
    """
    m = check_matrix(matrix)
    c = _INDEX[cls]
    not_fp_rows = {"V": ("F", "Q"), "S": ("Q",)}.get(cls, ())
    other_rows = [r for r in range(len(MATRIX_LABELS)) if r != c]
    fp_rows = [r for r in other_rows if MATRIX_LABELS[r] not in not_fp_rows]
    tn_cols = [k for k in range(len(CLASSES)) if k != c]
    tp = int(m[c, c])
    return {
        "tp": tp,
        "fn": int(m[c, :].sum()) - tp,
        "fp": int(m[fp_rows, c].sum()),
        "tn": int(m[np.ix_(other_rows, tn_cols)].sum()),
    }


def ec57_stats(matrix) -> dict:
    """EC57 statistics of a 6 x 6 confusion matrix (rows reference, columns test).

    Returns a JSON-ready dict; every figure is a fraction in [0, 1] (not a percentage) and
    NaN where it is 0/0:

    - ``"qrs"``: ``se`` = matched / reference beats, ``ppv`` (+P) = matched / test beats,
      with counts ``tp`` (matched), ``fn`` (missed), ``fp`` (extra).
    - one entry per class ``"N" "S" "V" "F" "Q"``: ``se`` = TP/(TP+FN), ``ppv`` =
      TP/(TP+FP), ``fpr`` = FP/(FP+TN), ``f1`` = 2TP/(2TP+FP+FN) (equal to 2·Se·+P/(Se+
      +P) when both are defined, 0 when TP = 0 but there were beats or calls), the counts of
      :func:`class_counts`, and ``n_ref`` (reference beats of that class).
    - ``accuracy``: matched beats whose class agrees / matched beats.
    - ``macro_f1``: mean F1 over N, S and V (over those that are defined).
    - ``n_ref``, ``n_test``, ``n_matched``: beat totals.
    """
    m = check_matrix(matrix)
    matched = m[:O, :O]
    n_matched = int(matched.sum())
    n_ref = int(m[:O, :].sum())
    n_test = int(m[:, :O].sum())
    out: dict = {
        "qrs": {
            "se": _ratio(n_matched, n_ref),
            "ppv": _ratio(n_matched, n_test),
            "tp": n_matched,
            "fn": n_ref - n_matched,
            "fp": n_test - n_matched,
        }
    }
    for cls in CLASSES:
        k = class_counts(m, cls)
        out[cls] = {
            "se": _ratio(k["tp"], k["tp"] + k["fn"]),
            "ppv": _ratio(k["tp"], k["tp"] + k["fp"]),
            "fpr": _ratio(k["fp"], k["fp"] + k["tn"]),
            "f1": _ratio(2 * k["tp"], 2 * k["tp"] + k["fp"] + k["fn"]),
            **k,
            "n_ref": int(m[_INDEX[cls], :].sum()),
        }
    f1s = [out[c]["f1"] for c in ("N", "S", "V") if not math.isnan(out[c]["f1"])]
    out["accuracy"] = _ratio(np.trace(matched), n_matched)
    out["macro_f1"] = float(np.mean(f1s)) if f1s else math.nan
    out["n_ref"] = n_ref
    out["n_test"] = n_test
    out["n_matched"] = n_matched
    return out
