"""Install: what `pip install "edge-ecg[edge]"` puts on a board, and what its stream costs there.

For the checkout and for a baseline commit (the last one before the device install was
trimmed), each built as a wheel and installed with ``[edge]`` into a fresh venv, the way a
Raspberry Pi user installs it:

- the size of the venv's site-packages (bytes of the installed files), in all and per
  distribution (pip and setuptools, which every venv gets, counted apart);
- whether ``edge-ecg stream --simulate`` finds the shipped model run from a folder outside
  the checkout;
- the peak resident memory (``VmHWM``) of ``stream --simulate`` and ``stream --replay`` run
  from that venv (the baseline is given ``--model``, its wheel ships none).

The helpers (:func:`build_wheel`, :func:`make_venv`, :func:`edge_ecg_in`) are shared with
``tools/boards.py`` and the wheel test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import ROOT

NAME = "install"
TITLE = "Device install (`pip install \"edge-ecg[edge]\"`)"
#: Not part of `bench.py all`: it builds venvs from the package index (`bench.py install` runs it).
IN_ALL = False

#: The last commit before issue 18 (scipy, wfdb, tqdm in the base dependencies; no packaged model).
BASELINE_COMMIT = "0d748a5"
#: What every fresh venv holds before anything is installed: not counted as edge-ecg's weight.
VENV_SEED = ("pip", "setuptools", "wheel")

#: Runs ``edge-ecg ARGS`` and prints, last, its peak RSS and which heavy modules it imported.
_PROBE = r"""
import json, sys
from edge_ecg.cli import main
code = 0
try:
    main(sys.argv[1:], prog_name="edge-ecg")
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ("tensorflow", "scipy", "wfdb", "pandas", "matplotlib") if m in sys.modules]
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print("PROBE=" + json.dumps({"vmhwm_kb": int(hwm), "heavy_imported": heavy}))
sys.exit(code)
"""

_SIZES = r"""
import json, os
from importlib import metadata
sizes = {}
for dist in metadata.distributions():
    total = 0
    for f in dist.files or ():
        p = dist.locate_file(f)
        if os.path.isfile(p):
            total += os.path.getsize(p)
    sizes[dist.metadata["Name"]] = total
print(json.dumps(sizes))
"""


def build_wheel(source: Path, dest: Path) -> Path:
    """Build the pure-Python wheel of the project at ``source`` into ``dest`` (``pip wheel --no-deps``)."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("edge_ecg-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(source)],
                   check=True, capture_output=True, text=True)
    made = sorted(set(dest.glob("edge_ecg-*.whl")) - before) or sorted(dest.glob("edge_ecg-*.whl"))
    return made[-1]


def export_commit(commit: str, dest: Path) -> Path:
    """The repository's tree at ``commit`` written to ``dest`` (``git archive``), to build it."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def make_venv(where: Path, requirement: str, timeout: float = 900, base_python: str = sys.executable) -> Path:
    """A fresh venv at ``where`` made by ``base_python`` with ``requirement`` pip-installed; its ``python``.

    Raises :class:`RuntimeError` with pip's last lines when the install fails (no index reachable)."""
    subprocess.run([base_python, "-m", "venv", str(where)], check=True, capture_output=True, env=clean_env())
    python = where / "bin" / "python"
    # without PYTHONPATH: a checkout on it (with its .egg-info) would pass for edge-ecg already installed
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], capture_output=True, text=True,
                          timeout=timeout, env=clean_env())
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {requirement} failed: {proc.stderr.strip()[-800:]}")
    return python


