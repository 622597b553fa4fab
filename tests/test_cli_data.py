import json
import shutil

import pytest
from click.testing import CliRunner

from edge_ecg.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_teaches():
    out = run("--help").output
    assert "edge-ecg data fetch" in out and "EDGE_ECG_DATA" in out
    out = run("data", "--help").output
    assert "fetch" in out and "verify" in out and "info" in out
    assert "de Chazal" in run("data", "info", "--help").output


def test_info_json_on_synthetic(tiny_db):
    res = run("data", "info", str(tiny_db), "--json")  # JSON on stdout, progress (if any) on stderr
    assert res.exit_code == 0
    assert json.loads(res.stdout)["sets"]["all"]["beats"]["V"] == 6
    quiet = run("data", "info", str(tiny_db), "--json", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == "" and json.loads(quiet.output) == json.loads(res.stdout)


def test_errors_are_one_line_and_nonzero(tmp_path):
    res = run("data", "info", str(tmp_path / "missing"))
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0
    assert res.output.startswith("Error: ") and "no such folder" in res.output
    (tmp_path / "notes.txt").write_text("hello")
    res = run("data", "info", str(tmp_path))
    assert res.exit_code == 1 and "not WFDB data" in res.output and "Traceback" not in res.output


@pytest.mark.realdata
def test_info_prints_the_published_counts(mitdb_dir):
    out = run("data", "info", str(mitdb_dir)).output
    ds1 = next(line for line in out.splitlines() if line.startswith("DS1 "))
    ds2 = next(line for line in out.splitlines() if line.startswith("DS2 "))
    assert ds1.split()[1:8] == ["22", "22", "45866", "944", "3788", "415", "8"]  # records, patients, N S V F Q
    assert ds2.split()[3:8] == ["44259", "1837", "3221", "388", "7"]


@pytest.mark.realdata
def test_verify_passes_then_names_a_changed_file(mitdb_dir, tmp_path):
    assert run("data", "verify", str(mitdb_dir)).exit_code == 0
    copy = tmp_path / "mitdb"
    shutil.copytree(mitdb_dir, copy)
    target = copy / "105.dat"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[1000] ^= 0x01
    target.write_bytes(bytes(data))
    res = CliRunner().invoke(main, ["data", "verify", str(copy)])
    assert res.exit_code == 1
    assert "105.dat: checksum mismatch" in res.output
    assert "1 of 144 files failed" in res.output
