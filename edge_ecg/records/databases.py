"""The database registry: what edge-ecg knows about each PhysioNet beat-annotated database.

One :class:`Database` per database: its PhysioNet name and version, sampling rate, record list,
which lead is read by default (by name, in a stated fallback order), how records map to
patients, the AAMI mapping of its beat symbols, records to exclude and named record sets.
:func:`folder_database` gives the same description for any folder of WFDB records with beat
annotations (a user's own recordings).

Records of several databases are named ``db/record`` (``mitdb/101``, ``svdb/800``) wherever
they meet, so two databases can never clash; see :func:`record_id` and :func:`split_record_id`.

Facts below follow each database's PhysioNet description (INCART's patient number in every
header was checked there); where no record-to-patient table is used, the rule is stated in the
entry's ``patients_note``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_ecg.errors import DataError
from edge_ecg.records.aami import DS1, DS2, PACED

from edge_ecg.records.aami import AAMI_MAP as DE_CHAZAL  # de Chazal's mapping of MIT-BIH symbols
from edge_ecg.records.locate import check_wfdb_dir, list_records

#: Beat symbols mitdb never uses but other databases do, with their AAMI class (EC57 Table 1):
#: ``B`` bundle branch block beat (unspecified), ``n`` supraventricular escape beat, both N;
#: ``r`` R-on-T premature ventricular contraction, V; ``?`` beat not classified, Q.
EXTRA_SYMBOLS: dict[str, str] = {"B": "N", "n": "N", "r": "V", "?": "Q"}

#: The mapping every database but mitdb uses: de Chazal's plus :data:`EXTRA_SYMBOLS`.
AAMI_EXTENDED: dict[str, str] = {**DE_CHAZAL, **EXTRA_SYMBOLS}

#: Lead names tried, in order, for a folder of a user's own records; then its first signal.
GENERIC_LEADS: tuple[str, ...] = ("MLII", "II", "ML2", "ECG1", "ECG", "I")


@dataclass(frozen=True)
class Database:
    """A beat-annotated ECG database (or a user's folder of WFDB records).

    ``fs`` Hz (``None`` when records differ); ``records`` the full record list (empty: the
    folder's ``RECORDS`` file, which ``data fetch`` writes from PhysioNet's); ``leads`` the
    lead names tried in order when none is asked for, then the first signal when
    ``first_signal_fallback``; ``symbols`` beat symbol -> AAMI class (others are not beats);
    ``exclude`` records left out of training and evaluation by default (paced);
    ``sets`` named record sets (``DS1``); ``patient_rule`` says how records map to patients
    (:meth:`patient_of` applies it); ``beats`` is False for a noise-only database.
    """

    name: str
    title: str
    version: str
    fs: float | None
    records: tuple[str, ...] = ()
    leads: tuple[str, ...] = GENERIC_LEADS
    first_signal_fallback: bool = True
    symbols: dict[str, str] = field(default_factory=lambda: dict(AAMI_EXTENDED))
    exclude: tuple[str, ...] = ()
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patient_rule: str = "record"  # "record" | "mitdb" | "header_number" | "age_sex" | "icentia"
    patients_note: str = "each record is its own patient"
    beats: bool = True
    annotator: str = "atr"
    physionet: str = ""  # PhysioNet's slug ("" for a local folder)
    folder: Path | None = None  # set for a user's folder

    def choose_lead(self, available: Sequence[str], wanted: str | None = None, record: str = "",
                    model_lead: str | None = None) -> str | int:
        """The lead to read from a record whose signals are ``available``: edge-ecg's one lead rule,
        for the offline builder, evaluation and ``stream --replay`` alike.

        ``wanted`` (the user's ``--lead``) must exist: otherwise a one-line :class:`DataError`
        names the leads the record has. Without it, ``model_lead`` (the model's
        ``window.lead``) when the record has it, else the first of :attr:`leads` the record
        has, else (``first_signal_fallback``) its first signal (index 0).
        """
        available = list(available)
        where = f"record {record}" if record else "the record"
        if wanted is not None:
            if wanted in available:
                return wanted
            raise DataError(f"{where} has no lead {wanted!r} (it has {', '.join(available) or 'no signals'})")
        if model_lead is not None and model_lead in available:
            return model_lead
        for name in self.leads:
            if name in available:
                return name
        if self.first_signal_fallback and available:
            return 0
        raise DataError(f"{where} has none of {self.name}'s leads {', '.join(self.leads)} "
                        f"(it has {', '.join(available)}); pass --lead NAME")

    def record_names(self, folder: str | Path | None = None) -> list[str]:
        """The records there are: the folder's own list (its ``RECORDS`` file, else its headers)
        when a folder is known, else the registry's full list."""
        folder = Path(folder) if folder is not None else self.folder
        if folder is not None:
            return list_records(folder)
        if self.records:
            return list(self.records)
        raise DataError(f"{self.name}: the record list comes with the data; run `edge-ecg data fetch --db "
                        f"{self.name}` or pass --data DIR")

    def select(self, spec: str | None, folder: str | Path | None = None) -> list[str]:
        """Records named by ``spec``: ``all`` (or None: every record but :attr:`exclude`), a set
        name (``DS1``), or a comma list; ``+`` joins parts (``DS1+DS2``)."""
        if spec is None or spec.strip().lower() in ("", "all"):
            return [r for r in self.record_names(folder) if r not in self.exclude]
        out: list[str] = []
        for part in spec.replace(" ", "").split("+"):
            if part.upper() in self.sets:
                out.extend(self.sets[part.upper()])
            elif part.lower() == "all":
                out.extend(r for r in self.record_names(folder) if r not in self.exclude)
            elif part:
                out.extend(p for p in part.split(",") if p)
        return list(dict.fromkeys(out))

    def patient_of(self, record: str, folder: str | Path | None = None) -> str:
        """The patient id ``"<db>:<patient>"`` of ``record`` by :attr:`patient_rule`.

        ``header_number`` and ``age_sex`` read the record's header comments (from ``folder``);
        a header without the field makes the record its own patient.
        """
        rule = self.patient_rule
        if rule == "mitdb":
            return f"{self.name}:{MITDB_SAME_PATIENT.get(record, record)}"
        if rule == "icentia":
            return f"{self.name}:{record.split('/')[-1].split('_')[0]}"
        if rule in ("header_number", "age_sex"):
            folder = Path(folder) if folder is not None else self.folder
            comments = _header_comments(folder, record) if folder is not None else ""
            key = _patient_from_comments(comments, rule)
            if key is not None:
                return f"{self.name}:{key}"
        return f"{self.name}:{record}"

    def describe(self) -> dict:
        """The entry as JSON-able data (for ``data info --registry`` and run metadata)."""
        return {
            "name": self.name, "title": self.title, "version": self.version, "fs": self.fs,
            "records": len(self.records) if self.records else "from RECORDS", "leads": list(self.leads),
            "first_signal_fallback": self.first_signal_fallback, "exclude": list(self.exclude),
            "sets": {k: len(v) for k, v in self.sets.items()}, "patients": self.patients_note,
            "extra_symbols": {s: c for s, c in self.symbols.items() if s not in DE_CHAZAL},
            "beats": self.beats, "physionet": self.physionet,
        }


def _header_comments(folder: Path, record: str) -> str:
    path = folder / f"{record}.hea"
    try:
        return "\n".join(line[1:] for line in path.read_text(errors="replace").splitlines() if line.startswith("#"))
    except OSError:
        return ""


_PATIENT_NUMBER = re.compile(r"patient\s*(?:number|no\.?|#|id)?\s*[:=]?\s*(\d+)", re.IGNORECASE)
_AGE = re.compile(r"age\W{0,3}\s*(\d{1,3})", re.IGNORECASE)
_SEX = re.compile(r"sex\W{0,3}\s*([MF])", re.IGNORECASE)


def _patient_from_comments(comments: str, rule: str) -> str | None:
    if rule == "header_number":
        m = _PATIENT_NUMBER.search(comments)
        return f"patient{int(m.group(1))}" if m else None
    age, sex = _AGE.search(comments), _SEX.search(comments)
    return f"age{age.group(1)}-{sex.group(1).upper()}" if age and sex else None


def _numbered(first: int, last: int, fmt: str = "{}") -> tuple[str, ...]:
    return tuple(fmt.format(n) for n in range(first, last + 1))


#: MIT-BIH records 201 and 202 come from the same subject (PhysioNet's mitdb directory).
MITDB_SAME_PATIENT: dict[str, str] = {"202": "201"}

_MITDB_RECORDS = (_numbered(100, 109) + _numbered(111, 119) + _numbered(121, 124) + _numbered(200, 203)
                  + ("205",) + _numbered(207, 210) + _numbered(212, 215) + ("217",) + _numbered(219, 223)
                  + ("228",) + _numbered(230, 234))
_SVDB_RECORDS = _numbered(800, 812) + _numbered(820, 829) + _numbered(840, 894)


def _registry() -> dict[str, Database]:
    entries = [
        Database(
            "mitdb", "MIT-BIH Arrhythmia Database", "1.0.0", 360.0, _MITDB_RECORDS, leads=("MLII",),
            first_signal_fallback=False, symbols=dict(DE_CHAZAL), exclude=PACED, sets={"DS1": DS1, "DS2": DS2},
            patient_rule="mitdb", patients_note="one patient per record, except 201 and 202 (the same subject)",
            physionet="mitdb"),
        Database(
            "svdb", "MIT-BIH Supraventricular Arrhythmia Database", "1.0.0", 128.0, _SVDB_RECORDS,
            leads=("ECG1", "ECG2"), first_signal_fallback=False, physionet="svdb",
            sets={"EVEN": tuple(r for r in _SVDB_RECORDS if int(r) % 2 == 0),
                  "ODD": tuple(r for r in _SVDB_RECORDS if int(r) % 2 == 1)}),
        Database(
            "incartdb", "St Petersburg INCART 12-lead Arrhythmia Database", "1.0.0", 257.0,
            _numbered(1, 75, "I{:02d}"), leads=("II", "MLII", "I"), first_signal_fallback=False,
            patient_rule="header_number",
            patients_note="75 records from 32 patients: the patient number in each header's comments",
            physionet="incartdb"),
        Database(
            "edb", "European ST-T Database", "1.0.0", 250.0, (), leads=("MLIII", "MLII", "MLI", "V5", "V4"),
            patient_rule="age_sex",
            patients_note="90 records from 79 subjects, no published table: records whose headers give the same "
                          "age and sex are grouped (never splits a subject, may join two)",
            physionet="edb"),
        Database(
            "ltdb", "MIT-BIH Long-Term ECG Database", "1.0.0", 128.0,
            ("14046", "14134", "14149", "14157", "14172", "14184", "15814"), leads=("ECG1", "ECG2"),
            first_signal_fallback=False, physionet="ltdb"),
        Database(
            "icentia11k", "Icentia11k Single Lead Continuous Raw ECG Dataset", "1.0", 250.0, (),
            leads=("ECG", "ECG1"), patient_rule="icentia",
            patients_note="11,000 patients x up to 50 segments: record pXX/pNNNNN/pNNNNN_sSS, patient pNNNNN",
            physionet="icentia11k-continuous-ecg"),
        Database(
            "nstdb", "MIT-BIH Noise Stress Test Database", "1.0.0", 360.0, (), leads=("MLII", "noise1"),
            symbols=dict(DE_CHAZAL), patients_note="noise records; 118e*/119e* are mitdb 118/119 (DS1)",
            physionet="nstdb", beats=False),
    ]
    return {d.name: d for d in entries}


#: Every database edge-ecg knows, by name.
REGISTRY: dict[str, Database] = _registry()


def get_database(name: str) -> Database:
    """The registry entry ``name``, or a one-line :class:`DataError` listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown database {name!r}; edge-ecg knows {', '.join(REGISTRY)} "
                        f"(or give a folder of WFDB records)") from None


def folder_database(folder: str | Path, db: str | None = None) -> Database:
    """The :class:`Database` describing ``folder``.

    ``db`` names a registry entry explicitly; otherwise a folder named like one (``.../svdb``)
    is that database, and any other folder of WFDB records is a user database named after the
    folder, with :data:`GENERIC_LEADS`, the extended AAMI mapping and one patient per record.
    """
    folder = check_wfdb_dir(folder)
    if db is not None:
        entry = get_database(db)
    elif folder.resolve().name in REGISTRY:
        entry = REGISTRY[folder.resolve().name]
    else:
        entry = Database(folder.resolve().name, f"WFDB records in {folder}", "local", None,
                         patients_note="each record is its own patient (a folder of your own records)")
    from dataclasses import replace

    return replace(entry, folder=folder)


def record_id(db: str, record: str) -> str:
    """``"db/record"``: a record's name wherever records of several databases meet."""
    return f"{db}/{record}"


def split_record_id(rid: str, default_db: str = "mitdb", known: Sequence[str] | None = None) -> tuple[str, str]:
    """``"svdb/800"`` -> ``("svdb", "800")``; a bare name belongs to ``default_db``.

    Only a first part that names a database (of ``known``, default the registry) is split off,
    so Icentia11k's own slashes (``icentia11k/p00/p00000/p00000_s00``) stay in the record name.
    """
    head, sep, rest = rid.partition("/")
    if sep and head in (REGISTRY if known is None else known):
        return head, rest
    return default_db, rid
