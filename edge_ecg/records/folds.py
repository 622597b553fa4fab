"""Patient-grouped folds: every record of a patient in one fold, rare beats spread evenly.

Used by cross-validation over several databases (``tools/cv_select.py``) so that no patient is
ever scored by a model that trained on another of their records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def patient_folds(records: Sequence[str], patient_of: Callable[[str], str], k: int,
                  weight: Mapping[str, float] | None = None) -> list[list[str]]:
    """``records`` split into ``k`` folds of whole patients.

    Patients are placed one at a time, heaviest first (``weight``: a record's count of the
    beats to spread, e.g. its S beats; patients sum their records), each into the fold with
    the least weight so far (ties: the fewest records, then the lowest fold number). The same
    input always gives the same folds. Each fold keeps the records' given order.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    groups: dict[str, list[str]] = {}
    for r in records:
        groups.setdefault(patient_of(r), []).append(r)
    if len(groups) < k:
        raise ValueError(f"{len(groups)} patients cannot fill {k} folds")
    w = weight or {}
    order = sorted(groups, key=lambda p: (-sum(w.get(r, 0.0) for r in groups[p]), p))
    load = [0.0] * k
    members: list[list[str]] = [[] for _ in range(k)]
    for p in order:
        f = min(range(k), key=lambda i: (load[i], len(members[i]), i))
        members[f].extend(groups[p])
        load[f] += sum(w.get(r, 0.0) for r in groups[p])
    position = {r: i for i, r in enumerate(records)}
    return [sorted(m, key=position.__getitem__) for m in members]
