"""Reference labels for a live stream's beats: evaluation consuming what the stream emits.

The stream (:mod:`edge_ecg.stream`) detects and classifies beats and knows nothing of a
reference. When its source knows the ground truth (``--simulate``, ``--replay``: each
:class:`~edge_ecg.stream.sources.Chunk` carries ``truth``), a :class:`ReferenceLabeller` handed
to :func:`~edge_ecg.stream.runner.run_stream` (``consumers=``) sees every chunk before the
pipeline does and every emitted beat before the outputs do, gives the beat its reference class
(``BeatEvent.truth``, via :class:`~edge_ecg.evaluate.match.TruthMatcher`) and counts agreement.
"""

from __future__ import annotations

from edge_ecg.evaluate.match import MATCH_WINDOW_S, TruthMatcher


class ReferenceLabeller:
    """A run consumer: reference beats from the chunks, reference labels onto the beats.

    :meth:`on_chunk` takes a chunk's ground-truth beats (stream sample index, class letter);
    :meth:`on_event` sets ``ev.truth`` to the class of the reference beat nearest to
    ``ev.sample`` within ``tolerance_s`` seconds (None if none) and counts the classified beats
    that had one (``truth_matched``) and agreed (``truth_agree``); :meth:`summary` gives those
    counters, ``truth_beats`` and ``truth_agreement`` (a fraction, None before any match).
    """

    def __init__(self, tolerance_s: float = MATCH_WINDOW_S, memory: int = 512):
        self.matcher = TruthMatcher(tolerance_s, memory)
        self.counters = {"truth_beats": 0, "truth_matched": 0, "truth_agree": 0}
        self.fs: float | None = None

    def on_chunk(self, chunk) -> None:
        """Remember the reference beats of ``chunk`` (and its rate, Hz)."""
        self.fs = float(chunk.fs)
        for s, label in chunk.truth:
            self.matcher.add(s, label)
            self.counters["truth_beats"] += 1

    def on_event(self, ev) -> None:
        """Give beat ``ev`` its reference class; count agreement for a classified beat."""
        ev.truth = None if self.fs is None else self.matcher.match(ev.sample, self.fs)
        if ev.truth is not None and ev.label is not None:
            self.counters["truth_matched"] += 1
            self.counters["truth_agree"] += int(ev.truth == ev.label)

    def summary(self) -> dict:
        """The counters and ``truth_agreement`` (agreeing / matched, 4 decimals; None if none matched)."""
        out = dict(self.counters)
        matched = out["truth_matched"]
        out["truth_agreement"] = None if not matched else round(out["truth_agree"] / matched, 4)
        return out
