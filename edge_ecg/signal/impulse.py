"""Serial glitches out: a causal impulse rejector with a few samples of look-ahead.

A serial line corrupts single samples: a garbage fragment merged with the next line (``5``
then ``512`` read as ``5512``), a value off the ADC's range, one wild sample. Fed to the QRS
detector during its learning phase, one such sample sets its thresholds far too high and
costs the beats of many seconds; later it turns beats' windows and RR features. An ECG
never does that: even the sharpest R peak sampled at 100 Hz stays within a few times the
spread of the samples around it, and within the signal's usual amplitude.

:class:`ImpulseRejector` holds back :attr:`~ImpulseRejector.delay` samples (``half``, 3 by
default: 12 ms at 250 Hz) and compares each sample ``k`` with its ``2 * half`` neighbours
(``half`` before, ``half`` after; raw samples). Sample ``k`` is an impulse when it is far
from a next-door neighbour (see below) and both

- its distance from the neighbours' median is more than ``spread_factor`` (5) times their
  trimmed spread (largest minus smallest once the single largest and smallest neighbour are
  set aside, so a glitch of two samples does not hide itself; at a segment's first and last
  samples, where neighbours are missing, nothing is set aside), and
- that distance is more than ``amplitude_fraction`` (0.5) of the signal's usual peak to peak:
  the median of the last ``blocks`` (8) one-second blocks of the output, or, during the first
  second of a segment, the range of what was seen so far (leaving out samples far from a
  neighbour, which may be glitches themselves), and never less than a
  floor (:func:`impulse_floor`: 1 mV, a QRS's usual height, or 128 steps of an ADC of unknown
  gain), so a glitch must stand at least 0.5 mV (64 steps) out of its neighbours.

An impulse is replaced by the neighbours' median and counted (:attr:`~ImpulseRejector.count`).
Samples a device flagged (lead-off) are passed as they are. Every criterion is relative, so
millivolts and raw ADC counts alike work; the decisions depend only on the samples (never on
how they were chunked). On clean ECG it changes nothing: ``python tools/impulses.py`` runs it
over every MIT-BIH record, at 360 Hz in mV and as an emulated 250 Hz 12-bit board, and counts
the samples it would change.
"""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np

from edge_ecg.config import StreamConfig
from edge_ecg.errors import DataError


