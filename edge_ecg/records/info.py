"""What is in a database folder: records, rates, leads, durations, AAMI beat counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_ecg.config import CLASSES
from edge_ecg.errors import DataError
from edge_ecg.records.aami import DS1, DS2, PACED
from edge_ecg.records.load import check_signal_files, list_records, read_beats, read_header
from edge_ecg.records.locate import check_wfdb_dir
from edge_ecg.textable import format_table


def record_set(name: str) -> str:
    """``DS1``, ``DS2``, ``paced`` or ``""`` for a MIT-BIH record name."""
    return "DS1" if name in DS1 else "DS2" if name in DS2 else "paced" if name in PACED else ""


def record_info(db_dir: Path, name: str) -> dict:
    """One record's rate (Hz), leads, length (samples, s) and beats per AAMI class (``None`` if unannotated)."""
    header = read_header(db_dir, name)
    check_signal_files(db_dir, header)
    beats = None
    if (db_dir / f"{name}.atr").is_file():
        _, _, classes, _ = read_beats(db_dir, name)
        counts = Counter(classes.tolist())
        beats = {c: counts.get(c, 0) for c in CLASSES}
    n = int(header.sig_len or 0)
    return {
        "name": name,
        "set": record_set(name),
        "fs": float(header.fs),
        "leads": list(header.sig_name or []),
        "n_samples": n,
        "duration_s": round(n / float(header.fs), 3) if header.fs else None,
        "beats": beats,
    }


def database_info(db_dir: str | Path, progress: bool = False) -> dict:
    """Every record of ``db_dir`` (see :func:`record_info`) and beat totals for DS1, DS2 and all.

    DS1/DS2 totals appear when the folder holds any of their records; ``missing`` lists
    the split's records that are absent.
    """
    db_dir = check_wfdb_dir(db_dir)
    names = list_records(db_dir)
    if not names:
        raise DataError(f"{db_dir}: no records found")
    from tqdm.auto import tqdm

    records = [record_info(db_dir, n) for n in tqdm(names, desc="reading", unit="record", disable=not progress, leave=False)]
    sets = {}
    for label, members in (("DS1", DS1), ("DS2", DS2), ("all", None)):
        chosen = [r for r in records if r["beats"] is not None and (members is None or r["name"] in members)]
        if members is not None and not chosen:
            continue
        totals = {c: sum(r["beats"][c] for r in chosen) for c in CLASSES}
        entry = {"records": len(chosen), "beats": totals, "total": sum(totals.values())}
        if members is not None:
            entry["missing"] = [m for m in members if m not in {r["name"] for r in records}]
        sets[label] = entry
    return {"folder": str(db_dir), "records": records, "sets": sets}


def format_info(info: dict) -> str:
    """:func:`database_info` as aligned text: a row per record, then the set totals."""
    rows = []
    for r in info["records"]:
        b = r["beats"] or {}
        rows.append([r["name"], r["set"], f"{r['fs']:g}", ",".join(r["leads"]), f"{r['duration_s'] / 60:.1f}",
                     *[b.get(c) for c in CLASSES]])
    out = [f"{info['folder']}: {len(info['records'])} records", "",
           format_table(["record", "set", "Hz", "leads", "min", *CLASSES], rows, align="llrlr" + "r" * len(CLASSES))]
    if info["sets"]:
        srows = [[label, s["records"], *[s["beats"][c] for c in CLASSES], s["total"]] for label, s in info["sets"].items()]
        out += ["", "AAMI beats (de Chazal mapping)", format_table(["set", "records", *CLASSES, "total"], srows)]
        for label, s in info["sets"].items():
            if s.get("missing"):
                out.append(f"note: {label} is missing {len(s['missing'])} records: {', '.join(s['missing'])}")
    return "\n".join(out)
