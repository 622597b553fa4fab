"""The device install: the model ships inside the wheel, `[edge]` installs only the device path,
and a command that needs an extra says which one in a single line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
#: Distributions the device path must not pull in (they come with the data/plot/train extras).
HEAVY = ("scipy", "wfdb", "pandas", "matplotlib", "tensorflow", "fonttools")


@click.command()
def needs_matplotlib() -> None:
    """A command whose body imports an optional dependency."""
    import matplotlib  # noqa: F401


def _one_error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    from edge_ecg import cli

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails as if not installed
    monkeypatch.setitem(cli.COMMANDS, "needs-mpl", f"{__name__}:needs_matplotlib")
    line = _one_error_line(CliRunner().invoke(cli.main, ["needs-mpl"]))
    assert line == "Error: `edge-ecg needs-mpl` needs matplotlib: pip install 'edge-ecg[plot]'"


def test_a_command_module_needing_an_extra_is_left_out_of_help_and_says_so(monkeypatch, tmp_path):
    from edge_ecg import cli

    (tmp_path / "cmd_needing_wfdb.py").write_text("import wfdb\nimport click\ncmd = click.command()(lambda: None)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "wfdb", None)
    monkeypatch.setitem(cli.COMMANDS, "needs-wfdb", "cmd_needing_wfdb:cmd")
    helped = CliRunner().invoke(cli.main, ["--help"])
    assert helped.exit_code == 0 and "stream" in helped.output and "needs-wfdb" not in helped.output
    line = _one_error_line(CliRunner().invoke(cli.main, ["needs-wfdb"]))
    assert "needs wfdb: pip install 'edge-ecg[data]'" in line


def test_an_unknown_missing_module_keeps_its_traceback(monkeypatch):
    from edge_ecg.extras import describe_missing_module

    assert describe_missing_module("no_such_thing", "plot") is None
    assert describe_missing_module("scipy.signal", "evaluate") == \
        "`edge-ecg evaluate` needs scipy: pip install 'edge-ecg[data]'"


def test_every_extra_named_exists_in_pyproject():
    from edge_ecg.extras import EXTRA_OF_MODULE

    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {extra for _, extra in EXTRA_OF_MODULE.values()} <= set(extras)


def test_toml_config_reads_on_every_supported_python(tmp_path):
    """requires-python says 3.10: config files in TOML read there too (tomli stands in for tomllib)."""
    from edge_ecg.config import read_config_data

    (tmp_path / "c.toml").write_text('[train]\nepochs = 3\n')
    assert read_config_data(tmp_path / "c.toml") == {"train": {"epochs": 3}}


def test_the_shipped_model_is_found_in_an_installed_package(tmp_path, monkeypatch):
    """An installed wheel has the model as edge_ecg/models package data: it is preferred to the checkout's."""
    from edge_ecg.stream import classifier_files as stream_model

    pkg = tmp_path / "site" / "edge_ecg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "edge_ecg_int8.tflite").write_bytes(b"x")
    from importlib import resources

    monkeypatch.setattr(resources, "files", lambda name: pkg if name == "edge_ecg" else None)
    monkeypatch.delenv("EDGE_ECG_MODELS", raising=False)
    assert stream_model.find_default_model() == pkg / "models" / "edge_ecg_int8.tflite"
    (pkg / "models" / "edge_ecg_int8.tflite").unlink()
    (pkg / "models").rmdir()
    assert stream_model.shipped_models_dir() == stream_model.MODELS_DIR  # a checkout: the top-level models/


def test_no_model_error_needs_no_tensorflow(tmp_path):
    from edge_ecg.errors import ModelError
    from edge_ecg.stream.classifier_files import find_default_model

    with pytest.raises(ModelError) as err:
        find_default_model(tmp_path)
    assert "--model" in str(err.value) and "train" not in str(err.value) and "TensorFlow" not in str(err.value)


@pytest.fixture
def install(monkeypatch):
    """tools/benchmarks/install.py: building the wheel and a fresh venv, as the benchmark does."""
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    from benchmarks import install

    return install


