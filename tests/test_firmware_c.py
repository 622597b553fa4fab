"""The firmware C core, built here with the machine's C compiler.

Runs the C unit tests (firmware_harness/c/test_core.c, one pytest test per C test), holds the
compiled encoder to the same byte vectors as the Python one, checks that the core uses no
heap, and compile-checks the Arduino Uno port when avr-gcc is installed. Everything skips
with the reason when there is no compiler or make.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_ecg.stream import protocol as P
from firmware_harness import ccore

ROOT = Path(__file__).resolve().parents[1]
VECTORS = json.loads((ROOT / "firmware_harness" / "vectors" / "protocol_v1.json").read_text())
MISSING = ccore.missing_toolchain()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"firmware C tests need a C compiler and make: {MISSING}")

# Every test in test_core.c; test_runner_runs_exactly_these_tests fails if one is added there only.
C_TESTS = [
    "crc16_check_value",
    "crc16_empty_and_incremental",
    "header_frame_layout",
    "data_frame_layout",
    "data_frame_rejects_bad_sizes",
    "encode_small_buffer_returns_zero",
    "framer_header_first_and_periodic",
    "framer_sequence_wraps",
    "framer_lead_off_flag_per_frame",
    "framer_overflow_flag",
    "framer_flush_partial",
    "framer_small_buffer_drops_frame",
    "framer_init_rejects_bad_config",
    "ring_fifo_order",
    "ring_overflow_counted_not_corrupting",
    "ring_index_wraparound",
    "ring_interleaved_producer_consumer",
]


def parse_runner(output: str) -> dict[str, str | None]:
    """``{test name: None if ok else the failure text}`` from test_core's output."""
    results: dict[str, str | None] = {}
    for line in output.splitlines():
        m = re.match(r"^(ok|not ok) (\w+)(?:: (.*))?$", line)
        if m:
            results[m.group(2)] = None if m.group(1) == "ok" else (m.group(3) or "failed")
    return results


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    return ccore.build_core(tmp_path_factory.mktemp("firmware_build"))


@pytest.fixture(scope="module")
def runner(build_dir) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([str(build_dir / "test_core")], capture_output=True, text=True, timeout=120)
    return proc, parse_runner(proc.stdout)


@pytest.fixture(scope="module")
def core(build_dir) -> ccore.CCore:
    return ccore.CCore(build_dir / ccore.LIBRARY_NAME)


@pytest.mark.parametrize("name", C_TESTS)
def test_c_unit(runner, name):
    _, results = runner
    assert name in results, f"test_core did not run {name}"
    assert results[name] is None, f"C test {name} failed: {results[name]}"


def test_runner_runs_exactly_these_tests(runner):
    proc, results = runner
    assert sorted(results) == sorted(C_TESTS)
    assert f"{len(C_TESTS)} passed, 0 failed" in proc.stdout
    assert proc.returncode == 0


def test_parse_runner_sees_failures():
    out = "ok a\nnot ok b: test_core.c:12: x == 1 (1 failed checks)\n1 passed, 1 failed\n"
    assert parse_runner(out) == {"a": None, "b": "test_core.c:12: x == 1 (1 failed checks)"}


