"""Is the signal usable? Flat line, saturation and lead-off, sample by sample, live.

:class:`QualityMonitor` marks the samples a beat detector or classifier should not trust.
Every criterion is relative, so it works on mV and on raw ADC counts alike; feed it the
samples as they come from the device (before resampling or filtering), because saturation
is recognised by samples repeating the exact same extreme value.

- **flat**: over the last ``flat_s`` seconds (0.5 s) the signal moved (peak to peak) by at
  most ``flat_fraction`` (1 %) of its typical 0.5 s peak-to-peak range (the median of the last
  16 usable 0.5 s blocks); before a typical range is known, only an exactly constant
  signal is flat.
- **saturated**: the sample equals the lowest or highest value seen since the start (or the
  known ADC ``rails``) and the same value has repeated for at least ``saturation_s``
  seconds (50 ms).
- **lead_off**: the device said so (``process(chunk, lead_off=...)``), or the sample is flat
  or saturated: a disconnected electrode shows as one or the other.

Each flag looks only at the past, so the mask does not depend on how the stream is
chunked; the first ``flat_s`` of a flat stretch are not yet flagged as flat.
"""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np

from edge_ecg.config import StreamConfig
from edge_ecg.errors import DataError
from edge_ecg.signal.dsp import trailing_max, trailing_min


