"""Downloading MIT-BIH databases from PhysioNet, then verifying every file.

Uses ``wfdb.dl_database`` one record at a time (so progress can be shown), then checks each
file against PhysioNet's ``SHA256SUMS.txt``, which is kept in the folder as ``SHA256SUMS``
so ``edge-ecg data verify`` works later without the network.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from edge_ecg.errors import DataError
from edge_ecg.records.locate import DATABASES, default_data_dir
from edge_ecg.records.verify import VerifyResult, parse_checksums, verify_checksums

#: Databases whose records carry reference beat annotations (``.atr``).
ANNOTATED = {"mitdb": ["atr"], "nstdb": ["atr"]}


def checksum_url(db: str, version: str) -> str:
    """PhysioNet's checksum list for ``db`` at ``version``."""
    from wfdb.io import download

    return f"{download.config.db_index_url.rstrip('/')}/{db}/{version}/SHA256SUMS.txt"


def _network_error(db: str, exc: Exception) -> DataError:
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        reason = "cannot reach physionet.org: no network connection"
    else:
        reason = f"PhysioNet answered: {str(exc)[:100]}"
    return DataError(
        f"cannot download {db} ({reason}); check the network, or copy the files by other means "
        f"and pass --data DIR"
    )


def download_checksums(db: str, version: str) -> dict[str, str]:
    """PhysioNet's ``{file: sha256}`` for ``db``."""
    import requests

    try:
        resp = requests.get(checksum_url(db, version), timeout=30)
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise _network_error(db, exc) from None
    return parse_checksums(resp.text)


def download_record(db: str, name: str, dest: Path, annotators: list[str] | None) -> None:
    """Download one record's header, signal and annotation files into ``dest`` (quietly)."""
    import wfdb

    with contextlib.redirect_stdout(io.StringIO()):
        wfdb.dl_database(db, str(dest), records=[name], annotators=annotators, keep_subdirs=False)


def record_list(db: str) -> list[str]:
    """The record names PhysioNet lists for ``db``."""
    import wfdb

    return list(wfdb.get_record_list(db))


def fetch_database(db: str, dest: str | Path | None = None, records: list[str] | None = None,
                   progress: bool = True) -> VerifyResult:
    """Download ``db`` (``mitdb`` or ``nstdb``) into ``dest`` and verify it.

    ``dest`` defaults to the per-user cache where edge-ecg looks for data. Already
    present, intact files are not downloaded again. Raises :class:`DataError` when
    PhysioNet cannot be reached or a file fails its checksum.
    """
    if db not in DATABASES:
        raise DataError(f"unknown database {db!r}; edge-ecg fetches {', '.join(DATABASES)}")
    dest = Path(dest).expanduser() if dest else default_data_dir(db)
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a folder")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the folder ({exc.strerror})") from None

    import requests
    from tqdm.auto import tqdm

    sums = download_checksums(db, DATABASES[db])
    try:
        names = records or record_list(db)
        for name in tqdm(names, desc=f"downloading {db}", unit="record", disable=not progress):
            download_record(db, name, dest, ANNOTATED.get(db))
    except requests.RequestException as exc:
        raise _network_error(db, exc) from None
    except PermissionError as exc:
        raise DataError(f"{dest}: cannot write ({exc.strerror})") from None

    return finish_download(dest, sums, names, progress=progress)


def finish_download(dest: Path, sums: dict[str, str], names: list[str], progress: bool = True) -> VerifyResult:
    """Write ``SHA256SUMS`` and ``RECORDS`` for what was downloaded, then verify it all."""
    wanted = {rel: digest for rel, digest in sums.items()
              if "/" not in rel and rel.rsplit(".", 1)[0] in set(names)}
    missing = sorted(set(f"{n}.hea" for n in names) - set(wanted))
    if missing:
        raise DataError(f"PhysioNet's checksum list has no entry for {missing[0]}")
    (dest / "SHA256SUMS").write_text("".join(f"{d}  {rel}\n" for rel, d in sorted(wanted.items())))
    (dest / "RECORDS").write_text("".join(f"{n}\n" for n in names))
    result = verify_checksums(dest, progress=progress)
    if not result.passed:
        rel, problem = result.problems[0]
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        raise DataError(f"{dest / rel}: {problem} after download{more}; run the fetch again")
    return result