def clean_env() -> dict:
    """This process's environment without what would point an installed edge-ecg back at the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGE_ECG_MODELS", "VIRTUAL_ENV")}


def edge_ecg_in(python: Path, args: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``edge-ecg ARGS`` with the venv's ``python`` from ``cwd``; the last stdout line is
    ``PROBE={"vmhwm_kb": peak RSS in kB, "heavy_imported": [modules]}``."""
    return subprocess.run([str(python), "-c", _PROBE, *map(str, args)], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def _peak_rss(proc: subprocess.CompletedProcess) -> dict:
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE=")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"stream failed: {proc.stderr.strip()[-500:]}")
    probe = json.loads(line[-1].split("=", 1)[1])
    return {"peak_rss_mb": round(probe["vmhwm_kb"] / 1024.0, 1), "heavy_imported": probe["heavy_imported"]}


def measure_install(wheel: Path, work: Path, mitdb: Path, seconds: float, model: Path | None) -> dict:
    """Install ``wheel[edge]`` into a fresh venv under ``work`` and measure it (see the module doc)."""
    python = make_venv(work / "venv", f"{wheel}[edge]")
    sizes = json.loads(subprocess.run([str(python), "-c", _SIZES], check=True, capture_output=True,
                                      text=True).stdout)
    seed = sum(v for k, v in sizes.items() if k.lower() in VENV_SEED)
    outside = work / "elsewhere"
    outside.mkdir()
    demo = edge_ecg_in(python, ["stream", "--simulate", "--speed", "0", "--duration", "20", "--view", "none"],
                       outside)
    errors = [ln for ln in demo.stderr.splitlines() if ln.startswith("Error:")]
    model_args = ["--model", str(model)] if model is not None else []
    runs = []
    for args in (["--simulate"], ["--replay", str(mitdb / "100")]):
        full = ["stream", *args, "--speed", "0", "--duration", f"{seconds:g}", "--view", "none", *model_args]
        shown = ["stream", args[0], *[f"mitdb/{Path(a).name}" for a in args[1:]], "--speed", "0", "--duration",
                 f"{seconds:g}"]
        runs.append({"args": " ".join(shown), **_peak_rss(edge_ecg_in(python, full, outside))})
    return {
        "wheel": wheel.name,
        "site_packages_mb": round(sum(sizes.values()) / 1e6, 1),
        "without_venv_seed_mb": round((sum(sizes.values()) - seed) / 1e6, 1),
        "distributions_mb": {k: round(v / 1e6, 2) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])},
        "demo_without_model_option": "ok" if demo.returncode == 0 else (errors[-1] if errors else "failed"),
        "stream_runs": runs,
    }


def run(ctx) -> dict:
    seconds = 60.0 if ctx.quick else 600.0
    with tempfile.TemporaryDirectory(prefix="edge-ecg-install-") as tmp:
        tmp = Path(tmp)
        after_wheel = build_wheel(ROOT, tmp / "wheels" / "after")
        before_wheel = build_wheel(export_commit(BASELINE_COMMIT, tmp / "baseline"), tmp / "wheels" / "before")
        after = measure_install(after_wheel, tmp / "after", ctx.mitdb, seconds, model=None)
        before = measure_install(before_wheel, tmp / "before", ctx.mitdb, seconds,
                                 model=ROOT / "models" / "edge_ecg_int8.tflite")
    return {"baseline_commit": BASELINE_COMMIT, "seconds": seconds, "before": before, "after": after}


def render(result: dict) -> str:
    b, a = result["before"], result["after"]
    lines = [
        f"A fresh venv, `pip install \"<wheel>[edge]\"`, run from a folder outside the checkout. Before: commit "
        f"`{result['baseline_commit']}` (scipy, wfdb and tqdm in the base dependencies, no model in the wheel); "
        "after: this commit.", "",
        "| | before | after |", "|---|---:|---:|",
        f"| site-packages, all files | {b['site_packages_mb']:.1f} MB | {a['site_packages_mb']:.1f} MB |",
        f"| of which not pip/setuptools (what `[edge]` brings) | {b['without_venv_seed_mb']:.1f} MB | "
        f"{a['without_venv_seed_mb']:.1f} MB |",
        f"| `edge-ecg stream --simulate` with no `--model` | {b['demo_without_model_option']} | "
        f"{a['demo_without_model_option']} |",
    ]
    for rb, ra in zip(b["stream_runs"], a["stream_runs"]):
        lines.append(f"| peak RSS, `{ra['args']}` | {rb['peak_rss_mb']:.1f} MB | {ra['peak_rss_mb']:.1f} MB |")
    top = lambda r: ", ".join(f"{k} {v:.0f}" for k, v in  # noqa: E731
                              sorted(r["distributions_mb"].items(), key=lambda kv: -kv[1])[:8])
    heavy = sorted({m for r in b["stream_runs"] + a["stream_runs"] for m in r["heavy_imported"]})
    lines += ["", f"Largest distributions, MB. Before: {top(b)}. After: {top(a)}.", "",
              "Heavy modules the streams imported, before or after: " + (", ".join(heavy) or "none") + "."]
    return "\n".join(lines)
