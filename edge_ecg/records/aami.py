"""AAMI EC57 beat classes and the de Chazal inter-patient split of MIT-BIH.

de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG
morphology and heartbeat interval features. IEEE Trans Biomed Eng 51(7):1196-1206 (2004).

The mapping is de Chazal's, used throughout the inter-patient literature:
N = {N, L, R, e, j}, S = {A, a, J, S}, V = {V, E}, F = {F}, Q = {/, f, Q}.
(PhysioNet's ``bxb`` puts ``e`` and ``j`` in S; we keep de Chazal's mapping.)
Every other annotation symbol is not a beat.
"""

from __future__ import annotations

from edge_ecg.config import CLASSES

AAMI_MAP: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}

#: Class name -> output index, in :data:`CLASSES` order.
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES)}

#: Paced records, left out of DS1/DS2.
PACED: tuple[str, ...] = ("102", "104", "107", "217")

#: de Chazal's training set.
DS1: tuple[str, ...] = tuple(
    "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()
)
#: de Chazal's test set: only for final reports.
DS2: tuple[str, ...] = tuple(
    "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()
)

#: Named record sets a user can pass wherever a record list is taken.
RECORD_SETS: dict[str, tuple[str, ...]] = {"DS1": DS1, "DS2": DS2}


def aami_class(symbol: str) -> str | None:
    """The AAMI class of a MIT-BIH beat symbol, or ``None`` when the symbol is not a beat."""
    return AAMI_MAP.get(symbol)
