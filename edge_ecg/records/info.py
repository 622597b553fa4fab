"""What is in a database folder: records, rates, leads, durations, AAMI beat counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_ecg.config import CLASSES
from edge_ecg.errors import DataError
from edge_ecg.records.databases import Database, folder_database
from edge_ecg.records.load import check_signal_files, read_beats, read_header
from edge_ecg.records.locate import list_records
from edge_ecg.textable import format_table


def record_set(name: str, database: Database | None = None) -> str:
    """The named set (``DS1``, ``DS2``) a record belongs to, ``excluded`` (paced), or ``""``.

    Without ``database``, MIT-BIH's sets."""
    if database is None:
        from edge_ecg.records.databases import REGISTRY

        database = REGISTRY["mitdb"]
    for label, members in database.sets.items():
        if name in members:
            return label
    return "paced" if name in database.exclude and database.name == "mitdb" else \
        "excluded" if name in database.exclude else ""


def record_info(db_dir: Path, name: str, database: Database | None = None) -> dict:
    """One record's rate (Hz), leads, the lead read by default, patient, length (samples, s)
    and beats per AAMI class by the database's mapping (``None`` if unannotated)."""
    database = database or folder_database(db_dir)
    header = read_header(db_dir, name)
    check_signal_files(db_dir, header)
    beats = None
    if (db_dir / f"{name}.{database.annotator}").is_file():
        _, _, classes, _ = read_beats(db_dir, name, database.annotator, database.symbols)
        counts = Counter(classes.tolist())
        beats = {c: counts.get(c, 0) for c in CLASSES}
    n = int(header.sig_len or 0)
    leads = list(header.sig_name or [])
    try:
        default = database.choose_lead(leads, None, name)
        default_lead = leads[default] if isinstance(default, int) else default
    except DataError:
        default_lead = None
    return {
        "name": name,
        "set": record_set(name, database),
        "patient": database.patient_of(name, db_dir),
        "fs": float(header.fs),
        "leads": leads,
        "default_lead": default_lead,
        "n_samples": n,
        "duration_s": round(n / float(header.fs), 3) if header.fs else None,
        "beats": beats,
    }


def database_info(db_dir: str | Path, progress: bool = False, db: str | None = None) -> dict:
    """Every record of ``db_dir`` (see :func:`record_info`) and beat totals for the database's
    named sets (DS1, DS2 for MIT-BIH) and for all records, with patient counts.

    A named set's totals appear when the folder holds any of its records; ``missing`` lists
    the set's records that are absent. ``db`` names the registry entry (default: by the
    folder's name, else a folder of the user's own records).
    """
    database = folder_database(db_dir, db)
    db_dir = database.folder
    names = list_records(db_dir)
    if not names:
        raise DataError(f"{db_dir}: no records found")
    from tqdm.auto import tqdm

    records = [record_info(db_dir, n, database)
               for n in tqdm(names, desc="reading", unit="record", disable=not progress, leave=False)]
    sets = {}
    for label, members in (*database.sets.items(), ("all", None)):
        chosen = [r for r in records if r["beats"] is not None and (members is None or r["name"] in members)]
        if members is not None and not chosen:
            continue
        totals = {c: sum(r["beats"][c] for r in chosen) for c in CLASSES}
        entry = {"records": len(chosen), "patients": len({r["patient"] for r in chosen}), "beats": totals,
                 "total": sum(totals.values())}
        if members is not None:
            entry["missing"] = [m for m in members if m not in {r["name"] for r in records}]
        sets[label] = entry
    listed = database.records
    return {"folder": str(db_dir), "database": database.describe(), "records": records, "sets": sets,
            "registry_records_absent": [r for r in listed if r not in set(names)] if listed else []}


def format_info(info: dict) -> str:
    """:func:`database_info` as aligned text: a row per record, then the set totals."""
    rows = []
    for r in info["records"]:
        b = r["beats"] or {}
        rows.append([r["name"], r["set"], r["patient"].split(":", 1)[1], f"{r['fs']:g}", ",".join(r["leads"]),
                     r["default_lead"] or "-", f"{r['duration_s'] / 60:.1f}", *[b.get(c) for c in CLASSES]])
    d = info["database"]
    absent = info.get("registry_records_absent") or []
    out = [f"{info['folder']}: {d['name']} ({d['title']}), {len(info['records'])} records"
           + (f" ({len(absent)} of the database's records are not here)" if absent else ""),
           f"patients: {d['patients']}", "",
           format_table(["record", "set", "patient", "Hz", "leads", "default lead", "min", *CLASSES], rows,
                        align="lllrllr" + "r" * len(CLASSES))]
    if info["sets"]:
        srows = [[label, s["records"], s["patients"], *[s["beats"][c] for c in CLASSES], s["total"]]
                 for label, s in info["sets"].items()]
        extra = ", ".join(f"{k} as {v}" for k, v in d["extra_symbols"].items())
        out += ["", "AAMI beats (de Chazal mapping" + (f"; also {extra}" if extra else "") + ")",
                format_table(["set", "records", "patients", *CLASSES, "total"], srows)]
        for label, s in info["sets"].items():
            if s.get("missing"):
                out.append(f"note: {label} is missing {len(s['missing'])} records: {', '.join(s['missing'])}")
    return "\n".join(out)
