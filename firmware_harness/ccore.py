"""Building the firmware C core on this machine and calling it from Python (ctypes).

:func:`build_core` runs ``make`` in ``firmware_harness/c`` (incremental, under a file lock
so two processes do not build at once) and :func:`load_core` returns a :class:`CCore` whose
methods call the compiled C functions. :class:`CStreamEncoder` is the C framer with the
interface of :class:`edge_ecg.stream.protocol.StreamEncoder`.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edge_ecg.errors import EdgeEcgError
from edge_ecg.stream.protocol import Header

C_DIR = Path(__file__).resolve().parent / "c"
LIBRARY_NAME = "libecgcore.so"


class BuildError(EdgeEcgError):
    """The C core could not be built (no compiler, or the build failed)."""


def missing_toolchain() -> str | None:
    """Why the C core cannot be built here (e.g. "no C compiler 'cc' on PATH"), or None."""
    cc = os.environ.get("CC", "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler {cc!r} on PATH (set $CC or install gcc/clang)"
    if shutil.which("make") is None:
        return "no 'make' on PATH"
    return None


def default_build_dir() -> Path:
    """``firmware_harness/build`` when writable, else a folder in the per-user cache."""
    local = Path(__file__).resolve().parent / "build"
    try:
        local.mkdir(exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    from edge_ecg.records.locate import cache_dir

    return cache_dir() / "firmware_build"


def build_core(build_dir: str | Path | None = None, target: str = "all") -> Path:
    """Build the C core with ``make`` into ``build_dir``; returns the folder.

    ``target`` is a Makefile target (``all``, ``test``, ``sanitize``). Raises
    :class:`BuildError` with the compiler's last lines when it fails.
    """
    reason = missing_toolchain()
    if reason:
        raise BuildError(f"cannot build the firmware C core: {reason}")
    build_dir = Path(build_dir) if build_dir is not None else default_build_dir()
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            ["make", "--no-print-directory", "-C", str(C_DIR), f"BUILD_DIR={build_dir}", target],
            capture_output=True, text=True,
        )
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise BuildError(f"building the firmware C core in {build_dir} failed: {tail}")
    return build_dir


class CCore:
    """The compiled C core (``libecgcore.so``) with typed wrappers around its functions."""

    def __init__(self, library: str | Path):
        self.path = Path(library)
        lib = ctypes.CDLL(str(self.path))
        u8p = ctypes.POINTER(ctypes.c_uint8)
        i16p = ctypes.POINTER(ctypes.c_int16)
        size_t, u8, u16, u32, i16 = ctypes.c_size_t, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int16
        header_args = [u32, u32, i16, u8, u8, u8, u16, u32]
        sigs = {
            "ecg_crc16": (u16, [u8p, size_t]),
            "ecg_encode_data": (size_t, [u16, u8, i16p, u8, u8, u8p, size_t]),
            "ecg_host_encode_header": (size_t, header_args + [u8p, size_t]),
            "ecg_host_framer_size": (size_t, []),
            "ecg_host_framer_out_max": (size_t, []),
            "ecg_host_max_channels": (ctypes.c_uint, []),
            "ecg_host_max_frame_samples": (ctypes.c_uint, []),
            "ecg_host_framer_init": (ctypes.c_int, [ctypes.c_void_p] + header_args + [u32, u16]),
            "ecg_host_framer_push_block": (size_t, [ctypes.c_void_p, i16p, u8p, size_t, u8p, size_t]),
            "ecg_host_framer_flush": (size_t, [ctypes.c_void_p, u8p, size_t]),
            "ecg_host_framer_seq": (u16, [ctypes.c_void_p]),
            "ecg_host_framer_resend_header": (None, [ctypes.c_void_p]),
        }
        for name, (restype, argtypes) in sigs.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        self.lib = lib
        self.framer_out_max = int(lib.ecg_host_framer_out_max())
        self.max_channels = int(lib.ecg_host_max_channels())
        self.max_frame_samples = int(lib.ecg_host_max_frame_samples())

    @staticmethod
    def _u8(buf) -> ctypes.POINTER(ctypes.c_uint8):
        return ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8))

    def crc16(self, data: bytes) -> int:
        """CRC-16/CCITT-FALSE of ``data`` computed by the C core."""
        buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        return int(self.lib.ecg_crc16(self._u8(buf), len(data)))

    def encode_header(self, header: Header) -> bytes:
        """The C core's header frame for ``header``."""
        out = ctypes.create_string_buffer(64)
        n = self.lib.ecg_host_encode_header(*self._header_args(header), self._u8(out), len(out))
        if n == 0:
            raise ValueError(f"the C encoder rejected {header}")
        return out.raw[:n]

    def encode_data(self, seq: int, samples, channels: int = 1, flags: int = 0) -> bytes:
        """The C core's data frame: ``samples`` int16 ``(n * channels,)`` interleaved, or ``(n, channels)``."""
        arr = np.ascontiguousarray(np.asarray(samples).reshape(-1), dtype=np.int16)
        n = arr.size // max(channels, 1)
        if not 1 <= n <= 255 or n * channels != arr.size:
            raise ValueError(f"{arr.size} samples do not make 1..255 sample sets of {channels} channels")
        out = ctypes.create_string_buffer(1024)
        ptr = arr.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        size = self.lib.ecg_encode_data(seq & 0xFFFF, flags & 0xFF, ptr, n, channels,
                                        self._u8(out), len(out))
        if size == 0:
            raise ValueError(f"the C encoder rejected a data frame of {n} x {channels} samples")
        return out.raw[:size]

    @staticmethod
    def _header_args(h: Header) -> list[int]:
        return [h.fs_millihz, h.gain_milli, h.baseline, h.channels, h.samples_per_frame, h.adc_bits,
                h.firmware_version, h.device_id]


