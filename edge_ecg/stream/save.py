"""``--save RECORD``: the raw stream written as a WFDB record while it runs.

Samples go to ``RECORD.dat`` (WFDB format 16: little-endian int16) as they arrive, so memory
stays bounded however long the run; ``RECORD.hea`` is written atomically (a complete new
header or the old one) with the first samples, at every flush and on close, so the record is
readable however the run ends. A write that fails (a full disk) stops the recording without
raising: ``RECORD.dat`` is cut back to the samples the last header counts, and
:attr:`WfdbStreamWriter.error` says so in one line. Samples known to be lost in a gap are written as WFDB's invalid value (-32768), so
time in the record stays stream time. When the device changes its sampling rate, the record
is finished and recording goes on in a new one, ``NAME_2`` (then ``_3``...), at the new
rate: no sample is dropped. ADC counts are stored as they came (gain from the
device header when it sends one, else 1 "adu" per unit); millivolt sources (replay,
simulator) are stored at 1000 adu/mV (1 uV steps, +-32.7 mV).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edge_ecg.errors import DataError

log = logging.getLogger(__name__)

INVALID = -32768
#: Most lost samples filled with INVALID for one gap (longer gaps are just noted in the log).
MAX_FILL_S = 60.0


class WfdbStreamWriter:
    """Writes chunks to a single-signal WFDB record ``path`` (``DIR/NAME``; ``.hea`` optional)."""

    def __init__(self, path: str | Path, lead: str = "ECG", flush_every_s: float = 10.0):
        path = Path(path)
        if path.suffix in (".hea", ".dat"):
            path = path.with_suffix("")
        if not path.name or not path.name.replace("_", "").replace("-", "").isalnum():
            raise DataError(f"{path}: a WFDB record name may use only letters, digits, '_' and '-'")
        if not path.parent.is_dir():
            raise DataError(f"{path.parent}: folder for --save does not exist")
        self.path = self.base = path
        self.segment = 1
        self.records = [path]  # every record written (a new one at each change of sampling rate)
        self.lead = lead
        self.flush_every_s = float(flush_every_s)
        self._fh = None
        self.fs: float | None = None
        self.gain = 1.0
        self.baseline = 0
        self.units = "adu"
        self.scale = 1.0
        self.n = 0
        self.checksum = 0
        self.first_value = 0
        self._since_flush = 0
        self.stopped = False
        self.error: str | None = None
        self._hea_n = 0  # samples the header on disk counts

    def _start(self, chunk) -> None:
        self.fs = float(chunk.fs)
        if chunk.units == "mV":
            self.scale, self.gain, self.units = 1000.0, 1000.0, "mV"
        else:
            x = np.asarray(chunk.samples)
            integral = bool(np.all(x == np.round(x))) and x.size and -32768 < x.min() and x.max() < 32768
            self.scale = 1.0 if integral else 1000.0
            if chunk.gain:
                self.gain, self.units = float(chunk.gain) * self.scale, "mV"
                self.baseline = int(round(chunk.baseline * self.scale))
            else:
                self.gain, self.units = self.scale, "adu"
        try:
            self._fh = open(self.path.with_suffix(".dat"), "wb")
        except OSError as exc:
            raise DataError(f"{self.path}.dat: cannot write ({exc.strerror or exc})") from None

    def write(self, chunk) -> None:
        """Append one :class:`~edge_ecg.stream.sources.Chunk` (and INVALID for samples lost before it)."""
        if self.stopped or len(chunk) == 0:
            return
        if self._fh is None:
            self._start(chunk)
        elif abs(chunk.fs - self.fs) > 1e-9 * self.fs:
            self._next_record(chunk)
        if chunk.lost:
            fill = int(min(chunk.lost, MAX_FILL_S * self.fs))
            self._append(np.full(fill, INVALID, dtype="<i2"))
        q = np.clip(np.round(np.asarray(chunk.samples, dtype=np.float64) * self.scale), -32767, 32767).astype("<i2")
        if self.n == 0:
            self.first_value = int(q[0])
        self._append(q)
        if self._since_flush >= self.flush_every_s * self.fs or self._hea_n == 0:
            self.flush()

    def _next_record(self, chunk) -> None:
        """The device changed its rate: finish this record and go on in ``NAME_2`` (``_3``...)."""
        self.close()
        self.segment += 1
        old, self.path = self.path, self.base.with_name(f"{self.base.name}_{self.segment}")
        log.warning("sampling rate changed from %g to %g Hz: %s is complete; recording goes on in %s", self.fs,
                    chunk.fs, old, self.path)
        self.records.append(self.path)
        self._fh = None
        self.n = self.checksum = self.first_value = self._since_flush = self._hea_n = 0
        self.gain, self.baseline, self.units, self.scale = 1.0, 0, "adu", 1.0
        self._start(chunk)

    def _append(self, q: np.ndarray) -> None:
        if self.stopped:
            return
        try:
            self._fh.write(q.tobytes())
        except OSError as exc:
            self._fail(exc)
            return
        self.n += q.size
        self._since_flush += q.size
        self.checksum = (self.checksum + int(q.astype(np.int64).sum())) & 0xFFFF

    def flush(self) -> None:
        """Flush the samples and rewrite the header (the record is readable after this)."""
        if self._fh is None or self.stopped:
            return
        from edge_ecg.outputs import write_atomic

        self._since_flush = 0
        checksum = self.checksum - 0x10000 if self.checksum >= 0x8000 else self.checksum
        name = self.path.name
        header = (
            f"{name} 1 {self.fs:g} {self.n}\n"
            f"{name}.dat 16 {self.gain:g}({self.baseline})/{self.units} 16 0 {self.first_value} {checksum} 0 "
            f"{self.lead}\n"
            f"# recorded by edge-ecg stream\n"
        )
        try:
            self._fh.flush()
            write_atomic(self.path.with_suffix(".hea"), header)
        except OSError as exc:
            self._fail(exc)
            return
        self._hea_n = self.n

    def _fail(self, exc: OSError) -> None:
        """Stop recording: the .dat is cut back to what the header on disk counts."""
        from edge_ecg.outputs import disk_error

        self.stopped = True
        self.error = disk_error("--save", self.path, exc, f"the record keeps its first {self._hea_n} samples "
                                                          f"({self._hea_n / self.fs:.1f} s); recording stopped")
        log.error("%s", self.error)
        try:
            self._fh.close()
        except OSError:
            pass
        try:
            os.truncate(self.path.with_suffix(".dat"), 2 * self._hea_n)
        except OSError:
            pass

    def close(self) -> None:
        """Finish the record (idempotent)."""
        if self._fh is not None and not self._fh.closed:
            self.flush()
            if not self._fh.closed:
                try:
                    self._fh.close()
                except OSError as exc:
                    self._fail(exc)
