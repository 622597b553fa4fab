import numpy as np
import pytest

from edge_ecg.errors import DataError
from edge_ecg.records import DS1, DS2, PACED, aami_class, find_database, load_record
from edge_ecg.records.databases import REGISTRY
from edge_ecg.records.info import database_info, format_info
from edge_ecg.records.locate import list_records


def test_aami_mapping_is_de_chazals():
    assert [aami_class(s) for s in "NLRej"] == ["N"] * 5
    assert [aami_class(s) for s in "AaJS"] == ["S"] * 4
    assert [aami_class(s) for s in "VE"] == ["V"] * 2
    assert aami_class("F") == "F"
    assert [aami_class(s) for s in "/fQ"] == ["Q"] * 3
    assert aami_class("+") is None and aami_class("!") is None and aami_class("~") is None


def test_split_is_disjoint_and_excludes_paced():
    assert len(DS1) == len(DS2) == 22
    assert not set(DS1) & set(DS2)
    assert not (set(DS1) | set(DS2)) & set(PACED)
    assert tuple(REGISTRY["mitdb"].select("DS1+100,101")) == DS1 + ("100",)  # 101 is in DS1 already
    assert REGISTRY["mitdb"].select("ds2")[0] == "100"


def test_load_synthetic_record(tiny_db):
    rec = load_record(tiny_db, "900")
    assert rec.fs == 360.0 and rec.lead == "MLII" and rec.signal.dtype == np.float32
    assert rec.leads == ("MLII", "V1")
    assert set(rec.beat_classes) == {"N", "V", "S"}
    assert len(rec.beat_samples) == 42
    assert rec.excluded.shape == (0, 2)


def test_lead_by_name(tiny_db):
    assert load_record(tiny_db, "900", lead="V1").lead == "V1"
    with pytest.raises(DataError, match="has no lead 'V5' \\(it has MLII, V1\\)"):
        load_record(tiny_db, "900", lead="V5")


def test_bad_records_are_one_line_errors(tiny_db, tmp_path):
    with pytest.raises(DataError, match="record '999' not found"):
        load_record(tiny_db, "999")
    (tiny_db / "901.atr").unlink()
    with pytest.raises(DataError, match="901.atr: annotation file missing"):
        load_record(tiny_db, "901")
    dat = tiny_db / "900.dat"
    dat.write_bytes(dat.read_bytes()[:100])
    with pytest.raises(DataError, match="900.dat: truncated"):
        load_record(tiny_db, "900")
    (tiny_db / "900.dat").unlink()
    with pytest.raises(DataError, match="900.dat: signal file missing"):
        load_record(tiny_db, "900")
    hea = tmp_path / "x.hea"
    hea.write_text("this is not a header\n")
    with pytest.raises(DataError, match="not a valid WFDB header"):
        load_record(tmp_path, "x")


def test_find_database_order(tmp_path, monkeypatch, tiny_db):
    monkeypatch.setenv("EDGE_ECG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGE_ECG_DATA", raising=False)
    with pytest.raises(DataError, match="no mitdb data found .*edge-ecg data fetch --db mitdb"):
        find_database("mitdb")
    cached = tmp_path / "cache" / "data" / "mitdb"
    cached.parent.mkdir(parents=True)
    tiny_db.rename(cached)
    assert find_database("mitdb") == cached
    env_root = tmp_path / "env"
    (env_root / "mitdb").mkdir(parents=True)
    (env_root / "mitdb" / "1.hea").write_text("1 1 360 10\n")
    monkeypatch.setenv("EDGE_ECG_DATA", str(env_root))
    assert find_database("mitdb") == env_root / "mitdb"
    assert find_database("mitdb", data=cached) == cached  # --data wins
    with pytest.raises(DataError, match="not WFDB data"):
        find_database("mitdb", data=tmp_path / "cache")


def test_info_on_synthetic(tiny_db):
    info = database_info(tiny_db)
    assert [r["name"] for r in info["records"]] == ["900", "901"]
    assert info["sets"]["all"]["beats"] == {"N": 72, "S": 6, "V": 6, "F": 0, "Q": 0}
    assert "DS1" not in info["sets"]
    assert "900" in format_info(info)
    assert list_records(tiny_db) == ["900", "901"]


@pytest.mark.realdata
def test_info_counts_match_the_published_split(mitdb_dir):
    sets = database_info(mitdb_dir)["sets"]
    assert sets["DS1"]["beats"] == {"N": 45866, "S": 944, "V": 3788, "F": 415, "Q": 8}
    assert sets["DS2"]["beats"] == {"N": 44259, "S": 1837, "V": 3221, "F": 388, "Q": 7}
    assert sets["DS1"]["missing"] == [] and sets["DS2"]["missing"] == []


@pytest.mark.realdata
def test_real_record_lead_selection_and_vf_episodes(mitdb_dir):
    rec = load_record(mitdb_dir, "114")  # MLII is the second signal in 114
    assert rec.lead == "MLII" and rec.leads == ("V5", "MLII")
    vf = load_record(mitdb_dir, "207", annotations=True)
    assert len(vf.excluded) == 6 and (vf.excluded[:, 1] > vf.excluded[:, 0]).all()
