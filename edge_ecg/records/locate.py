"""Where a PhysioNet database is on this machine: the one rule every command and tool uses.

:func:`find_database` looks for database ``db`` in this order:

1. an explicit folder (the CLI's ``--data DIR``; it must be a WFDB folder);
2. ``<root>/<db>`` under a data root holding database folders (``--data-root DIR``);
3. ``<db>`` next to a known database's folder (``../nstdb`` beside ``--data .../mitdb``);
4. ``$EDGE_ECG_DATA/<db>``;
5. ``<per-user cache>/data/<db>``, which is where ``edge-ecg data fetch`` puts it.

:func:`find_data_root` is the same rule for a folder of databases (tools' ``--data-root``).
The module also lists a folder's records (:func:`list_records`) and checks a WFDB folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_ecg.errors import DataError


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
    """The folders searched for ``db`` when no folder, root or neighbour is given, in order:
    ``$EDGE_ECG_DATA/<db>``, then the cache."""
    out = []
    env = os.environ.get("EDGE_ECG_DATA")
    if env:
        out.append(Path(env).expanduser() / db)
    out.append(default_data_dir(db))
    return out


def find_data_root(root: str | Path | None = None, checkout: str | Path | None = None) -> Path:
    """A folder holding database folders (``mitdb/``, ``nstdb/``, ...): ``root`` when given, else
    ``$EDGE_ECG_DATA``, else ``checkout`` (a source checkout's data folder, e.g. ``../shared/data``)
    when given, else the cache's ``data`` folder."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("EDGE_ECG_DATA")
    if env:
        return Path(env).expanduser()
    if checkout is not None:
        return Path(checkout)
    return cache_dir() / "data"


def list_records(db_dir: str | Path) -> list[str]:
    """Record names in ``db_dir``: its ``RECORDS`` file, else every ``*.hea`` stem, sorted."""
    db_dir = Path(db_dir)
    listing = db_dir / "RECORDS"
    if listing.is_file():
        return [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    return sorted(p.stem for p in db_dir.glob("*.hea"))


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


def find_database(db: str = "mitdb", data: str | Path | None = None, root: str | Path | None = None,
                  beside: str | Path | None = None) -> Path:
    """The folder holding database ``db``, by the module's rule.

    ``data``: the folder itself (wins; checked to be WFDB data); ``root``: a folder of database
    folders, used when ``<root>/<db>`` is a folder (then checked); ``beside``: a known database's
    folder, used when ``<beside>/../<db>`` holds WFDB headers; then ``$EDGE_ECG_DATA/<db>`` and
    the cache. Raises a one-line :class:`DataError` saying where it looked.
    """
    if data is not None:
        return check_wfdb_dir(data)
    if root is not None and (Path(root).expanduser() / db).is_dir():
        return check_wfdb_dir(Path(root).expanduser() / db)
    if beside is not None:
        sibling = Path(beside).expanduser().resolve().parent / db
        if is_wfdb_dir(sibling):
            return sibling
    tried = candidate_dirs(db)
    for path in tried:
        if is_wfdb_dir(path):
            return path
    where = ", ".join(str(p) for p in tried)
    raise DataError(
        f"no {db} data found (looked in {where}); run `edge-ecg data fetch --db {db}` "
        f"or pass --data DIR"
    )
