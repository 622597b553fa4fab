"""A fake Polar H10 for the BLE tests: a bleak-like client over a signal, frames built to Polar's
published PMD format (:func:`edge_ecg.stream.sources.ble.encode_ecg_frame`), with drop-outs.

:class:`Air` is the strap and the room: its clock runs at ``speed`` times real time from the
first connection, the strap keeps sampling while out of range (so the frames' timestamps tell
how much was lost), and it is out of range for the signal-time intervals in ``dropouts``.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from edge_ecg.stream.sources import ble as B


class Air:
    def __init__(self, signal_uv, fs: float = 130.0, frame: int = 73, speed: float = 20.0, dropouts=(),
                 battery: int = 80, ecg: bool = True, pmd: bool = True, answer: int = 0, bad_every: int = 0,
                 t0_ns: int = 599_000_000_000_000_000):
        self.x = np.asarray(signal_uv)
        self.fs, self.frame, self.speed = fs, frame, speed
        self.dropouts = list(dropouts)
        self.battery, self.ecg, self.pmd, self.answer, self.bad_every = battery, ecg, pmd, answer, bad_every
        self.t0_ns = t0_ns
        self.t_start: float | None = None
        self.connects = self.refused = self.frames_sent = 0
        self.next_k = 0  # the next sample the strap will send

    def now_s(self) -> float:
        """Signal time (s) on the strap's clock."""
        if self.t_start is None:
            self.t_start = time.monotonic()
        return (time.monotonic() - self.t_start) * self.speed

    def in_range(self) -> bool:
        t = self.now_s()
        return not any(a <= t < b for a, b in self.dropouts)

    @property
    def finished(self) -> bool:
        return self.now_s() * self.fs >= self.x.size

    def factory(self, address, disconnected_callback=None):
        return FakeClient(self, address, disconnected_callback)


class _Services:
    def __init__(self, uuids):
        self.uuids = set(uuids)

    def get_characteristic(self, uuid):
        return object() if uuid in self.uuids else None


class FakeClient:
    """The subset of ``bleak.BleakClient`` :class:`~edge_ecg.stream.sources.ble.BleStrapSource` uses."""

    def __init__(self, air: Air, address: str, disconnected_callback=None):
        self.air, self.address, self.on_gone = air, address, disconnected_callback
        self.is_connected = False
        self.notify: dict = {}
        self.task = None
        uuids = [B.HR_SERVICE, B.BATTERY_LEVEL] + ([B.PMD_SERVICE, B.PMD_CONTROL, B.PMD_DATA] if air.pmd else [])
        self.services = _Services(uuids)

    async def connect(self):
        if not self.air.in_range():
            self.air.refused += 1
            raise OSError(f"Device with address {self.address} was not found")
        self.air.connects += 1
        self.is_connected = True
        # what the strap sampled while nobody listened is gone: it sends from now on
        self.air.next_k = max(self.air.next_k, int(self.air.now_s() * self.air.fs) - self.air.frame)

    async def disconnect(self):
        self.is_connected = False
        if self.task is not None:
            self.task.cancel()

    async def read_gatt_char(self, uuid):
        if uuid == B.PMD_CONTROL:
            return bytearray([0x0F, 0x05 if self.air.ecg else 0x04] + [0] * 15)
        if uuid == B.BATTERY_LEVEL:
            return bytearray([self.air.battery])
        raise KeyError(uuid)

    async def start_notify(self, uuid, callback):
        self.notify[uuid] = callback

    async def write_gatt_char(self, uuid, data, response=True):
        assert uuid == B.PMD_CONTROL and bytes(data) == B.START_ECG
        self.notify[B.PMD_CONTROL](None, bytearray([0xF0, 0x02, 0x00, self.air.answer, 0x00]))
        if self.air.answer == 0 and self.air.ecg:
            self.task = asyncio.get_running_loop().create_task(self._stream())

    async def _stream(self):
        air = self.air
        period_ns = 1e9 / air.fs
        while self.is_connected:
            await asyncio.sleep(air.frame / air.fs / air.speed)
            if not air.in_range():  # walked out of range: the link drops
                self.is_connected = False
                if self.on_gone:
                    self.on_gone(self)
                return
            end = min(int(air.now_s() * air.fs), air.x.size)
            while air.next_k + air.frame <= end:
                k0 = air.next_k
                air.next_k += air.frame
                stamp = air.t0_ns + int(round((k0 + air.frame - 1) * period_ns))
                data = B.encode_ecg_frame(stamp, air.x[k0:k0 + air.frame])
                air.frames_sent += 1
                if air.bad_every and air.frames_sent % air.bad_every == 0:
                    data = data[:-1]  # a cut frame: counted, never crashes
                self.notify[B.PMD_DATA](None, bytearray(data))
            if air.next_k + air.frame > air.x.size:
                return
