"""Boards: edge-ecg on an EMULATED 64-bit and 32-bit Raspberry Pi (Debian bookworm under qemu-user).

For each board a Debian bookworm root file system (``debootstrap --variant=minbase``, arm64
and armhf) is built once and cached (``~/.cache/edge-ecg/boards/<arch>``, or
``$EDGE_ECG_BOARDS``). Each run then installs this checkout's wheel into a fresh venv inside
it the way a Pi user would, offline from wheels fetched on the host with ``pip download``:

- arm64 (Raspberry Pi OS 64-bit): ``pip install "edge-ecg[edge]"`` (numpy and LiteRT aarch64 wheels);
- armhf (Raspberry Pi OS 32-bit): LiteRT has no armv7l wheel, so ``pip install edge-ecg
  "tflite-runtime==2.14.*"`` in a venv that sees Debian's ``python3-numpy``.

Inside each (``chroot``; ``/proc`` mounted, never ``/sys``: the interpreter segfaults with
it) it runs ``edge-ecg stream --replay`` of a stretch of DS2 record 200 (copied into the root
file system for the run and deleted after), ``stream --simulate`` and ``profile``, and
compares every beat's position, label and probabilities with the same commands on this
x86-64 host. Times under qemu are EMULATED: they say nothing about a real Pi's speed.

Needs root, debootstrap, qemu-user-static and binfmt-support (installed with apt-get when
missing) and the package index (for ``pip download``). Not part of ``bench.py all``:
``python tools/boards.py`` (or ``python tools/bench.py boards``) runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT

NAME = "boards"
TITLE = "Emulated Raspberry Pi (arm64, armhf)"
IN_ALL = False

SUITE = "bookworm"  # Raspberry Pi OS 12 is bookworm; debootstrap uses its default Debian mirror
#: arch -> what it stands for, the Debian packages debootstrap adds, the qemu binary.
BOARDS = {
    "arm64": {"board": "Raspberry Pi OS 64-bit (aarch64)", "include": "python3,python3-venv",
              "qemu": "qemu-aarch64-static"},
    "armhf": {"board": "Raspberry Pi OS 32-bit (armv7l)", "include": "python3,python3-venv,python3-numpy",
              "qemu": "qemu-arm-static"},
}
#: pip download's target platforms (the plain manylinux2014 tag alone misses LiteRT).
AARCH64_PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
ARMV7L_PLATFORMS = ("manylinux_2_34_armv7l", "linux_armv7l")
TFLITE_RUNTIME = "tflite-runtime==2.14.0"
RECORD = "200"  # DS2 (de Chazal's test half): ventricular bigeminy, so V as well as N beats
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
              "LANG": "C.UTF-8"}


def cache_dir() -> Path:
    """Where the root file systems are kept between runs."""
    env = os.environ.get("EDGE_ECG_BOARDS")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-ecg" / "boards"


def _log(msg: str) -> None:
    print(f"   [boards] {msg}", flush=True)


def ensure_host_tools() -> None:
    """Root, binfmt_misc mounted, and debootstrap + qemu-user-static + binfmt-support installed."""
    if os.geteuid() != 0:
        raise RuntimeError("tools/boards.py needs root (debootstrap, chroot, mount)")
    if not Path("/proc/sys/fs/binfmt_misc/status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], check=True)
    if not all(shutil.which(t) for t in ("debootstrap", "qemu-aarch64-static", "qemu-arm-static")):
        _log("installing qemu-user-static debootstrap binfmt-support with apt-get")
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "qemu-user-static", "debootstrap", "binfmt-support"],
                       check=True, capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    for qemu in ("qemu-aarch64", "qemu-arm"):
        if not Path(f"/proc/sys/fs/binfmt_misc/{qemu}").exists():
            subprocess.run(["update-binfmts", "--enable", qemu], check=False, capture_output=True)


def ensure_rootfs(arch: str) -> Path:
    """The cached root file system for ``arch``, built with debootstrap first if absent.

    Built in ``<arch>.partial`` and renamed when complete, so an interrupted build is never used."""
    done = cache_dir() / arch
    if (done / "usr" / "bin" / "python3").exists():
        return done
    partial = cache_dir() / f"{arch}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    _log(f"debootstrap {SUITE} {arch} into {partial} (a few minutes)")
    t0 = time.perf_counter()
    subprocess.run(["debootstrap", f"--arch={arch}", "--variant=minbase", f"--include={BOARDS[arch]['include']}",
                    SUITE, str(partial)], check=True, capture_output=True)
    partial.rename(done)
    _log(f"{arch} root file system built in {time.perf_counter() - t0:.0f} s")
    return done


def _requirements_of(wheel: Path, skip: tuple[str, ...]) -> list[str]:
    """The wheel's base (no extra) requirements for CPython 3.11, less the names in ``skip``."""
    import zipfile

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    env = {"python_version": "3.11", "python_full_version": "3.11.2", "extra": ""}
    reqs = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.name not in skip and (req.marker is None or req.marker.evaluate(env)):
                reqs.append(str(req).split(";")[0].strip())
    return reqs