@pytest.mark.slow
@pytest.mark.parametrize("base", ["this", "python3.10"])
def test_built_wheel_with_edge_extra_streams_outside_the_checkout(tmp_path, install, base):
    """`pip install "<wheel>[edge]"` into a fresh venv (of this Python, and of 3.10, the oldest that
    requires-python allows, when on PATH); the demo runs from elsewhere with the packaged model."""
    base_python = sys.executable if base == "this" else shutil.which(base)
    if base_python is None or subprocess.run([base_python, "-c", "import venv"], capture_output=True).returncode:
        pytest.skip(f"no {base} with venv on PATH")
    wheel = install.build_wheel(ROOT, tmp_path / "wheel")
    try:
        python = install.make_venv(tmp_path / "venv", f"{wheel}[edge]", timeout=240, base_python=base_python)
    except RuntimeError as exc:
        if any(s in str(exc) for s in ("No matching distribution", "Could not find a version", "connection",
                                       "Network is unreachable", "Temporary failure in name resolution")):
            pytest.skip(f"pip cannot reach a package index: {str(exc)[-200:]}")
        raise
    freeze = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True, env=install.clean_env()).stdout
    installed = {d["name"].lower() for d in json.loads(freeze)}
    assert "edge-ecg" in installed and "ai-edge-litert" in installed
    assert not installed & set(HEAVY), f"[edge] pulled in {sorted(installed & set(HEAVY))}"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    edge_ecg = python.parent / "edge-ecg"
    proc = subprocess.run([str(edge_ecg), "stream", "--simulate", "--speed", "0", "--duration", "30", "--view", "none",
                           "--summary-json", "s.json"], cwd=elsewhere, env=install.clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    summary = json.loads((elsewhere / "s.json").read_text())
    assert Path(summary["model"]).is_relative_to(tmp_path / "venv") and summary["model"].endswith(".tflite")
    assert summary["classified"] >= 25 and summary["truth_matched"] == summary["classified"]
    assert summary["truth_agree"] >= 0.8 * summary["truth_matched"]  # a trained model, not noise

    # TOML configs read on every Python requires-python allows (tomllib from 3.11, tomli before)
    (elsewhere / "c.toml").write_text("[stream]\nthreads = 2\n")
    toml = subprocess.run([str(python), "-c", "from edge_ecg.config import read_config_data as r; "
                           "print(r('c.toml'))"], cwd=elsewhere, env=install.clean_env(), capture_output=True, text=True)
    assert toml.stdout.strip() == "{'stream': {'threads': 2}}", toml.stderr[-800:]

    # a command needing an extra that [edge] does not install: one line saying which
    import numpy as np
    import wfdb

    from conftest import synthetic_ecg

    rec = tmp_path / "rec"
    rec.mkdir()
    signal, beats, symbols = synthetic_ecg(20)
    wfdb.wrsamp("r1", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal[:, None], fmt=["212"],
                adc_gain=[200.0], baseline=[1024], write_dir=str(rec))
    wfdb.wrann("r1", "atr", np.asarray(beats), symbol=symbols, write_dir=str(rec))
    bad = subprocess.run([str(edge_ecg), "plot", "--record", "r1", "--data", str(rec), "--out", "s.png"],
                         cwd=elsewhere, env=install.clean_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr, bad.stderr[-1500:]
    assert bad.stderr.strip().splitlines() == ["Error: plots need matplotlib: pip install 'edge-ecg[plot]'"]


def test_boards_compare_beats_flags_any_difference(install):
    from benchmarks.boards import compare_beats

    def beat(sample, label, p_n):
        return {"sample": sample, "label": label, "probs": {"N": p_n, "V": 1.0 - p_n}}

    host = [beat(100, "N", 0.9), beat(400, "V", 0.2)]
    assert compare_beats(host, [dict(b) for b in host])["identical"]
    moved = compare_beats(host, [beat(100, "N", 0.9), beat(401, "V", 0.2)])
    assert not moved["identical"] and not moved["same_beat_samples"] and moved["labels_differing"] == 0
    relabelled = compare_beats(host, [beat(100, "N", 0.9), beat(400, "N", 0.6)])
    assert relabelled["labels_differing"] == 1 and relabelled["max_abs_prob_difference"] == pytest.approx(0.4)
    assert compare_beats(host, host[:1])["labels_differing"] == 1  # a missing beat counts


def test_boards_armhf_requirements_leave_numpy_to_debian(install, tmp_path):
    """The 32-bit board gets the wheel's base requirements for CPython 3.11, less numpy, no extras."""
    import zipfile

    from benchmarks.boards import _requirements_of

    wheel = tmp_path / "edge_ecg-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("edge_ecg-0.1.0.dist-info/METADATA", "Name: edge-ecg\nRequires-Dist: numpy>=1.23\n"
                    "Requires-Dist: click>=8.1\nRequires-Dist: tomli>=1.1; python_version < \"3.11\"\n"
                    "Requires-Dist: ai-edge-litert>=1.2; extra == \"edge\"\n")
    assert _requirements_of(wheel, skip=("numpy",)) == ["click>=8.1"]