class CStreamEncoder:
    """The C framer (``ecg_framer_*``): samples in, frames out, like on the board.

    Same interface as :class:`edge_ecg.stream.protocol.StreamEncoder`: ``header_every`` in
    samples (default ``round(header.fs)``, one second), ``first_seq``.
    """

    def __init__(self, core: CCore, header: Header, header_every: int | None = None, first_seq: int = 0):
        self.core, self.header = core, header
        self.header_every = round(header.fs) if header_every is None else int(header_every)
        self._mem = ctypes.create_string_buffer(int(core.lib.ecg_host_framer_size()))
        rc = core.lib.ecg_host_framer_init(self._mem, *core._header_args(header), self.header_every,
                                           int(first_seq) & 0xFFFF)
        if rc != 0:
            raise ValueError(
                f"the C framer rejected {header} (code {rc}; this build allows {core.max_channels} channels "
                f"and {core.max_frame_samples} samples per frame)"
            )

    @property
    def seq(self) -> int:
        """Sequence number of the next data frame."""
        return int(self.core.lib.ecg_host_framer_seq(self._mem))

    def push_block(self, samples, flags=None) -> bytes:
        """Add ``samples`` ``(n,)`` or ``(n, channels)`` ADC counts (+ per-sample flags); returns frames completed."""
        arr = np.asarray(samples)
        n = len(arr)
        values = np.ascontiguousarray(arr.reshape(n, -1), dtype=np.int16)
        if values.shape[1] != self.header.channels:
            raise ValueError(f"expected {self.header.channels} values per sample, got {values.shape[1]}")
        fl = np.zeros(n, dtype=np.uint8) if flags is None else np.ascontiguousarray(flags, dtype=np.uint8)
        cap = (n // self.header.samples_per_frame + 2) * self.core.framer_out_max
        out = ctypes.create_string_buffer(cap)
        size = self.core.lib.ecg_host_framer_push_block(
            self._mem, values.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            fl.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), n, CCore._u8(out), cap,
        )
        if size == ctypes.c_size_t(-1).value:
            raise RuntimeError("output buffer too small for the C framer")
        return out.raw[:size]

    def push(self, values, flags: int = 0) -> bytes:
        """Add one sample set (``channels`` ADC counts)."""
        return self.push_block(np.asarray(values).reshape(1, -1), [flags])

    def flush(self) -> bytes:
        """Frame the pending samples now (a short last frame); b"" if none."""
        out = ctypes.create_string_buffer(self.core.framer_out_max)
        size = self.core.lib.ecg_host_framer_flush(self._mem, CCore._u8(out), len(out))
        return out.raw[:size]

    def resend_header(self) -> None:
        """Emit a header before the next data frame."""
        self.core.lib.ecg_host_framer_resend_header(self._mem)


_CORES: dict[Path, CCore] = {}


def load_core(build_dir: str | Path | None = None) -> CCore:
    """Build (if needed) and load the C core; cached per build folder. Raises :class:`BuildError`."""
    folder = build_core(build_dir)
    key = folder.resolve()
    if key not in _CORES:
        _CORES[key] = CCore(folder / LIBRARY_NAME)
    return _CORES[key]
