"""Where live samples come from: a serial board, a Bluetooth strap, a WFDB record replayed, or
the simulator -- each a module of this package behind one contract.

The contract (:mod:`~edge_ecg.stream.sources.base`): a :class:`Source` yields :class:`Chunk`
objects from :meth:`~Source.chunks` (consecutive samples of one lead, with rate, arrival time,
gaps, device flags and ground truth when known); the pipeline never knows which source it reads.

- :mod:`~edge_ecg.stream.sources.replay`: :class:`ReplaySource`, a WFDB record at ``speed``
  times real time (0: as fast as possible), opened by :func:`open_replay`;
- :mod:`~edge_ecg.stream.sources.simulated`: :class:`SimulatedSource`,
  :class:`~edge_ecg.stream.simulate.EcgSimulator` paced likewise;
- :mod:`~edge_ecg.stream.sources.serial`: :class:`SerialSource`, a board that may be unplugged
  (reconnects with back-off and resumes with a gap), with its formats
  :mod:`~edge_ecg.stream.sources.ascii` (:class:`SerialAsciiSource`, text lines) and
  :mod:`~edge_ecg.stream.sources.binary` (:class:`SerialBinarySource`, the framed protocol of
  :mod:`edge_ecg.stream.protocol`);
- :mod:`~edge_ecg.stream.sources.ble`: :class:`BleStrapSource`, a Polar H10 strap (``bleak``);
- :mod:`~edge_ecg.stream.sources.threaded`: :class:`ThreadedReader` runs any source in its own
  thread behind a bounded queue.

Adding a source: one new module here (a :class:`Source` subclass) and a line in
:data:`SOURCES` (with its import above it).
"""

from edge_ecg.stream.sources.ascii import AsciiParser, SerialAsciiSource
from edge_ecg.stream.sources.base import DEVICE_FS_RANGE, Chunk, Pacer, Source, check_device_fs, default_chunk_s
from edge_ecg.stream.sources.binary import SerialBinarySource
from edge_ecg.stream.sources.ble import BleStrapSource
from edge_ecg.stream.sources.replay import ReplaySource, find_replay, open_replay, replay_lead
from edge_ecg.stream.sources.serial import FormatGuard, SerialSource, device_error, guess_format
from edge_ecg.stream.sources.simulated import SimulatedSource
from edge_ecg.stream.sources.threaded import ThreadedReader

#: Every kind of source by name (the registry: one line per source module).
SOURCES: dict[str, type[Source]] = {
    "replay": ReplaySource,
    "simulate": SimulatedSource,
    "serial-ascii": SerialAsciiSource,
    "serial-binary": SerialBinarySource,
    "ble": BleStrapSource,
}

__all__ = [
    "DEVICE_FS_RANGE", "SOURCES", "AsciiParser", "BleStrapSource", "Chunk", "FormatGuard", "Pacer", "ReplaySource",
    "SerialAsciiSource", "SerialBinarySource", "SerialSource", "SimulatedSource", "Source", "ThreadedReader",
    "check_device_fs", "default_chunk_s", "device_error", "find_replay", "guess_format", "open_replay",
    "replay_lead",
]
