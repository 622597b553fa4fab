"""Compiling the int8 model for a Coral Edge TPU with ``edgetpu_compiler``.

The compiler is an x86-64 Linux binary from Coral's Debian repository; when it is not on
``PATH`` the int8 model is still written and :data:`INSTALL_HINT` says how to get it. The
compiler maps the graph up to the first op it cannot run to the TPU and leaves the rest on
the CPU; :func:`parse_compiler_output` reads which ops went where.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edge_ecg.errors import EdgeEcgError

COMPILER = "edgetpu_compiler"
INSTALL_HINT = (
    "edgetpu_compiler is not on PATH; install it on an x86-64 Debian/Ubuntu machine from Coral's apt "
    "repository (package edgetpu-compiler, see coral.ai/docs/edgetpu/compiler), then rerun with --edgetpu "
    "or run: edgetpu_compiler -s -o DIR MODEL.tflite"
)
MAPPED = "Mapped to Edge TPU"
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
_COUNT = re.compile(r"Number of operations that will run on (Edge TPU|CPU):\s*(\d+)")


@dataclass
class EdgeTPUResult:
    """What the compiler did: the compiled model, its log, and each op's placement."""

    model_path: Path
    log_path: Path | None
    ops: list[dict] = field(default_factory=list)  # {"op", "count", "status", "on": "tpu" | "cpu"}
    tpu_ops: int = 0
    cpu_ops: int = 0
    output: str = ""

    def to_dict(self) -> dict:
        return {
            "model": str(self.model_path), "log": str(self.log_path) if self.log_path else None,
            "ops": self.ops, "tpu_ops": self.tpu_ops, "cpu_ops": self.cpu_ops,
        }

    def lines(self) -> list[str]:
        """Text lines for the conversion report."""
        out = [f"Edge TPU model: {self.model_path} ({self.tpu_ops} ops on the TPU, {self.cpu_ops} on the CPU)"]
        for row in self.ops:
            out.append(f"  {row['op']:<32} x{row['count']:<4} {row['on'].upper():<4} {row['status']}")
        return out


def find_compiler() -> str | None:
    """The path of ``edgetpu_compiler`` on PATH, or None."""
    return shutil.which(COMPILER)


def parse_compiler_output(text: str) -> tuple[list[dict], int, int]:
    """``(ops, tpu count, cpu count)`` from the compiler's ``-s`` summary or its ``.log``."""
    ops = []
    in_table = False
    for line in text.splitlines():
        if line.strip().startswith("Operator") and "Status" in line:
            in_table = True
            continue
        m = _ROW.match(line.strip()) if in_table else None
        if m:
            status = m.group(3)
            ops.append({"op": m.group(1), "count": int(m.group(2)), "status": status,
                        "on": "tpu" if status.startswith(MAPPED) else "cpu"})
    counts = {k: int(v) for k, v in _COUNT.findall(text)}
    tpu = counts.get("Edge TPU", sum(r["count"] for r in ops if r["on"] == "tpu"))
    cpu = counts.get("CPU", sum(r["count"] for r in ops if r["on"] == "cpu"))
    return ops, tpu, cpu


def compile_edgetpu(model_path: str | Path, out_dir: str | Path | None = None, timeout_s: float = 600.0) -> EdgeTPUResult:
    """Run ``edgetpu_compiler -s`` on ``model_path``; the result names ``<stem>_edgetpu.tflite``.

    Raises :class:`EdgeEcgError` with :data:`INSTALL_HINT` when the compiler is missing and
    with its message when it fails.
    """
    compiler = find_compiler()
    if compiler is None:
        raise EdgeEcgError(INSTALL_HINT)
    model_path = Path(model_path)
    out_dir = Path(out_dir) if out_dir else model_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [compiler, "-s", "-o", str(out_dir), str(model_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise EdgeEcgError(f"{COMPILER} did not finish within {timeout_s:g} s on {model_path}") from None
    except OSError as exc:
        raise EdgeEcgError(f"{COMPILER} could not be started ({exc.strerror or exc})") from None
    output = proc.stdout + proc.stderr
    compiled = out_dir / f"{model_path.stem}_edgetpu.tflite"
    if proc.returncode != 0 or not compiled.is_file():
        last = [ln for ln in output.strip().splitlines() if ln.strip()]
        reason = last[-1] if last else f"exit code {proc.returncode}"
        raise EdgeEcgError(f"{COMPILER} failed on {model_path}: {reason}")
    log_path = out_dir / f"{model_path.stem}_edgetpu.log"
    text = output
    if log_path.is_file() and "Operator" not in output:
        text += "\n" + log_path.read_text(errors="replace")
    ops, tpu, cpu = parse_compiler_output(text)
    return EdgeTPUResult(compiled, log_path if log_path.is_file() else None, ops, tpu, cpu, output)
