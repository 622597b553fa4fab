"""The database registry, lead choice, patient grouping, record sets and `data` commands on small
databases written here (two rates, different lead names and patient groupings); real svdb counts
when ../shared/data is present."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge_ecg.cli import main
from edge_ecg.errors import ConfigError, DataError
from edge_ecg.records.databases import REGISTRY, folder_database, get_database, split_record_id
from edge_ecg.records.folds import patient_folds
from edge_ecg.records.load import load_record
from edge_ecg.records.sets import parse_spec, resolve_spec, resolve_specs

from conftest import BEATS, write_db_record


def test_registry_lists_the_databases_with_their_facts():
    for name in ("mitdb", "svdb", "incartdb", "edb", "ltdb", "icentia11k"):
        entry = get_database(name)
        assert entry.version and entry.fs and entry.leads and entry.physionet
    assert len(REGISTRY["mitdb"].records) == 48 and len(REGISTRY["svdb"].records) == 78
    assert len(REGISTRY["incartdb"].records) == 75 and REGISTRY["incartdb"].fs == 257.0
    assert REGISTRY["mitdb"].exclude == ("102", "104", "107", "217")
    assert REGISTRY["svdb"].symbols["B"] == "N" and "B" not in REGISTRY["mitdb"].symbols  # mitdb: de Chazal only
    assert REGISTRY["mitdb"].patient_of("202") == REGISTRY["mitdb"].patient_of("201") == "mitdb:201"
    assert REGISTRY["icentia11k"].patient_of("p00/p00042/p00042_s07") == "icentia11k:p00042"
    with pytest.raises(DataError, match="unknown database 'ptbdb'.*mitdb"):
        get_database("ptbdb")


def test_lead_choice_by_name_with_fallback_and_one_line_errors(two_databases, tmp_path):
    svdb = folder_database(two_databases / "svdb")
    assert svdb.name == "svdb"
    assert svdb.choose_lead(["ECG1", "ECG2"]) == "ECG1"
    assert svdb.choose_lead(["ECG2"]) == "ECG2"  # the stated fallback order
    with pytest.raises(DataError, match="has no lead 'MLII' \\(it has ECG1, ECG2\\)"):
        svdb.choose_lead(["ECG1", "ECG2"], "MLII", "800")
    rec = load_record(two_databases / "svdb", "800", lead=None)
    assert rec.lead == "ECG1" and rec.fs == 128.0
    assert (rec.beat_classes == "N").sum() == BEATS.count("N") + BEATS.count("B")  # B is an N beat outside mitdb
    # a user's folder: generic names, then the first signal
    mine = tmp_path / "mine"
    write_db_record(mine, "r1", 250.0, ("chestA", "chestB"), BEATS)
    user = folder_database(mine)
    assert user.name == "mine" and user.patient_of("r1") == "mine:r1"
    assert load_record(mine, "r1", lead=None).lead == "chestA"


def test_patients_from_headers_and_patient_folds(two_databases):
    incart = folder_database(two_databases / "incartdb")
    assert [incart.patient_of(r) for r in ("I01", "I02", "I03")] == ["incartdb:patient1"] * 2 + ["incartdb:patient2"]
    records = ["I01", "I02", "I03", "x4", "x5"]
    folds = patient_folds(records, lambda r: incart.patient_of(r) if r.startswith("I") else r, 3,
                          {"I01": 5, "I03": 4, "x4": 1})
    assert sorted(sum(folds, [])) == sorted(records)
    assert any({"I01", "I02"} <= set(f) for f in folds)  # one patient's records stay together
    assert folds == patient_folds(records, lambda r: incart.patient_of(r) if r.startswith("I") else r, 3,
                                  {"I01": 5, "I03": 4, "x4": 1})  # deterministic


def test_record_set_specs(two_databases):
    assert parse_spec("svdb:800,802@0.5") == ("svdb", "800,802", 0.5)
    assert parse_spec("mitdb:DS1") == ("mitdb", "DS1", 1.0)
    assert parse_spec(str(two_databases / "svdb")) == (str(two_databases / "svdb"), None, 1.0)
    rs = resolve_spec(str(two_databases / "svdb") + ":800,804@2")
    assert rs.name == "svdb" and rs.records == ("800", "804") and rs.weight == 2.0
    assert rs.ids() == ["svdb/800", "svdb/804"] and split_record_id("svdb/800") == ("svdb", "800")
    assert resolve_spec("svdb", data_root=two_databases).records == ("800", "802", "804")
    with pytest.raises(ConfigError, match="weight after @ must be a number"):
        parse_spec("svdb@lots")
    with pytest.raises(DataError, match="record 999 not found"):
        resolve_spec(str(two_databases / "svdb") + ":999")
    with pytest.raises(DataError, match="unknown database|no svdb data|not WFDB|no such folder"):
        resolve_spec("nosuchdb")


def test_clashing_names_unannotated_records_and_non_wfdb_folders(two_databases, tmp_path):
    import shutil

    other = tmp_path / "elsewhere" / "svdb"
    shutil.copytree(two_databases / "svdb", other)
    with pytest.raises(ConfigError, match="two databases named 'svdb'"):
        resolve_specs([str(two_databases / "svdb"), str(other)])
    (other / "802.atr").unlink()
    with pytest.raises(DataError, match="record 802 has no beat annotations"):
        resolve_spec(str(other))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not WFDB data"):
        resolve_spec(str(junk))


def test_data_info_on_any_folder_counts_patients_and_symbols(two_databases):
    res = CliRunner().invoke(main, ["data", "info", "--data", str(two_databases / "incartdb"), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["database"]["name"] == "incartdb"
    assert info["sets"]["all"]["records"] == 3 and info["sets"]["all"]["patients"] == 2
    n_beats = {c: BEATS.count(c) for c in "NVAB"}
    assert info["sets"]["all"]["beats"] == {"N": 3 * (n_beats["N"] + n_beats["B"]), "S": 3 * n_beats["A"],
                                            "V": 3 * n_beats["V"], "F": 0, "Q": 0}
    assert {r["default_lead"] for r in info["records"]} == {"II"}
    assert len(info["registry_records_absent"]) == 72
    text = CliRunner().invoke(main, ["data", "info", str(two_databases / "svdb")]).output
    assert "ECG1" in text and "B as N" in text
    reg = CliRunner().invoke(main, ["data", "info", "--registry"])
    assert reg.exit_code == 0 and "icentia11k" in reg.output and "32 patients" in reg.output
    assert "record sets EVEN (40), ODD (38)" in reg.output and "record sets DS1 (22), DS2 (22)" in reg.output


def test_fetch_icentia_by_patient_range(tmp_path, monkeypatch):
    from edge_ecg.records import fetch

    assert fetch.parse_patient_range("3-4") == range(3, 5)
    names = fetch.icentia_records(range(3, 5))
    assert names[0] == "p00/p00003/p00003_s00" and len(names) == 100
    with pytest.raises(DataError, match="numbered 0 to 10999"):
        fetch.icentia_records(range(10990, 11001))
    with pytest.raises(DataError, match="--patients FIRST-LAST"):
        fetch.fetch_database("icentia11k", tmp_path / "ic", progress=False)
    with pytest.raises(DataError, match="--patients is for icentia11k only"):
        fetch.fetch_database("svdb", tmp_path / "sv", progress=False, patients=range(0, 2))
    res = CliRunner().invoke(main, ["data", "fetch", "--db", "icentia11k", "--patients", "9-3", "--data",
                                    str(tmp_path / "x")])
    assert res.exit_code != 0 and "comes before the first" in res.output and "Traceback" not in res.output


def test_fetch_resumes_skipping_complete_records(tiny_db, tmp_path, monkeypatch):
    import hashlib
    import shutil

    from edge_ecg.records import fetch

    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tiny_db.iterdir()
            if p.suffix in (".hea", ".dat", ".atr")}
    calls = []

    def record(db, name, dest, annotators):
        calls.append(name)
        for ext in ["hea", "dat"] + (annotators or []):
            shutil.copy(tiny_db / f"{name}.{ext}", dest / f"{name}.{ext}")

    monkeypatch.setattr(fetch, "download_checksums", lambda db, v: sums)
    monkeypatch.setattr(fetch, "download_record", record)
    monkeypatch.setattr(fetch, "record_list", lambda db: ["900", "901"])
    dest = tmp_path / "svdb"
    dest.mkdir()
    for ext in ("hea", "dat", "atr"):  # 900 is already complete, as after an interrupted fetch
        shutil.copy(tiny_db / f"900.{ext}", dest / f"900.{ext}")
    assert fetch.fetch_database("svdb", dest, progress=False).passed
    assert calls == ["901"]


@pytest.mark.realdata
def test_real_svdb_counts_and_folds(svdb_dir):
    svdb = svdb_dir
    res = CliRunner().invoke(main, ["data", "info", str(svdb), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    # ../shared/data/README.md: N 85,407 (+1 B), S 4,680, V 5,025, F 3, Q 25 in the 40 records
    assert info["sets"]["all"]["beats"] == {"N": 85408, "S": 4680, "V": 5025, "F": 3, "Q": 25}
    assert info["sets"]["all"]["records"] == 40 and info["sets"]["all"]["patients"] == 40
    assert {r["default_lead"] for r in info["records"]} == {"ECG1"} and {r["fs"] for r in info["records"]} == {128.0}
    # round 8's committed svdb folds are what patient_folds makes of the S counts
    from cv_select import SVDB_FOLDS  # tools/ is on the test path (pyproject.toml)

    db = folder_database(svdb)
    s_beats = {r["name"]: r["beats"]["S"] for r in info["records"]}
    assert patient_folds(db.select(None), db.patient_of, 4, s_beats) == [list(f) for f in SVDB_FOLDS]


def test_svdb_even_and_odd_sets_and_a_folder_given_for_a_registry_name(two_databases, tmp_path):
    """svdb:EVEN names the 40 even-numbered records the shipped model trained on; ODD the other 38
    (never used here). ``folders`` puts a registry name on any folder (the CLI's --data for mitdb)."""
    svdb = REGISTRY["svdb"]
    assert len(svdb.sets["EVEN"]) == 40 and len(svdb.sets["ODD"]) == 38
    assert set(svdb.sets["EVEN"]).isdisjoint(svdb.sets["ODD"])
    assert set(svdb.sets["EVEN"]) | set(svdb.sets["ODD"]) == set(svdb.records)
    assert all(int(r) % 2 == 0 for r in svdb.sets["EVEN"])
    # the synthetic svdb holds 800, 802, 804: EVEN names records it lacks -> one line naming the first
    with pytest.raises(DataError, match="record 806 not found"):
        resolve_spec("svdb:EVEN", data_root=two_databases)
    assert resolve_spec("svdb:800,804", data_root=two_databases).records == ("800", "804")
    elsewhere = tmp_path / "my_svdb_copy"
    for i, name in enumerate(["800", "802"]):
        write_db_record(elsewhere, name, 128.0, ("ECG1", "ECG2"), BEATS, seed=i)
    rs = resolve_spec("svdb:800,802", data_root=two_databases, folders={"svdb": elsewhere})
    assert rs.folder == elsewhere and rs.name == "svdb" and rs.ids() == ["svdb/800", "svdb/802"]


def test_training_records_is_the_one_place_a_run_learns_its_records(two_databases, tmp_path):
    """train_run and the ablation benchmark both read their records through training_records:
    record sets split patient-wise (train.data; empty: mitdb:DS1); bad input is one line."""
    from dataclasses import replace

    from edge_ecg.config import RunConfig
    from edge_ecg.model.train import training_records

    base = RunConfig()

    def with_train(**kw):
        return replace(base, train=replace(base.train, **kw))

    cfg = with_train(data=("svdb", "incartdb@2"), val_records=("svdb/802", "incartdb/I03"))
    recs = training_records(cfg, None, data_root=two_databases)
    assert recs.val_names == ["svdb/802", "incartdb/I03"]
    assert recs.train_names == ["svdb/800", "svdb/804", "incartdb/I01", "incartdb/I02"]
    assert recs.db_dir == two_databases / "svdb"  # no MIT-BIH folder given: the first set's
    assert [rs.weight for rs in recs.record_sets] == [1.0, 2.0]
    assert recs.patient_of["incartdb/I01"] == recs.patient_of["incartdb/I02"]
    # naming one record of a patient holds out the patient's other records too
    cfg = with_train(data=("incartdb",), val_records=("incartdb/I01",))
    assert training_records(cfg, None, data_root=two_databases).val_names == ["incartdb/I01", "incartdb/I02"]
    assert base.train.specs() == ("mitdb:DS1",)
    with pytest.raises(DataError, match="not WFDB data|empty"):  # DS1 looked for in a folder without it
        training_records(base, tmp_path)
    write_db_record(tmp_path / "mitdb", "100", 360.0, ("MLII", "V5"), BEATS)
    with pytest.raises(ConfigError, match="DS2 record mitdb/100"):
        training_records(with_train(data=("mitdb:100",)), tmp_path / "mitdb")
