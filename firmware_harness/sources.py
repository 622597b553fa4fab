"""What an emulated board "measures": a WFDB record or a built-in synthetic ECG.

A source is any object with a ``name`` and ``iter_mv(fs, clock_ppm=0.0, chunk_s=1.0)``
yielding float64 mV chunks sampled at ``fs * (1 + clock_ppm / 1e6)`` Hz -- the instants at
which a board whose crystal runs ``clock_ppm`` fast would sample the analog signal while
believing it samples at ``fs``. Anything with that method plugs into
:class:`firmware_harness.emulator.Emulator` (e.g. a richer simulator from
``edge_ecg.stream``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from edge_ecg.errors import DataError


class Source(Protocol):
    """Anything the emulator can replay."""

    name: str

    def iter_mv(self, fs: float, clock_ppm: float = 0.0, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        """mV chunks (1-D float64) sampled at ``fs * (1 + clock_ppm/1e6)`` Hz; may be endless."""
        ...


def _true_rate(fs: float, clock_ppm: float) -> float:
    return fs * (1.0 + clock_ppm * 1e-6)


class RecordSource:
    """A finite recording: ``signal_mv`` (n,) at ``fs`` Hz, replayed once.

    Resampled to the requested rate with :func:`edge_ecg.signal.resample.ecg_resample`; a
    clock error is applied on top by linear interpolation (sample ``k`` is the signal at
    ``k / (fs * (1 + ppm/1e6))`` seconds), so at 0 ppm and the record's own rate the samples
    are the record's, unchanged.
    """

    def __init__(self, signal_mv: np.ndarray, fs: float, name: str = "record"):
        self.signal_mv = np.asarray(signal_mv, dtype=np.float64).reshape(-1)
        self.fs = float(fs)
        self.name = name

    def iter_mv(self, fs: float, clock_ppm: float = 0.0, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        x = self.signal_mv
        if fs != self.fs:
            from edge_ecg.signal.resample import ecg_resample

            x = ecg_resample(x, self.fs, fs)
        if clock_ppm:
            ratio = fs / _true_rate(fs, clock_ppm)  # nominal-rate index advance per true sample
            n = int(math.floor((len(x) - 1) / ratio)) + 1
            x = np.interp(np.arange(n) * ratio, np.arange(len(x)), x)
        step = max(1, int(round(chunk_s * fs)))
        for start in range(0, len(x), step):
            yield x[start: start + step]


def record_source(record: str | Path, lead: str = "MLII", data: str | Path | None = None) -> RecordSource:
    """A :class:`RecordSource` from ``record``: a path ``DIR/NAME`` (``.hea`` optional) or a
    record name looked up in ``data`` / the MIT-BIH folder edge-ecg finds."""
    from edge_ecg.records import find_database, load_record

    spec = Path(str(record))
    if spec.suffix in (".hea", ".dat", ".atr"):
        spec = spec.with_suffix("")
    if spec.parent != Path(".") or (spec.parent / f"{spec.name}.hea").is_file():
        db_dir, name = spec.parent, spec.name
        if not (db_dir / f"{name}.hea").is_file():
            raise DataError(f"record {record}: {db_dir / (name + '.hea')} does not exist")
    else:
        db_dir, name = find_database("mitdb", data), spec.name
    rec = load_record(db_dir, name, lead=lead, annotations=False)
    return RecordSource(rec.signal, rec.fs, name=f"{name} ({rec.lead})")


class SyntheticSource:
    """An endless synthetic ECG: Gaussian P, Q, R, S, T waves, ``heart_rate`` bpm with 3 %
    beat-to-beat variability, slow baseline wander and ``noise_mv`` of white noise.

    Crude but QRS-like (R about 1.2 mV), deterministic for a given ``seed``. ``beat_times_s``
    lists the R-peak times generated so far (seconds of true time), for tests.
    """

    # (offset from R in s, width in s, amplitude in mV)
    WAVES = ((-0.16, 0.025, 0.12), (-0.03, 0.010, -0.12), (0.0, 0.011, 1.2), (0.03, 0.010, -0.25),
             (0.25, 0.045, 0.30))

    def __init__(self, heart_rate: float = 72.0, seed: int = 0, noise_mv: float = 0.01, name: str = "synthetic"):
        if heart_rate <= 0:
            raise DataError(f"heart rate must be positive (got {heart_rate} bpm)")
        self.heart_rate = float(heart_rate)
        self.seed = seed
        self.noise_mv = float(noise_mv)
        self.name = name
        self.beat_times_s: list[float] = []

    def iter_mv(self, fs: float, clock_ppm: float = 0.0, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        rate = _true_rate(fs, clock_ppm)
        rr = 60.0 / self.heart_rate
        beats: list[float] = []
        next_beat = 0.6
        self.beat_times_s = []
        step = max(1, int(round(chunk_s * fs)))
        k0 = 0
        while True:
            t = (k0 + np.arange(step)) / rate
            while next_beat < t[-1] + 1.0:
                beats.append(next_beat)
                self.beat_times_s.append(next_beat)
                next_beat += rr * (1.0 + 0.03 * rng.standard_normal())
            x = 0.1 * np.sin(2 * np.pi * 0.2 * t)
            for tb in beats:
                if tb < t[0] - 1.0 or tb > t[-1] + 1.0:
                    continue
                for offset, width, amp in self.WAVES:
                    x += amp * np.exp(-0.5 * ((t - tb - offset) / width) ** 2)
            beats = [tb for tb in beats if tb >= t[-1] - 1.0]
            x += self.noise_mv * rng.standard_normal(step)
            yield x
            k0 += step


class SimulatorSource:
    """:class:`edge_ecg.stream.simulate.EcgSimulator` (N, S and V beats with known labels) as a source.

    ``options`` go to the simulator (``hr_bpm``, ``s_prob``, ``v_prob``, ``noise_mv``...).
    The simulator runs at the board's true rate, so ``beats`` (R-peak sample indices and
    labels generated so far) count board samples.
    """

    def __init__(self, seed: int = 0, name: str = "simulator", **options):
        self.seed = seed
        self.options = options
        self.name = name
        self.beats: list = []

    def iter_mv(self, fs: float, clock_ppm: float = 0.0, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        from edge_ecg.stream.simulate import EcgSimulator

        sim = EcgSimulator(fs=_true_rate(fs, clock_ppm), seed=self.seed, **self.options)
        self.beats = []
        step = max(1, int(round(chunk_s * fs)))
        while True:
            x, beats = sim.generate(step)
            self.beats.extend(beats)
            yield x


def simulated_source(seed: int = 0) -> SimulatorSource:
    """:class:`SimulatorSource`: edge-ecg's ECG simulator with its default rhythm."""
    return SimulatorSource(seed=seed)