class QualityMonitor:
    """Per-sample usability of a live ECG: flat line, saturation, lead-off.

    ``fs`` in Hz. :meth:`process` returns a bool mask, True where a sample is unusable.
    :attr:`flags` counts flagged samples per reason: ``"flat"``, ``"saturated"``,
    ``"device"`` (the device's own lead-off flag) and ``"lead_off"`` (any of them, i.e. every
    unusable sample); :attr:`episodes` counts the unusable stretches that began.
    ``rails=(low, high)`` gives the ADC limits when known (same unit as the samples).
    """

    def __init__(
        self,
        fs: float,
        flat_s: float = StreamConfig.flat_s,
        flat_fraction: float = StreamConfig.flat_fraction,
        saturation_s: float = StreamConfig.saturation_s,
        rails: tuple[float, float] | None = None,
    ):
        try:
            fs = float(fs)
        except (TypeError, ValueError):
            raise DataError(f"QualityMonitor needs a numeric sampling rate in Hz, got {fs!r}") from None
        if not np.isfinite(fs) or fs <= 0:
            raise DataError(f"QualityMonitor needs a positive sampling rate in Hz, got {fs}")
        if flat_s <= 0 or saturation_s <= 0 or not 0 <= flat_fraction < 1:
            raise DataError("QualityMonitor needs flat_s > 0, saturation_s > 0 and 0 <= flat_fraction < 1")
        if rails is not None and not rails[0] < rails[1]:
            raise DataError(f"ADC rails must be (low, high) with low < high, got {rails}")
        self.fs = fs
        self.flat_fraction = float(flat_fraction)
        self.rails = None if rails is None else (float(rails[0]), float(rails[1]))
        self._flat_n = max(2, int(round(flat_s * fs)))
        self._sat_n = max(3, int(round(saturation_s * fs)))
        self.flags = {"flat": 0, "saturated": 0, "device": 0, "lead_off": 0}
        self.episodes = 0
        self.reset()

    def reset(self) -> None:
        """Forget the signal's history (a new recording); the counters are kept."""
        self._n = 0
        self._hist = np.zeros(0)
        self._lo = np.inf
        self._hi = -np.inf
        self._run = 0  # length of the run of identical values ending at the last sample
        self._blocks: deque = deque(maxlen=16)  # peak-to-peak of recent usable blocks
        self._tol = 0.0
        self._was_bad = False

    @property
    def tolerance(self) -> float:
        """Current flat-line tolerance (peak to peak, in the samples' unit)."""
        return self._tol

    def process(self, chunk, lead_off=None) -> np.ndarray:
        """Judge the next samples (1-D, mV or ADC counts); return a bool mask, True = unusable.

        ``lead_off`` is the device's electrode-off flag: None, one bool for the whole chunk,
        or a bool array of the chunk's length.
        """
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 1:
            raise DataError(f"QualityMonitor.process expects a 1-D chunk of samples, got shape {x.shape}")
        n = x.size
        if n == 0:
            return np.zeros(0, dtype=bool)
        device = np.zeros(n, dtype=bool)
        if lead_off is not None:
            flag = np.asarray(lead_off, dtype=bool)
            if flag.ndim == 0:
                device[:] = bool(flag)
            elif flag.shape == (n,):
                device = flag.copy()
            else:
                raise DataError(f"lead_off must be one bool or {n} bools (one per sample), got shape {flag.shape}")
        bad_value = ~np.isfinite(x)
        x = np.where(bad_value, np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), x)

        saturated = self._saturated(x)
        flat = self._flat(x)
        mask = flat | saturated | device | bad_value
        self.flags["flat"] += int(flat.sum())
        self.flags["saturated"] += int(saturated.sum())
        self.flags["device"] += int(device.sum())
        self.flags["lead_off"] += int(mask.sum())
        prev = np.concatenate([[self._was_bad], mask[:-1]])
        self.episodes += int(np.count_nonzero(mask & ~prev))
        self._was_bad = bool(mask[-1])
        return mask

    # ------------------------------------------------------------------ criteria

    def _saturated(self, x: np.ndarray) -> np.ndarray:
        """Samples pinned at an extreme value for at least ``saturation_s``."""
        if self.rails is not None:
            lo = np.full(x.size, self.rails[0])
            hi = np.full(x.size, self.rails[1])
            at_rail = (x <= lo) | (x >= hi)
        else:
            lo = np.minimum.accumulate(np.concatenate([[self._lo], x]))[1:]
            hi = np.maximum.accumulate(np.concatenate([[self._hi], x]))[1:]
            at_rail = ((x == lo) | (x == hi)) & (hi > lo)
            self._lo, self._hi = float(lo[-1]), float(hi[-1])
        # run length of identical values ending at each sample
        prev = np.concatenate([[self._hist[-1] if self._hist.size else np.nan], x[:-1]])
        same = x == prev
        starts = np.flatnonzero(~same)
        idx = np.arange(x.size)
        last_start = np.full(x.size, -1)
        last_start[starts] = starts
        np.maximum.accumulate(last_start, out=last_start)
        run = np.where(last_start >= 0, idx - last_start + 1, idx + 1 + self._run)
        self._run = int(run[-1])
        return at_rail & (run >= self._sat_n)

    def _flat(self, x: np.ndarray) -> np.ndarray:
        """Samples ending a ``flat_s`` window whose peak to peak is within the tolerance."""
        w = self._flat_n
        buf = np.concatenate([self._hist, x])
        off = buf.size - x.size  # buf index of x[0]
        ptp = trailing_max(buf, w) - trailing_min(buf, w)
        ptp = ptp[off:]
        start = self._n  # absolute index of x[0]
        # windows not yet full (start of the stream) are never flat
        full = (start + np.arange(x.size)) >= w - 1
        flat = np.zeros(x.size, dtype=bool)
        # the tolerance changes only at absolute block boundaries (multiples of w)
        pos = 0
        while pos < x.size:
            absolute = start + pos
            end = min(x.size, pos + (w - absolute % w))
            seg = slice(pos, end)
            flat[seg] = full[seg] & (ptp[seg] <= self._tol)
            if (start + end) % w == 0 and start + end >= w:  # a block just completed
                block_ptp = float(ptp[end - 1])  # ptp of exactly that block
                if not flat[end - 1] and block_ptp > 0:
                    self._blocks.append(block_ptp)
                    self._tol = self.flat_fraction * statistics.median(self._blocks)
            pos = end
        self._n += x.size
        self._hist = buf[-(w - 1) :] if w > 1 else buf[:0]
        return flat
