"""A Bluetooth chest strap as a stream source: the Polar H10's raw ECG over BLE (``--device ble:``).

The H10 serves its measurements through Polar's PMD ("Polar Measurement Data") GATT service,
whose published format (Polar BLE SDK documentation) is what this module speaks:

- service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``; control point ``...5C81...`` (write
  requests, indications answer them; a read gives the features: byte 0 ``0x0F``, byte 1 a
  bit mask in which bit 0 is ECG); data ``...5C82...`` (notifications);
- start ECG: ``02 00`` (start, ECG) then settings ``00 01 82 00`` (sample rate: one value,
  130 Hz) and ``01 01 0E 00`` (resolution: one value, 14 bits) (:data:`START_ECG`);
  answer ``F0 02 00 <error> ...`` (error 0: success);
- data frame: byte 0 the measurement type (``0x00``: ECG), bytes 1-8 a little-endian
  unsigned timestamp in ns (of the frame's last sample), byte 9 the frame type (``0x00``:
  uncompressed; bit 7 set: delta-compressed), then the samples, 3 bytes each, signed
  little-endian, in µV (:func:`decode_ecg_frame`).

:class:`BleStrapSource` is a :class:`~edge_ecg.stream.sources.Source` like a serial board: its
chunks (130 Hz, mV) go through the same pipeline (resampling to the model's rate, impulse
rejection, detector, classifier, adaptation, ``--web``, JSONL). A strap out of range is lost,
retried with back-off and resumed with a gap whose missing samples are counted from the
frames' timestamps (the detector restarts, as after a serial replug). ``bleak`` is imported
only here, only for ``ble:`` devices (the ``[ble]`` extra); the client is injectable, so the
tests drive the whole source with a fake strap.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge_ecg.errors import ConfigError, DeviceError
from edge_ecg.stream.sources.base import Chunk, Source

log = logging.getLogger(__name__)

PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
HR_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
#: The strap's ECG rate (Hz) and the request that starts it (130 Hz, 14-bit resolution).
H10_FS = 130.0
START_ECG = bytes([0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00])
STOP_ECG = bytes([0x03, 0x00])
ECG = 0x00
#: PMD control point error codes (the answer's byte 3).
PMD_ERRORS = {1: "invalid op code", 2: "invalid measurement type", 3: "not supported", 4: "invalid length",
              5: "invalid parameter", 6: "already in state", 7: "invalid resolution", 8: "invalid sample rate",
              9: "invalid range", 10: "invalid MTU", 11: "invalid number of channels", 12: "invalid state",
              13: "device in charger"}
#: Battery percentage at or below which the strap is reported low.
BATTERY_LOW_PCT = 15


class FrameError(ValueError):
    """A PMD data frame that is not an uncompressed ECG frame of whole samples."""


@dataclass
class EcgFrame:
    """One decoded frame: ``timestamp_ns`` (of the last sample, the strap's clock) and
    ``samples_uv`` int32 ``(n,)`` in µV."""

    timestamp_ns: int
    samples_uv: np.ndarray


def decode_ecg_frame(data: bytes) -> EcgFrame:
    """A PMD ECG data frame (see the module docstring) -> :class:`EcgFrame`; :class:`FrameError` if malformed."""
    data = bytes(data)
    if len(data) < 10:
        raise FrameError(f"{len(data)} bytes: shorter than a frame header (10)")
    if data[0] != ECG:
        raise FrameError(f"measurement type {data[0]:#04x}, not ECG (0x00)")
    ftype = data[9]
    if ftype & 0x80:
        raise FrameError(f"frame type {ftype:#04x}: compressed ECG frames are not supported")
    if ftype != 0:
        raise FrameError(f"frame type {ftype:#04x}: only 0 (3-byte samples) is known for ECG")
    payload = data[10:]
    if not payload or len(payload) % 3:
        raise FrameError(f"{len(payload)} sample bytes: not a positive multiple of 3")
    b = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    v = np.where(v & 0x800000, v - (1 << 24), v).astype(np.int32)
    return EcgFrame(int.from_bytes(data[1:9], "little"), v)


def encode_ecg_frame(timestamp_ns: int, samples_uv) -> bytes:
    """The inverse of :func:`decode_ecg_frame` (a strap's frame; for tests and emulation).
    Samples are clipped to the 24-bit signed range."""
    v = np.clip(np.asarray(samples_uv, dtype=np.int64), -(1 << 23), (1 << 23) - 1) & 0xFFFFFF
    body = np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    return bytes([ECG]) + int(timestamp_ns).to_bytes(8, "little") + bytes([0]) + body


def parse_control_answer(data: bytes) -> tuple[int, int, int]:
    """``(op code, measurement type, error code)`` of a control point answer (``F0 op type error ...``)."""
    data = bytes(data)
    if len(data) < 4 or data[0] != 0xF0:
        raise FrameError(f"not a PMD control point answer: {data.hex()}")
    return data[1], data[2], data[3]


def parse_device(spec: str) -> str | None:
    """``"ble:ADDRESS"`` -> the address (upper case), ``"ble:"`` -> None (the first strap found)."""
    address = spec.split(":", 1)[1].strip()
    return address.upper() or None


def ble_error(exc: BaseException, what: str = "Bluetooth") -> DeviceError:
    """One line for a Bluetooth failure, naming the fix (no adapter, BlueZ not running, no permission)."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, ModuleNotFoundError):
        return DeviceError(f"{what}: `--device ble:` needs bleak: pip install 'edge-ecg[ble]'")
    if isinstance(exc, PermissionError) or "accessdenied" in low or "not authorized" in low or "permission" in low:
        return DeviceError(f"{what}: permission denied by the Bluetooth service (add yourself to the 'bluetooth' "
                           f"group: sudo usermod -aG bluetooth $USER, then log in again)")
    if "no bluetooth adapter" in low or "bluetoothnotavailable" in low or "no powered bluetooth" in low \
            or "adapter" in low and "not found" in low:
        return DeviceError(f"{what}: no Bluetooth adapter (plug in a USB Bluetooth dongle, or turn it on: "
                           f"bluetoothctl power on)")
    if "notready" in low or "not ready" in low or "powered off" in low:
        return DeviceError(f"{what}: the Bluetooth adapter is off (bluetoothctl power on)")
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) or "dbus" in low and "connect" in low:
        return DeviceError(f"{what}: no Bluetooth service on this machine (BlueZ's D-Bus socket is missing: "
                           f"sudo apt install bluez && sudo systemctl start bluetooth)")
    return DeviceError(f"{what}: {text}")


def _bleak():
    try:
        import bleak
    except ModuleNotFoundError as exc:
        raise ble_error(exc) from None
    return bleak


async def find_straps(timeout_s: float = 5.0, scanner=None) -> list[dict]:
    """BLE devices in range that look like ECG straps: ``[{"address", "name", "rssi", "ecg"}]``
    (``ecg``: advertises Polar's PMD service or is named "Polar H10"; heart-rate-only straps are
    listed with ``ecg`` False). ``scanner``: an object with bleak's ``BleakScanner.discover``."""
    if scanner is None:
        scanner = _bleak().BleakScanner
    found = await scanner.discover(timeout=timeout_s, return_adv=True)
    out = []
    for device, adv in found.values():
        uuids = {u.lower() for u in (getattr(adv, "service_uuids", None) or [])}
        name = getattr(adv, "local_name", None) or getattr(device, "name", None) or ""
        ecg = PMD_SERVICE in uuids or name.startswith("Polar H10")
        if ecg or HR_SERVICE in uuids or name.startswith("Polar"):
            out.append({"address": device.address, "name": name, "rssi": getattr(adv, "rssi", None), "ecg": ecg})
    return sorted(out, key=lambda d: (not d["ecg"], -(d["rssi"] or -999)))


class BleStrapSource(Source):
    """A Polar H10's ECG (see the module docstring) as chunks of ``H10_FS`` Hz in mV.

    ``address``: the strap's (``None``: the first ECG strap a scan finds). ``client_factory(address,
    disconnected_callback=...)`` makes a bleak-like client (default ``bleak.BleakClient``);
    ``scanner`` a bleak-like scanner. ``stall_s``: seconds without a frame before the strap is
    taken as lost; ``backoff_s`` .. ``max_backoff_s``: reconnection delays; ``answer_s``: how
    long the control point may take to answer; ``no_ecg_s``: how long after a successful
    start without a frame before "streams heart rate but not ECG" is said.
    """

    live = True
    device = True

    def __init__(self, address: str | None = None, client_factory=None, scanner=None, stall_s: float = 3.0,
                 backoff_s: float = 1.0, max_backoff_s: float = 10.0, answer_s: float = 5.0, no_ecg_s: float = 5.0,
                 battery_every_s: float = 60.0, battery_low_pct: int = BATTERY_LOW_PCT):
        super().__init__()
        self.address = address
        self.fs = H10_FS
        self._factory = client_factory
        self._scanner = scanner
        self.stall_s, self.backoff_s, self.max_backoff_s = float(stall_s), float(backoff_s), float(max_backoff_s)
        self.answer_s, self.no_ecg_s, self.battery_every_s = float(answer_s), float(no_ecg_s), float(battery_every_s)
        self.battery_low_pct = int(battery_low_pct)
        self.name = f"ble:{address or 'first strap'}"
        self.counters = {"frames": 0, "bad_frames": 0, "disconnects": 0, "reconnects": 0, "frame_gaps": 0,
                         "lost_samples": 0}
        self.battery: int | None = None
        self.bad_frame_reasons: dict[str, int] = {}
        self.lost_since: float | None = None
        self.disconnected_s = 0.0
        self._q: queue.Queue = queue.Queue(maxsize=512)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._last_ts: int | None = None
        self._gap_pending = False
        self._lost_wall = 0.0
        self._last_frame = 0.0
        self._warned_battery = False

    # ------------------------------------------------------------------ Source API

    def open(self, timeout_s: float = 30.0) -> None:
        """Find and connect to the strap and start its ECG now: an error (no adapter, no permission,
        no strap, a strap without ECG) is one :class:`DeviceError` line, before the stream starts."""
        if self._thread is not None:
            return
        if self._factory is None:
            bleak = _bleak()
            self._factory = bleak.BleakClient
        self._thread = threading.Thread(target=self._thread_main, name="edge-ecg-ble", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) and self._error is None:
            self.stop()
            raise DeviceError(f"{self.name}: no ECG from the strap within {timeout_s:.0f} s (is it worn? the "
                              f"electrodes need moisture and skin contact)")
        if self._error is not None:
            raise self._error

    def chunks(self) -> Iterator[Chunk]:
        self.open()
        while not self.stopped:
            try:
                chunk = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._error is not None:
                    raise self._error
                if self._thread is not None and not self._thread.is_alive():
                    return
                continue
            yield chunk

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(5.0)

    def status(self) -> str | None:
        """None while ECG flows; else what is wrong: the strap is lost and being reconnected.
        (A low battery is a warning in the log and ``battery_low`` in :meth:`stats`: the signal is fine.)"""
        if self.lost_since is not None:
            return f"strap lost (out of range?), reconnecting ({time.monotonic() - self.lost_since:.0f} s)"
        return None

    def stats(self) -> dict:
        out = dict(self.counters)
        lost = self.disconnected_s + (time.monotonic() - self.lost_since if self.lost_since is not None else 0.0)
        out["disconnected_s"] = round(lost, 2)
        if self.battery is not None:
            out["battery_pct"] = self.battery
            if self.battery <= self.battery_low_pct:
                out["battery_low"] = 1
        status = self.status()
        if status:
            out["status"] = status
        return out

    # ------------------------------------------------------------------ the BLE thread

    def _thread_main(self) -> None:
        import asyncio  # here, not at the top: a replay or a board never pays for it

        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            self._error = exc if isinstance(exc, DeviceError) else ble_error(exc, self.name)
            self._ready.set()

    async def _main(self) -> None:
        import asyncio

        if self.address is None:
            straps = [s for s in await find_straps(scanner=self._scanner or _bleak().BleakScanner) if s["ecg"]]
            if not straps:
                raise DeviceError("ble: no ECG strap in range (wear it, wet the electrodes, and check "
                                  "`edge-ecg devices`)")
            self.address = straps[0]["address"]
            self.name = f"ble:{self.address}"
            log.info("ble: taking %s (%s)", self.address, straps[0]["name"])
        delay = self.backoff_s
        first = True
        while not self.stopped:
            try:
                await self._session()
                delay = self.backoff_s
            except DeviceError:
                raise  # a strap without ECG, a refused request: no retry helps
            except Exception as exc:  # noqa: BLE001 - out of range, a failed connect
                if first and not self._ready.is_set():
                    raise ble_error(exc, self.name) from None
                log.debug("%s: %s", self.name, exc)
            first = False
            if self.stopped:
                return
            if self.lost_since is None:
                self._mark_lost()
            await asyncio.sleep(delay)
            delay = min(self.max_backoff_s, delay * 2)

    def _mark_lost(self) -> None:
        self.lost_since = time.monotonic()
        self._lost_wall = time.monotonic()
        self.counters["disconnects"] += 1
        log.warning("%s: strap lost (out of range?), reconnecting", self.name)

    async def _session(self) -> None:
        import asyncio

        gone = asyncio.Event()
        client = self._factory(self.address, disconnected_callback=lambda _c: gone.set())
        await client.connect()
        try:
            await self._check_ecg(client)
            await self._read_battery(client)
            answers: asyncio.Queue = asyncio.Queue()
            await client.start_notify(PMD_CONTROL, lambda _s, data: answers.put_nowait(bytes(data)))
            await client.start_notify(PMD_DATA, lambda _s, data: self._on_frame(bytes(data)))
            await client.write_gatt_char(PMD_CONTROL, START_ECG, response=True)
            try:
                answer = await asyncio.wait_for(answers.get(), self.answer_s)
            except asyncio.TimeoutError:
                raise DeviceError(f"{self.name}: the strap did not answer the request to start ECG") from None
            op, kind, err = parse_control_answer(answer)
            if err not in (0, 6):  # 6: already streaming (a reconnect before the strap noticed)
                raise DeviceError(f"{self.name}: the strap refused to start ECG ({PMD_ERRORS.get(err, err)})")
            if self.lost_since is not None:
                self.counters["reconnects"] += 1
                self.disconnected_s += time.monotonic() - self.lost_since
                log.warning("%s: reconnected after %.1f s; resuming", self.name, time.monotonic() - self.lost_since)
                self.lost_since = None
                self._gap_pending = True
            t_start = self._last_frame = time.monotonic()
            frames0 = self.counters["frames"]
            t_battery = time.monotonic()
            while not self.stopped and not gone.is_set():
                await asyncio.sleep(0.05)
                now = time.monotonic()
                if self.counters["frames"] == frames0 and not self._ready.is_set() and now - t_start > self.no_ecg_s:
                    raise DeviceError(f"{self.name}: the strap streams heart rate but not ECG (no ECG frames "
                                      f"{self.no_ecg_s:.0f} s after starting; an H10 needs firmware 3.0.35 or later)")
                if self.counters["frames"] > frames0 and now - self._last_frame > self.stall_s:
                    log.debug("%s: no frame for %.1f s", self.name, now - self._last_frame)
                    break
                if now - t_battery > self.battery_every_s:
                    t_battery = now
                    await self._read_battery(client)
        finally:
            try:
                if getattr(client, "is_connected", False):
                    await client.disconnect()
            except Exception:  # noqa: BLE001 - a strap already gone
                pass

    async def _check_ecg(self, client) -> None:
        services = getattr(client, "services", None)
        has_pmd = services is not None and services.get_characteristic(PMD_DATA) is not None
        if has_pmd:
            features = bytes(await client.read_gatt_char(PMD_CONTROL))
            has_pmd = not (len(features) >= 2 and features[0] == 0x0F and not features[1] & 0x01)
        if not has_pmd:
            raise DeviceError(f"{self.name}: this strap streams heart rate but not ECG (no ECG in Polar's PMD "
                              f"service): edge-ecg needs raw ECG, e.g. a Polar H10")

    async def _read_battery(self, client) -> None:
        try:
            level = bytes(await client.read_gatt_char(BATTERY_LEVEL))
        except Exception:  # noqa: BLE001 - no battery service: nothing to say
            return
        if level:
            self.battery = int(level[0])
            if self.battery <= self.battery_low_pct and not self._warned_battery:
                self._warned_battery = True
                log.warning("%s: strap battery low (%d %%): replace its CR2025 cell soon", self.name, self.battery)

    def _on_frame(self, data: bytes) -> None:
        """A notification on the data characteristic (the BLE thread): decode, time, queue."""
        arrival = time.perf_counter()
        try:
            frame = decode_ecg_frame(data)
        except FrameError as exc:
            self.counters["bad_frames"] += 1
            reason = str(exc).split(":")[0]
            self.bad_frame_reasons[reason] = self.bad_frame_reasons.get(reason, 0) + 1
            return
        self.counters["frames"] += 1
        self._last_frame = time.monotonic()
        n = frame.samples_uv.size
        gap, lost = self._gap_pending, 0
        if self._last_ts is not None:
            period = 1e9 / self.fs
            dt = frame.timestamp_ns - self._last_ts
            missing = int(round(dt / period)) - n
            if dt <= 0 or dt > 3600e9:  # the strap's clock restarted, or nonsense: a gap of unknown size
                gap = True
                if self._gap_pending:
                    lost = int(round(self.disconnected_wall() * self.fs))
            elif missing >= max(2, n // 2) or self._gap_pending:  # frames lost (on the air, or out of range)
                gap, lost = True, max(0, missing)
        self._gap_pending = False
        self._last_ts = frame.timestamp_ns
        if gap:
            self.counters["frame_gaps"] += 1
            self.counters["lost_samples"] += lost
        chunk = Chunk(frame.samples_uv.astype(np.float64) / 1000.0, self.fs, arrival, gap=gap, lost=lost, units="mV")
        try:
            self._q.put_nowait(chunk)
        except queue.Full:  # the reader is gone or stuck: ThreadedReader counts what it drops
            pass
        self._ready.set()

    def disconnected_wall(self) -> float:
        return max(0.0, time.monotonic() - self._lost_wall)


def check_ble_options(fmt: str | None, fs: float | None, column: int | None) -> None:
    """``--device ble:`` reads 130 Hz µV frames: ``--format binary``, another ``--fs`` or ``--column`` do not apply."""
    if fs is not None and abs(fs - H10_FS) > 1e-6:
        raise ConfigError(f"--fs {fs:g}: a Polar H10 streams ECG at {H10_FS:g} Hz; leave --fs out with ble:")
    if column not in (None, 0):
        raise ConfigError("--column: a strap has one ECG channel; leave --column out with ble:")
    if fmt == "binary":
        raise ConfigError("--format binary is edge-ecg's serial protocol; leave --format out with ble:")
