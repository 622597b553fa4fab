"""Where a PhysioNet database is looked for on this machine.

In order: an explicit folder (``--data DIR``), then ``$EDGE_ECG_DATA/<db>``, then
``<per-user cache>/data/<db>``, which is where ``edge-ecg data fetch`` puts it.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_ecg.errors import DataError

def _versions() -> dict[str, str]:
    from edge_ecg.records.databases import REGISTRY

    return {name: db.version for name, db in REGISTRY.items()}


#: PhysioNet databases edge-ecg knows (:data:`edge_ecg.records.databases.REGISTRY`), with their versions.
DATABASES: dict[str, str] = _versions()


def cache_dir() -> Path:
    """The per-user cache folder (``$EDGE_ECG_CACHE`` overrides it)."""
    env = os.environ.get("EDGE_ECG_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("edge-ecg"))


def default_data_dir(db: str) -> Path:
    """Where ``data fetch`` puts ``db`` when no ``--data`` is given."""
    return cache_dir() / "data" / db


def candidate_dirs(db: str) -> list[Path]:
    """The folders searched for ``db`` after an explicit ``--data``, in order."""
    out = []
    env = os.environ.get("EDGE_ECG_DATA")
    if env:
        out.append(Path(env).expanduser() / db)
    out.append(default_data_dir(db))
    return out


def is_wfdb_dir(path: Path) -> bool:
    """True when ``path`` is a folder holding at least one WFDB header (``*.hea``)."""
    return path.is_dir() and any(path.glob("*.hea"))


def check_wfdb_dir(path: str | Path) -> Path:
    """``path`` as a Path, or a one-line :class:`DataError` if it is not a WFDB folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such folder")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (give the database folder, e.g. .../mitdb)")
    if not any(path.iterdir()):
        raise DataError(f"{path}: the folder is empty")
    if not is_wfdb_dir(path):
        raise DataError(f"{path}: not WFDB data (no .hea header files)")
    return path


def find_database(db: str = "mitdb", data: str | Path | None = None) -> Path:
    """The folder holding database ``db``.

    ``data`` (the CLI's ``--data``) wins when given; otherwise ``$EDGE_ECG_DATA/<db>`` and
    then the cache are tried. Raises :class:`DataError` saying where it looked.
    """
    if data is not None:
        return check_wfdb_dir(data)
    tried = candidate_dirs(db)
    for path in tried:
        if is_wfdb_dir(path):
            return path
    where = ", ".join(str(p) for p in tried)
    raise DataError(
        f"no {db} data found (looked in {where}); run `edge-ecg data fetch --db {db}` "
        f"or pass --data DIR"
    )
