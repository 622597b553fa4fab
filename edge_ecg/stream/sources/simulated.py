"""The built-in synthetic ECG as a source: :class:`SimulatedSource` (ground truth included)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from edge_ecg.stream.sources.base import Chunk, Pacer, Source, default_chunk_s


class SimulatedSource(Source):
    """The built-in synthetic ECG (:class:`~edge_ecg.stream.simulate.EcgSimulator`) as a stream.

    ``speed`` and ``chunk_s`` as for :class:`~edge_ecg.stream.sources.replay.ReplaySource`; ``duration_s`` ends it (None:
    endless); other keyword arguments go to the simulator.
    """

    name = "simulate"

    def __init__(self, fs: float = 360.0, speed: float = 1.0, chunk_s: float | None = None,
                 duration_s: float | None = None, seed: int = 0, **sim_kwargs):
        super().__init__()
        from edge_ecg.stream.simulate import EcgSimulator

        self.sim = EcgSimulator(fs=fs, seed=seed, **sim_kwargs)
        self.fs = float(fs)
        self.speed = float(speed)
        self.live = self.speed > 0
        self.pacer = Pacer(speed, self._stop)
        self.chunk = max(1, int(round((chunk_s or default_chunk_s(speed)) * self.fs)))
        self.total = None if duration_s is None else int(round(duration_s * self.fs))

    def chunks(self) -> Iterator[Chunk]:
        done = 0
        while not self.stopped and (self.total is None or done < self.total):
            n = self.chunk if self.total is None else min(self.chunk, self.total - done)
            self.pacer.wait(done + n, self.fs)
            t0 = time.perf_counter()
            x, beats = self.sim.generate(n)
            done += n
            now = time.perf_counter()
            yield Chunk(x, self.fs, now, truth=[(b.sample, b.label) for b in beats], read_s=now - t0)