class ImpulseRejector:
    """Replace single-sample (and two-sample) glitches; ``delay`` samples of latency.

    ``fs`` in Hz (sets the one-second blocks of the amplitude reference); ``floor``: the
    smallest amplitude reference, in the samples' unit (see :func:`impulse_floor`), so that
    in the first instants of a segment, before any heart beat, a noise blip of a few ADC
    steps on a flat line is not taken for a glitch. :meth:`process`
    takes the next raw samples (1-D, mV or ADC counts) and optionally the device's bool
    lead-off mask of the same length; it returns the samples released now (``delay`` fewer
    than given at the start of a segment, as many as given afterwards) with their mask.
    :meth:`flush` releases the samples still held (end of stream, or before a gap);
    :meth:`reset` starts a new segment. :attr:`count` counts replaced samples over the life
    of the object.
    """

    def __init__(self, fs: float, half: int = StreamConfig.impulse_half,
                 spread_factor: float = StreamConfig.impulse_spread_factor,
                 amplitude_fraction: float = StreamConfig.impulse_amplitude_fraction,
                 block_s: float = StreamConfig.impulse_block_s, blocks: int = StreamConfig.impulse_blocks,
                 floor: float = 0.0):
        if not np.isfinite(fs) or fs <= 0:
            raise DataError(f"ImpulseRejector needs a positive sampling rate in Hz, got {fs}")
        if half < 2:
            raise DataError(f"ImpulseRejector needs at least 2 neighbours on each side, got {half}")
        self.fs = float(fs)
        self.half = int(half)
        self.delay = self.half
        self.spread_factor = float(spread_factor)
        self.amplitude_fraction = float(amplitude_fraction)
        self.block = max(self.half + 1, int(round(block_s * fs)))
        self.n_blocks = int(blocks)
        self.floor = float(floor)
        self.count = 0
        self.replaced: list[int] = []  # output indices (in this segment) replaced since the caller last cleared it
        self.reset()

    def reset(self) -> None:
        """A new segment: forget the held samples and the amplitude reference (not :attr:`count`)."""
        self._raw = np.zeros(0)  # up to `half` released raw samples (left context), then the held ones
        self._flags = np.zeros(0, dtype=bool)  # the held samples' device flags
        self._left = 0  # how many of _raw are left context
        self._n_out = 0  # samples released in this segment
        self._cum_lo, self._cum_hi = np.inf, -np.inf  # range of every raw sample seen (first block)
        self._blk_lo, self._blk_hi = np.inf, -np.inf  # range of the current output block
        self._ptps: deque = deque(maxlen=self.n_blocks)

    @property
    def held(self) -> int:
        """Samples taken but not yet released."""
        return self._raw.size - self._left

    def process(self, x, flags=None) -> tuple[np.ndarray, np.ndarray]:
        """Take raw samples ``x`` (and their device ``flags``); return ``(released, their flags)``."""
        x = np.asarray(x, dtype=np.float64).ravel()
        f = np.zeros(x.size, dtype=bool) if flags is None else np.asarray(flags, dtype=bool).ravel()
        if f.size != x.size:
            raise DataError(f"ImpulseRejector: {f.size} flags for {x.size} samples")
        return self._run(x, f, final=False)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Release every held sample (judged with the neighbours there are)."""
        return self._run(np.zeros(0), np.zeros(0, dtype=bool), final=True)

    # ------------------------------------------------------------------ internals

    def _run(self, x: np.ndarray, f: np.ndarray, final: bool) -> tuple[np.ndarray, np.ndarray]:
        h, left = self.half, self._left
        z = np.concatenate([self._raw, x])
        flags = np.concatenate([self._flags, f])
        n_dec = flags.size if final else max(0, flags.size - h)  # samples whose right neighbours are in
        if n_dec == 0:
            self._raw, self._flags = z, flags
            return np.zeros(0), np.zeros(0, dtype=bool)
        # z[left + j], j < n_dec, is decided now; NaN stands for a neighbour the segment does not have
        pad = np.concatenate([np.full(h - left, np.nan), z, np.full(h, np.nan)])
        centre = pad[h: h + n_dec]
        out = centre.copy()
        # only a sample far from a next-door neighbour is judged (a glitch of one or two samples is)
        step = np.abs(np.diff(pad[h - 1: h + n_dec + 1]))
        near = np.fmax(step[:-1], step[1:])
        screen = self.amplitude_fraction * (1.0 - 1.0 / self.spread_factor)
        first = max(0, min(n_dec, self.block - self._n_out))  # samples still in the segment's first block
        if first:
            cum_lo, cum_hi, right_end = self._first_block_range(z, left, first, screen)
        if not first and not np.any(near > screen * self.floor):  # nothing to judge: only the blocks' ranges
            self._track_blocks(out)
            pos = n_dec
        else:
            pos = 0
        while pos < n_dec:  # block by block of the output, so nothing depends on chunking
            o = self._n_out + pos
            end = min(n_dec, pos + self.block - o % self.block)
            if self._ptps or pos >= first:  # (a first block with nothing finite in it: the floor)
                ref = max(statistics.median(self._ptps) if self._ptps else 0.0, self.floor)
                cand = np.flatnonzero((near[pos:end] > screen * ref) & ~flags[pos:end])
                min_dev = np.full(cand.size, self.amplitude_fraction * ref)
            else:
                ref = np.maximum(cum_hi[right_end[pos:end]] - cum_lo[right_end[pos:end]], self.floor)
                cand = np.flatnonzero((near[pos:end] > screen * ref) & ~flags[pos:end])
                min_dev = self.amplitude_fraction * ref[cand]
            if cand.size:
                self._replace(pad, out, cand + pos, min_dev)
            lo, hi = float(np.fmin.reduce(out[pos:end])), float(np.fmax.reduce(out[pos:end]))
            if np.isfinite(lo):
                self._blk_lo, self._blk_hi = min(self._blk_lo, lo), max(self._blk_hi, hi)
            if (o + end - pos) % self.block == 0:  # an output block completed
                if self._blk_hi >= self._blk_lo:
                    self._ptps.append(self._blk_hi - self._blk_lo)
                self._blk_lo, self._blk_hi = np.inf, -np.inf
            pos = end
        self._n_out += n_dec
        released_flags = flags[:n_dec]
        keep = min(h, left + n_dec)  # released raw samples kept as the next left context
        self._raw = z[left + n_dec - keep:]
        self._left = keep
        self._flags = flags[n_dec:]
        if final:
            self.reset()
        return out, released_flags

    def _track_blocks(self, out: np.ndarray) -> None:
        """Add the output ``out`` (released now, nothing replaced) to the one-second blocks' ranges."""
        o = self._n_out
        cuts = np.arange((-o) % self.block, out.size, self.block)  # where an output block starts
        edges = np.concatenate([[0], cuts[cuts > 0], [out.size]])
        lo = np.fmin.reduceat(out, edges[:-1])
        hi = np.fmax.reduceat(out, edges[:-1])
        for k in range(edges.size - 1):
            if np.isfinite(lo[k]):
                self._blk_lo, self._blk_hi = min(self._blk_lo, float(lo[k])), max(self._blk_hi, float(hi[k]))
            if (o + edges[k + 1]) % self.block == 0:  # an output block completed
                if self._blk_hi >= self._blk_lo:
                    self._ptps.append(self._blk_hi - self._blk_lo)
                self._blk_lo, self._blk_hi = np.inf, -np.inf

    def _first_block_range(self, z: np.ndarray, left: int, first: int, screen: float):
        """The reference in a segment's first block: for each of the ``first`` samples decided now,
        the range of the raw samples up to its window's right end, leaving out any sample that
        could be a glitch (far from a neighbour even at the floor). ``(lows, highs, index)``."""
        h = self.half
        seen = z[: min(z.size, left + first + h)]
        padded = np.concatenate([np.full(h, np.nan), seen, np.full(h, np.nan)])
        far = np.zeros(seen.size)
        for k in (-2, -1, 1, 2):
            far = np.fmax(far, np.abs(seen - padded[h + k: h + k + seen.size]))
        suspect = far > screen * self.floor if self.floor > 0 else np.zeros(seen.size, dtype=bool)
        fin = np.where(np.isfinite(seen) & ~suspect, seen, np.nan)
        cum_hi = np.fmax.accumulate(np.concatenate([[self._cum_hi], fin]))[1:]
        cum_lo = np.fmin.accumulate(np.concatenate([[self._cum_lo], fin]))[1:]
        if seen.size:
            self._cum_hi, self._cum_lo = float(cum_hi[-1]), float(cum_lo[-1])
        return cum_lo, cum_hi, np.minimum(left + np.arange(first) + h, seen.size - 1)

    def _replace(self, pad: np.ndarray, out: np.ndarray, idx: np.ndarray, min_dev: np.ndarray) -> None:
        """Judge samples ``idx`` (indices into ``out``; ``pad`` holds their raw neighbourhoods)
        and replace the impulses among them by their neighbours' median."""
        h = self.half
        win = pad[idx[:, None] + np.arange(2 * h + 1)[None, :]]
        centre = win[:, h]
        nb = np.delete(win, h, axis=1)
        finite = np.isfinite(nb)
        n_ok = finite.sum(axis=1)
        v = np.sort(np.where(finite, nb, np.inf), axis=1)  # a missing neighbour sorts last
        rows = np.arange(idx.size)
        last = np.maximum(n_ok - 1, 0)
        med = 0.5 * (v[rows, last // 2] + v[rows, n_ok // 2])
        trim = n_ok == 2 * h  # set the largest and smallest aside only in a full neighbourhood
        with np.errstate(invalid="ignore"):
            spread = np.where(trim, v[rows, np.maximum(n_ok - 2, 0)] - v[rows, np.minimum(1, last)],
                              v[rows, last] - v[rows, 0])
        with np.errstate(invalid="ignore"):
            dev = np.abs(centre - med)
        hit = (n_ok >= 3) & np.isfinite(centre) & (dev > self.spread_factor * spread) & (dev > min_dev)
        if hit.any():
            out[idx[hit]] = med[hit]
            self.count += int(hit.sum())
            self.replaced.extend((self._n_out + idx[hit]).tolist())


#: The amplitude floor in mV (see :class:`ImpulseRejector`), and in steps of an ADC whose gain is unknown.
FLOOR_MV, FLOOR_ADC_STEPS = 1.0, 128.0


def impulse_floor(samples, units: str = "mV", gain: float | None = None) -> float:
    """The ``floor`` of an :class:`ImpulseRejector` for a stream in ``units`` (``"mV"`` or
    ``"adc"`` counts, ``gain`` counts per mV when known): 1 mV; for ADC counts of unknown gain
    128 counts when ``samples`` are whole numbers (0.1 to 0.6 mV on hobby boards), else 0
    (nothing is known of the scale)."""
    if units == "mV":
        return FLOOR_MV
    if gain:
        return FLOOR_MV * float(gain)
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    return FLOOR_ADC_STEPS if x.size and bool(np.all(x == np.round(x))) else 0.0
