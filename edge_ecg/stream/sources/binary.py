"""The framed binary protocol of :mod:`edge_ecg.stream.protocol` from a serial board:
:class:`SerialBinarySource`."""

from __future__ import annotations

import numpy as np

from edge_ecg.errors import ConfigError, DeviceError
from edge_ecg.stream.sources.base import Chunk
from edge_ecg.stream.sources.serial import SerialSource


class SerialBinarySource(SerialSource):
    """A board speaking the framed binary protocol (:mod:`edge_ecg.stream.protocol`).

    The header gives rate, gain and channel count; ``column`` picks the channel (0-based,
    ``--column``).
    ``fs``, when given, must agree with the header (a data frame before any header is then
    accepted at that rate; without it, frames before the first header are skipped and
    counted). A sequence gap, a device restart, a reported overflow or a header change is a
    gap for the pipeline; lead-off flags mark samples unusable.
    """

    fmt = "binary"

    def __init__(self, path: str, baud: int = 115200, column: int = 0, fs: float | None = None, **kwargs):
        from edge_ecg.stream.protocol import FrameDecoder

        if column < 0:
            raise ConfigError(f"--column must be >= 0 (a 0-based channel), got {column}")
        self.decoder = FrameDecoder()
        self.column = int(column)
        self.user_fs = None if fs is None else float(fs)
        self.header = None
        super().__init__(path, baud, **kwargs)
        self.counters.update(frames_before_header=0, gaps=0)

    def reset_parser(self, first: bool = False) -> None:
        # keep the decoder's counters; drop its partial frame and sequence memory
        stats = self.decoder.stats() if hasattr(self, "decoder") else {}
        self.decoder.reset()
        for k, v in stats.items():
            setattr(self.decoder, k, v)

    def thrown_away(self) -> int:
        return self.decoder.garbage_bytes + self.counters["frames_before_header"]

    def stats(self) -> dict:
        out = self.serial_stats()
        out.update(self.decoder.stats())
        return out

    def parse(self, data: bytes, arrival: float) -> list[Chunk]:
        from edge_ecg.stream.protocol import Header

        out: list[Chunk] = []
        parts: list[np.ndarray] = []
        bads: list[np.ndarray] = []
        group = {"gap": False, "lost": 0}  # of the frames collected in parts
        gap_next, lost_next = False, 0

        def flush():
            if parts:
                fs = self.header.fs if self.header is not None else self.user_fs
                gain = self.header.gain if self.header is not None else None
                base = self.header.baseline if self.header is not None else 0.0
                out.append(Chunk(np.concatenate(parts), fs, arrival, gap=group["gap"], lost=group["lost"],
                                 bad=np.concatenate(bads), units="adc", gain=gain, baseline=base))
                parts.clear()
                bads.clear()

        for frame in self.decoder.feed(data):
            if isinstance(frame, Header):
                if self.user_fs is not None and abs(frame.fs - self.user_fs) > 1e-6 * self.user_fs:
                    raise DeviceError(
                        f"{self.path}: --fs {self.user_fs:g} does not match the device's header "
                        f"({frame.fs:g} Hz); leave --fs out with --format binary"
                    )
                if self.header is not None and frame.fs != self.header.fs:
                    flush()
                    gap_next = True
                    self.counters["gaps"] += 1
                self.header = frame
                continue
            if self.header is None and self.user_fs is None:
                self.counters["frames_before_header"] += 1
                continue
            if self.column >= frame.channels:
                raise DeviceError(f"{self.path}: --column {self.column} but the device sends {frame.channels} "
                                  f"channel(s)")
            if frame.lost_before or frame.overflow:
                gap_next = True
                lost_next += frame.lost_before * len(frame) if frame.lost_before > 0 else 0
                self.counters["gaps"] += 1
            if gap_next or not parts:
                flush()
                group = {"gap": gap_next, "lost": lost_next}
                gap_next, lost_next = False, 0
            parts.append(frame.samples[:, self.column].astype(np.float64))
            bads.append(np.full(len(frame), frame.lead_off))
        flush()
        return out
