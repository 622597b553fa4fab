"""Latency bookkeeping for the live runner: per-stage timers and percentiles.

Every stage of :class:`edge_ecg.stream.pipeline.StreamPipeline` (read and parse, resample
and filter, detect, window, inference, total per chunk) adds its wall-clock duration to a
:class:`LatencyStats`; beat-to-label latencies (from the arrival of the R-peak sample to the
emitted label) go into another. Storage is a fixed-size reservoir, so memory stays bounded
however long a stream runs.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

#: Stages timed per chunk, in pipeline order.
STAGES: tuple[str, ...] = ("read", "resample_filter", "detect", "window", "inference", "total")

#: Percentiles reported for every stage.
PERCENTILES: tuple[float, ...] = (50.0, 95.0, 99.0)


class LatencyStats:
    """Durations (seconds) of one kind; keeps count, max and a bounded uniform sample.

    ``capacity`` bounds memory: beyond it, a reservoir sample (Vitter's algorithm R) keeps
    percentiles unbiased for runs of any length.
    """

    def __init__(self, capacity: int = 100_000, seed: int = 0):
        self.capacity = int(capacity)
        self._values = np.empty(self.capacity, dtype=np.float64)
        self._n = 0
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self._rng = np.random.default_rng(seed)

    def add(self, seconds: float) -> None:
        """Record one duration in seconds."""
        seconds = float(seconds)
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        if self._n < self.capacity:
            self._values[self._n] = seconds
            self._n += 1
        else:
            j = int(self._rng.integers(0, self.count))
            if j < self.capacity:
                self._values[j] = seconds

    def add_many(self, seconds) -> None:
        """Record several durations (seconds)."""
        for s in np.asarray(seconds, dtype=np.float64).ravel():
            self.add(s)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in seconds; NaN when empty."""
        if self._n == 0:
            return float("nan")
        return float(np.percentile(self._values[: self._n], q))

    def summary_ms(self) -> dict:
        """``{"count", "mean", "p50", "p95", "p99", "max"}`` with durations in milliseconds."""
        if self.count == 0:
            return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
        values = np.percentile(self._values[: self._n], PERCENTILES) * 1000.0
        out = {"count": self.count, "mean": round(self.total / self.count * 1000.0, 4)}
        for q, v in zip(PERCENTILES, values):
            out[f"p{q:g}"] = round(float(v), 4)
        out["max"] = round(self.max * 1000.0, 4)
        return out


class StageTimer:
    """One :class:`LatencyStats` per stage name, with a context manager to time a block.

    >>> timer = StageTimer()
    >>> with timer.time("detect"):
    ...     pass
    >>> timer.stats["detect"].count
    1
    """

    def __init__(self, stages: tuple[str, ...] = STAGES, capacity: int = 100_000):
        self.stats = {name: LatencyStats(capacity) for name in stages}

    def add(self, stage: str, seconds: float) -> None:
        """Record ``seconds`` for ``stage`` (a new stage name is created on first use)."""
        if stage not in self.stats:
            self.stats[stage] = LatencyStats()
        self.stats[stage].add(seconds)

    @contextmanager
    def time(self, stage: str):
        """Time the ``with`` block and record it under ``stage``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def summary_ms(self) -> dict:
        """Every stage's :meth:`LatencyStats.summary_ms`, by stage name."""
        return {name: s.summary_ms() for name, s in self.stats.items()}
