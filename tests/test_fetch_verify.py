import hashlib
import shutil

import pytest
import requests

from edge_ecg.errors import DataError
from edge_ecg.records import fetch
from edge_ecg.records.verify import parse_checksums, verify_checksums


def _sums(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.suffix in (".hea", ".dat", ".atr")}


def test_verify_reports_changed_and_missing_files(tiny_db):
    sums = _sums(tiny_db)
    (tiny_db / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    assert verify_checksums(tiny_db).passed
    data = bytearray((tiny_db / "901.dat").read_bytes())
    data[10] ^= 0xFF
    (tiny_db / "901.dat").write_bytes(bytes(data))
    (tiny_db / "900.atr").unlink()
    result = verify_checksums(tiny_db)
    assert not result.passed
    assert dict(result.problems) == {"900.atr": "missing", "901.dat": "checksum mismatch (corrupt or modified)"}


def test_verify_without_checksums_or_folder(tiny_db, tmp_path):
    with pytest.raises(DataError, match="no SHA256SUMS file"):
        verify_checksums(tiny_db)
    with pytest.raises(DataError, match="no such folder"):
        verify_checksums(tmp_path / "nope")
    with pytest.raises(DataError, match="malformed"):
        parse_checksums("abc  file\n")


class FakePhysioNet:
    """Stands in for the network: 'downloads' from a local folder, like wfdb.dl_database does."""

    def __init__(self, source):
        self.source = source
        self.calls = []

    def checksums(self, db, version):
        return {**_sums(self.source), "x_mitdb/extra.dat": "0" * 64, "mitdb.pdf": "1" * 64}

    def record(self, db, name, dest, annotators):
        self.calls.append(name)
        for ext in ["hea", "dat"] + (annotators or []):
            shutil.copy(self.source / f"{name}.{ext}", dest / f"{name}.{ext}")


def test_fetch_writes_checksums_and_records_then_verifies(tiny_db, tmp_path, monkeypatch):
    fake = FakePhysioNet(tiny_db)
    monkeypatch.setattr(fetch, "download_checksums", fake.checksums)
    monkeypatch.setattr(fetch, "download_record", fake.record)
    monkeypatch.setattr(fetch, "record_list", lambda db: ["900", "901"])
    dest = tmp_path / "deep" / "mitdb"
    result = fetch.fetch_database("mitdb", dest, progress=False)
    assert result.passed and len(result.ok) == 6
    assert (dest / "RECORDS").read_text() == "900\n901\n"
    assert "extra" not in (dest / "SHA256SUMS").read_text()  # only what was downloaded
    assert fake.calls == ["900", "901"]


def test_fetch_detects_a_corrupt_download(tiny_db, tmp_path, monkeypatch):
    fake = FakePhysioNet(tiny_db)
    good = fake.checksums("mitdb", "1.0.0")
    monkeypatch.setattr(fetch, "download_checksums", lambda db, v: {**good, "900.dat": "f" * 64})
    monkeypatch.setattr(fetch, "download_record", fake.record)
    with pytest.raises(DataError, match="900.dat: checksum mismatch .* after download"):
        fetch.fetch_database("mitdb", tmp_path / "d", records=["900"], progress=False)


def test_fetch_offline_is_one_clear_line(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise requests.ConnectionError("Failed to resolve 'physionet.org'")

    monkeypatch.setattr(requests, "get", offline)
    with pytest.raises(DataError) as info:
        fetch.fetch_database("mitdb", tmp_path / "d", progress=False)
    assert str(info.value).startswith("cannot download mitdb (cannot reach physionet.org")
    assert "--data DIR" in str(info.value) and "\n" not in str(info.value)


def test_fetch_rejects_unknown_db_and_file_dest(tmp_path):
    with pytest.raises(DataError, match="unknown database 'ptbdb'"):
        fetch.fetch_database("ptbdb", tmp_path)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match="exists and is not a folder"):
        fetch.fetch_database("mitdb", f)