def download_wheels(arch: str, wheel: Path, dest: Path) -> list[str]:
    """Fetch on the host the wheels the board installs offline into ``dest``; the pip install
    arguments to use inside the board."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dest)
    base = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "311",
            "-d", str(dest)]
    if arch == "arm64":
        plats = [a for p in AARCH64_PLATFORMS for a in ("--platform", p)]
        subprocess.run([*base, *plats, f"{wheel}[edge]"], check=True, capture_output=True, text=True)
        return ["edge-ecg[edge]"]
    plats = [a for p in ARMV7L_PLATFORMS for a in ("--platform", p)]
    # numpy comes from Debian (python3-numpy): no numpy armv7l wheel exists on PyPI
    subprocess.run([*base, *plats, "--no-deps", TFLITE_RUNTIME], check=True, capture_output=True, text=True)
    subprocess.run([*base, *plats, *_requirements_of(wheel, skip=("numpy",))], check=True, capture_output=True,
                   text=True)
    return ["edge-ecg", TFLITE_RUNTIME]


def in_board(rootfs: Path, command: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run a shell ``command`` inside the board's root file system (chroot, a clean environment)."""
    return subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", command], env=CHROOT_ENV, capture_output=True,
                          text=True, timeout=timeout)


def _checked(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def _stream_args(run_dir: str, seconds: float) -> dict[str, list[str]]:
    """The two stream runs, by name, with ``run_dir`` holding the record and taking the outputs."""
    common = ["--speed", "0", "--duration", f"{seconds:g}", "--view", "none"]
    return {
        "replay": ["stream", "--replay", f"{run_dir}/{RECORD}", *common, "--jsonl", f"{run_dir}/replay.jsonl",
                   "--summary-json", f"{run_dir}/replay.json"],
        "simulate": ["stream", "--simulate", *common, "--jsonl", f"{run_dir}/simulate.jsonl",
                     "--summary-json", f"{run_dir}/simulate.json"],
    }


def _read_run(run_dir: Path, name: str) -> dict:
    from edge_ecg.stream.events import read_events

    _, beats = read_events(run_dir / f"{name}.jsonl")
    return {"summary": json.loads((run_dir / f"{name}.json").read_text()), "beats": beats}


def compare_beats(ref: list[dict], got: list[dict]) -> dict:
    """Beat-by-beat agreement of a board's run with the host's: same samples, labels, probabilities."""
    same_samples = [b["sample"] for b in ref] == [b["sample"] for b in got]
    pairs = list(zip(ref, got))
    differ = sum(a["label"] != b["label"] for a, b in pairs) + abs(len(ref) - len(got))
    dprob = max((abs(a["probs"][k] - b["probs"][k]) for a, b in pairs for k in a["probs"]), default=0.0)
    return {"beats_host": len(ref), "beats_board": len(got), "same_beat_samples": same_samples,
            "labels_differing": differ, "identical": same_samples and differ == 0,
            "max_abs_prob_difference": round(dprob, 6)}


def _timing(summary: dict) -> dict:
    beats = max(summary["classified"], 1)
    return {"stream_s": summary["stream_s"], "wall_s": summary["wall_s"], "cpu_s": summary["cpu_s"],
            "cpu_ms_per_beat": round(1000.0 * summary["cpu_s"] / beats, 2), "x_realtime": summary["x_realtime"],
            "runtime": summary.get("runtime")}


def run_host(mitdb: Path, seconds: float, work: Path) -> dict:
    """The reference: the same runs on this host, from the checkout, with its interpreter."""
    work.mkdir(parents=True)
    for ext in ("dat", "hea", "atr"):
        shutil.copy2(mitdb / f"{RECORD}.{ext}", work)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = {}
    for name, args in _stream_args(str(work), seconds).items():
        _checked(subprocess.run([sys.executable, "-m", "edge_ecg", *args], env=env, capture_output=True, text=True,
                                cwd=work), f"host stream {name}")
        out[name] = _read_run(work, name)
    return out


def run_board(arch: str, wheel: Path, mitdb: Path, seconds: float, runs: int, host: dict, tmp: Path) -> dict:
    """Install the wheel into a fresh venv in ``arch``'s root file system and run the three commands."""
    rootfs = ensure_rootfs(arch)
    run_dir = rootfs / "tmp" / "edge-ecg-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    pip_args = download_wheels(arch, wheel, run_dir / "wheels")
    for ext in ("dat", "hea", "atr"):
        shutil.copy2(mitdb / f"{RECORD}.{ext}", run_dir)
    proc_mount = rootfs / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc_mount)], check=True)
    try:
        system_site = " --system-site-packages" if arch == "armhf" else ""
        t0 = time.perf_counter()
        _checked(in_board(rootfs, f"rm -rf /opt/edge-ecg && python3 -m venv{system_site} /opt/edge-ecg && "
                                  f"/opt/edge-ecg/bin/pip install -q --no-index --find-links /tmp/edge-ecg-run/wheels "
                                  + " ".join(f"'{a}'" for a in pip_args)), f"{arch}: pip install")
        install_s = time.perf_counter() - t0
        info = _checked(in_board(rootfs, "uname -m; python3 --version; /opt/edge-ecg/bin/pip list --format=freeze"),
                        f"{arch}: pip list").stdout.split()
        result = {"board": BOARDS[arch]["board"], "uname_m": info[0], "python": info[2],
                  "pip_install": " ".join(["pip install", *pip_args]), "install_s": round(install_s, 1),
                  "packages": sorted(p for p in info[3:] if p.split("==")[0].lower() in
                                     ("edge-ecg", "numpy", "ai-edge-litert", "tflite-runtime"))}
        for name, args in _stream_args("/tmp/edge-ecg-run", seconds).items():
            _checked(in_board(rootfs, "cd /tmp && /opt/edge-ecg/bin/edge-ecg " + " ".join(args)), f"{arch}: {name}")
            got = _read_run(run_dir, name)
            result[name] = {**compare_beats(host[name]["beats"], got["beats"]), **_timing(got["summary"]),
                            "host": _timing(host[name]["summary"])}
        prof = _checked(in_board(rootfs, f"cd /tmp && /opt/edge-ecg/bin/edge-ecg profile --runs {runs} --json"),
                        f"{arch}: profile")
        p = json.loads(prof.stdout)
        result["profile"] = {"runtime": p["runtime"], "latency_ms": p["latency_ms"], "load_ms": p["load_ms"],
                             "runs": p["runs"], "model": Path(p["model"]).name}
    finally:
        subprocess.run(["umount", str(proc_mount)], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)  # the record's copy and the wheels never stay in the cache
    return result


