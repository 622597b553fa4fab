"""The source contract: a :class:`Source` yields :class:`Chunk` objects; pacing for recorded ones.

Every source yields :class:`Chunk` objects from :meth:`Source.chunks`: a block of consecutive
samples of one lead with its rate, arrival time and anything the pipeline must know (a gap
before it, samples flagged unusable by the device, ground truth when known). The pipeline never
needs to know which source it is reading. :class:`Pacer` and :func:`default_chunk_s` pace a
recorded or simulated signal; :func:`check_device_fs` bounds every device's rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge_ecg.errors import ConfigError

#: Sampling rates a device (or an emulated board) may have, Hz: one range for every command.
DEVICE_FS_RANGE = (50.0, 4000.0)


def check_device_fs(fs: float, option: str = "--fs") -> float:
    """``fs`` (Hz) if it is a plausible ECG sampling rate (:data:`DEVICE_FS_RANGE`), else a one-line
    :class:`ConfigError` naming ``option``."""
    lo, hi = DEVICE_FS_RANGE
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number of Hz, got {fs!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{option} {value:g} Hz is not a plausible ECG sampling rate ({lo:g}-{hi:g} Hz)")
    return value


@dataclass
class Chunk:
    """Consecutive samples of one lead.

    ``samples`` float64 ``(n,)`` in ``units`` (``"mV"`` or ``"adc"`` counts; the pipeline
    does not care which); ``fs`` the device rate in Hz; ``arrival`` the
    :func:`time.perf_counter` time the samples were read. ``gap`` marks a discontinuity
    before this chunk (reconnect, lost frames, dropped samples, rate change) and ``lost``
    how many samples are known to be missing there (0 if unknown). ``bad`` is an optional
    bool ``(n,)`` mask of samples the device flagged unusable (lead-off). ``truth`` lists
    ground-truth beats ``(stream sample index, class letter)`` when the source knows them.
    """

    samples: np.ndarray
    fs: float
    arrival: float
    gap: bool = False
    lost: int = 0
    bad: np.ndarray | None = None
    units: str = "mV"
    gain: float | None = None
    baseline: float = 0.0
    truth: list = field(default_factory=list)
    read_s: float = 0.0  # time spent reading/parsing/generating it (the "read" stage)

    def __len__(self) -> int:
        return int(self.samples.shape[0])


class Source:
    """Base class: iterate :meth:`chunks`; :meth:`stop` ends it from another thread."""

    #: True when samples come at the device's pace (dropping beats waiting on a slow consumer).
    live: bool = False
    name: str = "source"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.counters: dict[str, int] = {}

    def chunks(self) -> Iterator[Chunk]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        """Ask :meth:`chunks` to end soon (thread-safe)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Release any device (idempotent)."""

    def stats(self) -> dict:
        """Counters of what the source skipped, lost or retried."""
        return dict(self.counters)


class Pacer:
    """Sleeps so that sample ``k`` is released at ``k / (fs * speed)`` seconds after the start."""

    def __init__(self, speed: float, stop: threading.Event):
        if speed < 0:
            raise ConfigError(f"--speed must be >= 0 (0: as fast as possible), got {speed}")
        self.speed = float(speed)
        self._stop = stop
        self._t0: float | None = None

    def wait(self, end_sample: int, fs: float) -> None:
        """Block until samples up to ``end_sample`` (exclusive) are due."""
        if self.speed == 0:
            return
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + end_sample / (fs * self.speed)
        while now < due and not self._stop.is_set():
            self._stop.wait(min(due - now, 0.1))
            now = time.perf_counter()


def default_chunk_s(speed: float) -> float:
    """Chunk length (s of signal): 10 ms times ``speed`` when paced (small latency), 10 s at full speed."""
    if speed <= 0:
        return 10.0
    return float(min(1.0, max(0.01, 0.01 * speed)))
