"""Record sets: which records of which database a command reads, from a short spec.

``edge-ecg train --train-data SPEC`` (repeatable) and the training configuration's
``train.data`` take specs of the form ``SOURCE[:RECORDS][@WEIGHT]``:

- ``SOURCE`` a registry database name (``mitdb``, ``svdb``, ...; found with ``--data-root``,
  ``$EDGE_ECG_DATA/<name>`` or the ``data fetch`` cache) or a folder of WFDB records (any
  path with a ``/``; a folder named like a registry database is that database);
- ``RECORDS`` a named set (``DS1``), ``all`` (the default: every record but the database's
  excluded ones) or a comma list (``800,802``); ``+`` joins parts;
- ``WEIGHT`` the database's sampling weight in training (default 1): each of its beats is
  drawn ``WEIGHT`` times as often as it otherwise would be.

Examples: ``mitdb:DS1``, ``svdb``, ``svdb@0.5``, ``../shared/data/svdb:800,802``,
``~/my_holter:all@2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edge_ecg.errors import ConfigError, DataError
from edge_ecg.records.databases import REGISTRY, Database, folder_database, record_id
from edge_ecg.records.locate import find_database


@dataclass(frozen=True)
class RecordSet:
    """Records ``records`` of ``database`` (whose ``folder`` is set), read on ``lead``
    (``None``: the database's rule), sampled with ``weight`` in training."""

    database: Database
    records: tuple[str, ...]
    weight: float = 1.0
    lead: str | None = None
    spec: str = ""

    @property
    def name(self) -> str:
        """The database's name, the prefix of this set's record ids."""
        return self.database.name

    @property
    def folder(self) -> Path:
        return Path(self.database.folder)

    def ids(self) -> list[str]:
        """``db/record`` ids of the records."""
        return [record_id(self.name, r) for r in self.records]

    def patients(self) -> dict[str, str]:
        """Record id -> patient id (``db:patient``)."""
        return {record_id(self.name, r): self.database.patient_of(r, self.folder) for r in self.records}

    def describe(self) -> dict:
        """What a run's metadata records about this set."""
        return {"spec": self.spec, "database": self.name, "folder": str(self.folder), "records": list(self.records),
                "weight": self.weight, "lead": self.lead, "patients": len(set(self.patients().values()))}


def parse_spec(spec: str) -> tuple[str, str | None, float]:
    """``"svdb:800,802@0.5"`` -> ``("svdb", "800,802", 0.5)``; one-line :class:`ConfigError` if malformed."""
    text = spec.strip()
    weight = 1.0
    if "@" in text:
        text, _, w = text.rpartition("@")
        try:
            weight = float(w)
        except ValueError:
            raise ConfigError(f"data spec {spec!r}: the weight after @ must be a number, got {w!r}") from None
        if not math.isfinite(weight) or weight <= 0:
            raise ConfigError(f"data spec {spec!r}: the weight must be a positive number")
    source, records = text, None
    head, sep, tail = text.rpartition(":")
    if sep and head and "/" not in tail and "\\" not in tail:
        source, records = head, tail
    if not source:
        raise ConfigError(f"data spec {spec!r}: give a database name or folder, e.g. mitdb:DS1 or svdb")
    return source, records, weight


def resolve_spec(spec: str, data_root: str | Path | None = None, lead: str | None = None,
                 folders: dict[str, str | Path] | None = None) -> RecordSet:
    """The :class:`RecordSet` a spec names, with its records checked to exist.

    ``folders`` maps a registry name to its folder (``{"mitdb": "~/data/mitdb"}``: the CLI's
    ``--data``); ``data_root`` is a folder holding database folders (``<root>/svdb``). A registry
    name is found by :func:`~edge_ecg.records.locate.find_database`'s rule: its folder in
    ``folders``, then ``data_root``, then beside the ``mitdb`` folder of ``folders``, then the usual
    places.
    """
    source, records, weight = parse_spec(spec)
    if source in REGISTRY and not Path(source).is_dir():
        known = folders or {}
        folder = find_database(source, data=known.get(source), root=data_root, beside=known.get("mitdb"))
        database = folder_database(folder, source)
    else:
        database = folder_database(source)
    if not database.beats:
        raise DataError(f"{source}: {database.name} holds no beat annotations to train or score on")
    names = database.select(records, database.folder)
    if not names:
        raise DataError(f"data spec {spec!r} names no records")
    missing = [r for r in names if not (database.folder / f"{r}.hea").is_file()]
    if missing:
        raise DataError(f"{database.folder}: record {missing[0]} not found ({len(missing)} of {len(names)} missing)")
    unannotated = [r for r in names if not (database.folder / f"{r}.{database.annotator}").is_file()]
    if unannotated:
        raise DataError(f"{database.folder}: record {unannotated[0]} has no beat annotations "
                        f"({unannotated[0]}.{database.annotator}; {len(unannotated)} of {len(names)} records lack them)")
    if lead is not None:  # a record without the lead asked for: one line now, not after an hour of building
        from edge_ecg.records.load import read_header

        for r in names:
            database.choose_lead(read_header(database.folder, r).sig_name or (), lead, f"{database.name}/{r}")
    return RecordSet(database, tuple(names), weight, lead, spec)


def resolve_specs(specs, data_root=None, lead: str | None = None, folders=None) -> list[RecordSet]:
    """Several specs; two sets of one database name from different folders are an error."""
    sets = [resolve_spec(s, data_root, lead, folders) for s in specs]
    seen: dict[str, Path] = {}
    for s in sets:
        other = seen.setdefault(s.name, s.folder.resolve())
        if other != s.folder.resolve():
            raise ConfigError(f"two databases named {s.name!r} ({other} and {s.folder}): record ids would clash; "
                              f"rename one folder")
    return sets