def test_build_is_incremental_and_warning_free(build_dir):
    proc = subprocess.run(["make", "-C", str(ccore.C_DIR), f"BUILD_DIR={build_dir}", "all"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert "warning" not in (proc.stdout + proc.stderr).lower()
    assert "Nothing to be done" in proc.stdout  # nothing recompiled the second time


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils) to list undefined symbols")
def test_core_uses_no_heap_and_no_libc(build_dir):
    objects = [build_dir / f"{name}.o" for name in ("ecg_crc16", "ecg_ring", "ecg_frame")]
    out = subprocess.run(["nm", "-u", *map(str, objects)], capture_output=True, text=True, check=True).stdout
    undefined = {line.split()[-1] for line in out.splitlines() if line.strip() and not line.endswith(":")}
    assert undefined <= {"ecg_crc16"}, f"the core calls outside itself: {sorted(undefined)}"


@pytest.mark.parametrize("vec", VECTORS["crc_vectors"], ids=lambda v: v["name"])
def test_c_crc_matches_vectors(core, vec):
    assert core.crc16(bytes.fromhex(vec["hex"])) == vec["crc"]


@pytest.mark.parametrize("vec", VECTORS["header_frames"], ids=lambda v: v["name"])
def test_c_header_matches_vectors(core, vec):
    assert core.encode_header(P.Header(**vec["fields"])).hex() == vec["hex"]


@pytest.mark.parametrize("vec", VECTORS["data_frames"], ids=lambda v: v["name"])
def test_c_data_matches_vectors(core, vec):
    frame = core.encode_data(vec["seq"], vec["samples"], vec["channels"], flags=vec["flags"])
    assert frame.hex() == vec["hex"]


@pytest.mark.parametrize("vec", VECTORS["framer_streams"], ids=lambda v: v["name"])
def test_c_framer_matches_vectors(core, vec):
    enc = ccore.CStreamEncoder(core, P.Header(**vec["header"]), header_every=vec["header_every"],
                               first_seq=vec["first_seq"])
    data = enc.push_block(np.array(vec["samples"]), vec["flags"])
    if vec["flush"]:
        data += enc.flush()
    assert data.hex() == vec["hex"]


@pytest.mark.parametrize("channels,spf,header_every", [(1, 10, 360), (3, 16, 500), (8, 31, 0), (1, 1, 7)])
def test_c_and_python_framers_agree_on_long_random_streams(core, channels, spf, header_every):
    rng = np.random.default_rng(channels * 100 + spf)
    n = 70_000 // channels
    samples = rng.integers(-32768, 32768, size=(n, channels))
    flags = rng.choice([0, 0, 0, 0, P.FLAG_LEAD_OFF, P.FLAG_OVERFLOW], size=n)
    header = P.header_from_values(360.0, 200.0, channels=channels, baseline=-3, samples_per_frame=spf,
                                  device_id=0xDEADBEEF)
    c_enc = ccore.CStreamEncoder(core, header, header_every=header_every, first_seq=60_000)
    py_enc = P.StreamEncoder(header, header_every=header_every, first_seq=60_000)
    c_out, py_out = [], []
    for chunk in np.array_split(np.arange(n), 37):  # uneven pushes
        c_out.append(c_enc.push_block(samples[chunk], flags[chunk]))
        py_out.append(py_enc.push_block(samples[chunk], flags[chunk]))
    c_bytes, py_bytes = b"".join(c_out) + c_enc.flush(), b"".join(py_out) + py_enc.flush()
    assert c_bytes == py_bytes
    assert c_enc.seq == py_enc.seq == (60_000 + -(-n // spf)) & 0xFFFF
    frames = P.FrameDecoder().feed(c_bytes)
    decoded = np.concatenate([f.samples for f in frames if isinstance(f, P.DataFrame)])
    assert np.array_equal(decoded, samples)


def test_c_framer_rejects_what_the_build_cannot_hold(core):
    header = P.Header(360000, 200000, 0, core.max_channels + 1, 4, 12)
    with pytest.raises(ValueError, match="rejected"):
        ccore.CStreamEncoder(core, header)


def _sanitizers_link(tmp_path: Path) -> bool:
    src = tmp_path / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    cc = os.environ.get("CC", "cc")
    proc = subprocess.run([cc, "-fsanitize=address,undefined", str(src), "-o", str(tmp_path / "probe")],
                          capture_output=True, text=True)
    return proc.returncode == 0


@pytest.mark.slow
def test_c_unit_tests_pass_under_asan_and_ubsan(build_dir, tmp_path):
    if not _sanitizers_link(tmp_path):
        pytest.skip("this C compiler cannot link -fsanitize=address,undefined")
    ccore.build_core(build_dir, target="sanitize")  # raises BuildError (test fails) if a C test fails


AVR_DIR = ROOT / "firmware_harness" / "board" / "avr_uno"


@pytest.mark.skipif(shutil.which("avr-gcc") is None,
                    reason="avr-gcc not installed (apt-get install gcc-avr avr-libc) - Uno port not compile-checked")
@pytest.mark.parametrize("options", [[], ["FS_HZ=250", "AREF_3V3=1"]], ids=["360hz_avcc", "250hz_aref3v3"])
def test_uno_port_compiles_and_fits(tmp_path, options):
    proc = subprocess.run(["make", "-C", str(AVR_DIR), f"BUILD_DIR={tmp_path}", *options], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "ecg_board.hex").stat().st_size > 0
    if shutil.which("avr-size"):
        out = subprocess.run(["avr-size", str(tmp_path / "ecg_board.elf")], capture_output=True, text=True).stdout
        text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
        assert text + data < 32 * 1024 - 512  # flash minus the Optiboot bootloader
        assert data + bss < 1024  # leave half of the 2 KiB RAM for the stack