def run(ctx) -> dict:
    from benchmarks.install import build_wheel

    seconds = 60.0 if ctx.quick else 300.0
    runs = 200 if ctx.quick else 1000
    arches = [a for a in os.environ.get("EDGE_ECG_BOARD_ARCHES", ",".join(BOARDS)).split(",") if a]
    ensure_host_tools()
    with tempfile.TemporaryDirectory(prefix="edge-ecg-boards-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(ROOT, tmp / "wheel")
        host = run_host(ctx.mitdb, seconds, tmp / "host")
        host_prof = json.loads(_checked(subprocess.run(
            [sys.executable, "-m", "edge_ecg", "profile", "--runs", str(runs), "--json"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True), "host profile").stdout)
        boards = {}
        for arch in arches:
            _log(f"{arch}: install and run")
            boards[arch] = run_board(arch, wheel, ctx.mitdb, seconds, runs, host, tmp)
    return {"record": RECORD, "seconds": seconds, "suite": SUITE,
            "host": {"profile_latency_ms": host_prof["latency_ms"], "runtime": host_prof["runtime"]},
            "boards": boards}


def render(result: dict) -> str:
    lines = [
        f"Debian {result['suite']} root file systems run under qemu-user on the x86-64 machine below. "
        "**All times here are EMULATED** (qemu translating ARM code): they show that the code runs and how it "
        "compares between the two boards, not how fast a real Raspberry Pi is.", "",
        f"Runs: `stream --replay` of the first {result['seconds']:g} s of DS2 record {result['record']}, "
        f"`stream --simulate` for {result['seconds']:g} s (both `--speed 0`), and `profile`. \"Same as x86-64\" "
        "compares every beat's sample and label with the same commands on the host.", "",
        "| board | installed with | runtime | replay: beats, same as x86-64 | simulate: beats, same as x86-64 | "
        "max prob. difference | profile p50 / p99 per beat (EMULATED) | stream CPU per beat (EMULATED) |",
        "|---|---|---|---|---|---:|---:|---:|",
    ]
    for arch, b in result["boards"].items():
        r, s, p = b["replay"], b["simulate"], b["profile"]
        same = lambda x: "identical" if x["identical"] else f"**{x['labels_differing']} differ**"  # noqa: E731
        lines.append(
            f"| {arch}: {b['board']}, `uname -m` {b['uname_m']}, Python {b['python']} | `{b['pip_install']}` "
            f"({', '.join(b['packages'])}) | {p['runtime']} | {r['beats_board']}, {same(r)} | "
            f"{s['beats_board']}, {same(s)} | {max(r['max_abs_prob_difference'], s['max_abs_prob_difference']):.4f} | "
            f"{p['latency_ms']['p50']:.2f} / {p['latency_ms']['p99']:.2f} ms | {r['cpu_ms_per_beat']:.2f} ms |")
    h = result["host"]
    host_cpu = next(iter(result["boards"].values()))["replay"]["host"]["cpu_ms_per_beat"] if result["boards"] else 0
    lines.append(f"| x86-64 host (native) | the checkout | {h['runtime']} | | | | "
                 f"{h['profile_latency_ms']['p50']:.2f} / {h['profile_latency_ms']['p99']:.2f} ms | {host_cpu:.2f} ms |")
    same = [a for a, b in result["boards"].items() if b["replay"]["identical"] and b["simulate"]["identical"]]
    diffs = "; ".join(f"{a} ({b['profile']['runtime']}) up to "
                      f"{max(b['replay']['max_abs_prob_difference'], b['simulate']['max_abs_prob_difference']):.4f}"
                      for a, b in result["boards"].items())
    lines += ["", f"Beat positions and labels identical to x86-64 on: {', '.join(same) or 'none'}. Class "
              f"probabilities (int8 outputs, steps of 1/256) differ from the host's by: {diffs}.",
              "The host row was measured in the same run: its p99 against its p50 shows how busy the shared "
              "machine was. The record's files are copied into the root file system for the run and deleted after.",
              "", "Re-run (as root; the root file systems are cached in `~/.cache/edge-ecg/boards`): "
              "`python tools/boards.py`."]
    return "\n".join(lines)
