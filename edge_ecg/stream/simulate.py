"""A synthetic ECG with known beats: the source behind ``edge-ecg stream --simulate``.

The waveform follows the sum-of-Gaussians description of McSharry et al. (2003, "A dynamical
model for generating synthetic electrocardiogram signals", IEEE TBME 50:289): each beat is
five Gaussian waves (P, Q, R, S, T) placed relative to the R peak, with the P and T offsets
stretched by the square root of the RR interval as ECGSYN does. The RR process has
respiratory sinus arrhythmia (0.25 Hz) and a slow Mayer wave (0.1 Hz) plus a little random
jitter. Three beat types, with the features that define their AAMI classes:

- ``N`` sinus beats;
- ``S`` supraventricular ectopics: premature (55-75 % of the sinus RR), an early, smaller,
  inverted P wave, a normal narrow QRS; the sinus node is reset (no compensatory pause);
- ``V`` ventricular ectopics: premature (55-70 %), no P wave, a wide (~140 ms), tall,
  bizarre QRS with a discordant T wave, and a full compensatory pause.

Noise: baseline wander (respiration), white (muscle-like) noise and a little mains hum.
The generator is incremental: :meth:`EcgSimulator.generate` returns the next ``n``
samples and the beats whose R peak falls in them, so a stream of any length runs in bounded
memory; :func:`simulate_ecg` makes a whole signal at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_ecg.errors import ConfigError

#: Waves per beat type: (name, offset from R in s at RR = 0.8 s, width s, amplitude mV).
#: P and T offsets scale with sqrt(RR / 0.8) (ECGSYN's heart-rate factor).
WAVES: dict[str, tuple[tuple[str, float, float, float], ...]] = {
    "N": (
        ("P", -0.200, 0.025, 0.15),
        ("Q", -0.030, 0.010, -0.12),
        ("R", 0.000, 0.011, 1.20),
        ("S", 0.032, 0.010, -0.28),
        ("T", 0.280, 0.060, 0.32),
    ),
    "S": (
        ("P", -0.140, 0.020, -0.09),
        ("Q", -0.030, 0.010, -0.12),
        ("R", 0.000, 0.011, 1.15),
        ("S", 0.032, 0.010, -0.28),
        ("T", 0.260, 0.055, 0.28),
    ),
    "V": (
        ("R", 0.000, 0.038, 1.70),
        ("S", 0.085, 0.035, -0.70),
        ("T", 0.330, 0.085, -0.50),
    ),
}
_STRETCH = {"P", "T"}
_REACH_S = 1.0  # no wave reaches further than this from its R peak


@dataclass(frozen=True)
class SimulatedBeat:
    """One generated beat: ``sample`` is the R-peak index (at the simulator's ``fs``), ``label`` N, S or V."""

    sample: int
    label: str


class EcgSimulator:
    """Incremental synthetic ECG in mV at ``fs`` Hz with ground-truth beats.

    ``hr_bpm`` is the mean sinus rate; ``s_prob`` and ``v_prob`` the chance that a beat is an
    S or V ectopic; ``noise_mv`` the white-noise standard deviation and ``wander_mv`` the
    baseline-wander amplitude (both mV); ``mains_hz``/``mains_mv`` the hum. The same
    ``seed`` gives the same signal regardless of how it is cut into calls.
    """

    def __init__(
        self,
        fs: float = 360.0,
        hr_bpm: float = 72.0,
        s_prob: float = 0.06,
        v_prob: float = 0.06,
        noise_mv: float = 0.015,
        wander_mv: float = 0.08,
        mains_hz: float = 50.0,
        mains_mv: float = 0.01,
        seed: int = 0,
    ):
        if not 50.0 <= fs <= 2000.0:
            raise ConfigError(f"simulator sampling rate must be 50 to 2000 Hz, got {fs}")
        if not 30.0 <= hr_bpm <= 200.0:
            raise ConfigError(f"simulator heart rate must be 30 to 200 bpm, got {hr_bpm}")
        if s_prob < 0 or v_prob < 0 or s_prob + v_prob > 0.5:
            raise ConfigError("simulator ectopic probabilities must be >= 0 and sum to at most 0.5")
        self.fs = float(fs)
        self.rr_s = 60.0 / hr_bpm
        self.s_prob, self.v_prob = float(s_prob), float(v_prob)
        self.noise_mv, self.wander_mv = float(noise_mv), float(wander_mv)
        self.mains_hz, self.mains_mv = float(mains_hz), float(mains_mv)
        self._beat_rng = np.random.default_rng([seed, 1])
        self._noise_rng = np.random.default_rng([seed, 2])
        self._phase = self._beat_rng.uniform(0, 2 * np.pi, size=3)
        self._n_done = 0  # samples generated so far
        self._scheduled: deque = deque()  # (t_s, label, gain) of beats not yet fully drawn
        self._last_t = 0.3  # time of the last scheduled beat (s); first beat at ~0.3 s + RR
        self._next_sinus = self._last_t + self.rr_s
        self._last_label = "N"

    # ------------------------------------------------------------------ beat schedule

    def _sinus_rr(self, t: float) -> float:
        rsa = 0.04 * math.sin(2 * math.pi * 0.25 * t + self._phase[0])
        mayer = 0.03 * math.sin(2 * math.pi * 0.1 * t + self._phase[1])
        jitter = 0.01 * float(self._beat_rng.standard_normal())
        return self.rr_s * (1.0 + rsa + mayer + jitter)

    def _schedule_until(self, t_end: float) -> None:
        rng = self._beat_rng
        while self._last_t < t_end:
            rr = self._sinus_rr(self._last_t)
            u = float(rng.uniform())
            ectopic_ok = self._last_label == "N"  # no couplets: keeps labels unambiguous
            if ectopic_ok and u < self.v_prob:
                label = "V"
                t = self._last_t + rr * float(rng.uniform(0.55, 0.70))
                # compensatory pause: the sinus rhythm goes on as if nothing happened, the
                # sinus beat falling during the ectopic's refractory period is not conducted
                self._next_sinus = self._last_t + 2.0 * rr
            elif ectopic_ok and u < self.v_prob + self.s_prob:
                label = "S"
                t = self._last_t + rr * float(rng.uniform(0.55, 0.75))
                self._next_sinus = t + rr  # the sinus node is reset
            else:
                label = "N"
                t = self._next_sinus
                self._next_sinus = t + self._sinus_rr(t)
            gain = 1.0 + 0.04 * float(rng.standard_normal())
            self._scheduled.append((t, label, gain))
            self._last_t, self._last_label = t, label

    # ------------------------------------------------------------------ samples

    def generate(self, n: int) -> tuple[np.ndarray, list[SimulatedBeat]]:
        """The next ``n`` samples (float64 mV, shape ``(n,)``) and the beats whose R falls in them."""
        n = int(n)
        i0 = self._n_done
        t = (i0 + np.arange(n)) / self.fs
        t0, t1 = i0 / self.fs, (i0 + n) / self.fs
        self._schedule_until(t1 + _REACH_S)
        x = np.zeros(n)
        beats: list[SimulatedBeat] = []
        for tb, label, gain in self._scheduled:
            if tb - _REACH_S >= t1:
                break
            if tb + _REACH_S < t0:
                continue
            rr_factor = math.sqrt(max(0.3, min(2.0, self.rr_s)) / 0.8)
            for name, off, width, amp in WAVES[label]:
                centre = tb + (off * rr_factor if name in _STRETCH else off)
                lo = max(0, int(math.floor((centre - 5 * width) * self.fs)) - i0)
                hi = min(n, int(math.ceil((centre + 5 * width) * self.fs)) - i0 + 1)
                if hi > lo:
                    seg = t[lo:hi]
                    x[lo:hi] += gain * amp * np.exp(-0.5 * ((seg - centre) / width) ** 2)
            r = int(round(tb * self.fs))
            if i0 <= r < i0 + n:
                beats.append(SimulatedBeat(r, label))
        while self._scheduled and self._scheduled[0][0] + _REACH_S < t1:
            self._scheduled.popleft()
        x += self.wander_mv * (
            np.sin(2 * np.pi * 0.22 * t + self._phase[2]) + 0.5 * np.sin(2 * np.pi * 0.05 * t + self._phase[0])
        )
        if self.mains_mv:
            x += self.mains_mv * np.sin(2 * np.pi * self.mains_hz * t)
        if self.noise_mv:
            x += self.noise_mv * self._noise_rng.standard_normal(n)
        self._n_done += n
        return x, beats


def simulate_ecg(duration_s: float, fs: float = 360.0, seed: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A whole synthetic ECG: ``(signal_mV float64 (n,), beat_samples int64 (k,), labels (k,) str)``.

    ``duration_s`` seconds at ``fs`` Hz; other keyword arguments go to :class:`EcgSimulator`.
    """
    sim = EcgSimulator(fs=fs, seed=seed, **kwargs)
    x, beats = sim.generate(int(round(duration_s * fs)))
    samples = np.array([b.sample for b in beats], dtype=np.int64)
    labels = np.array([b.label for b in beats], dtype="<U1")
    return x, samples, labels
