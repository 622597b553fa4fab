"""Downloading PhysioNet databases of the registry, then verifying every file.

Uses ``wfdb.dl_database`` one record at a time (so progress can be shown), then checks each
file against PhysioNet's ``SHA256SUMS.txt``, which is kept in the folder as ``SHA256SUMS``
so ``edge-ecg data verify`` works later without the network. A record whose files are all
present and match their checksums is not downloaded again, so an interrupted fetch resumes
where it stopped. Icentia11k (11,000 patients, about 1 TB) is fetched by patient range.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from edge_ecg.errors import DataError
from edge_ecg.records.databases import REGISTRY, get_database
from edge_ecg.records.locate import default_data_dir
from edge_ecg.records.verify import VerifyResult, parse_checksums, sha256_file, verify_checksums


def checksum_url(db: str, version: str) -> str:
    """PhysioNet's checksum list for ``db`` (its PhysioNet name) at ``version``."""
    from wfdb.io import download

    return f"{download.config.db_index_url.rstrip('/')}/{db}/{version}/SHA256SUMS.txt"


def icentia_records(patients: range) -> list[str]:
    """Icentia11k record names of ``patients`` (0-10,999): ``pXX/pNNNNN/pNNNNN_sSS``, 50 segments
    each (PhysioNet's layout; a segment a patient lacks fails its checksum lookup, and is skipped)."""
    if patients.start < 0 or patients.stop > 11000 or len(patients) == 0:
        raise DataError("Icentia11k patients are numbered 0 to 10999; give a range such as 0-99")
    return [f"p{p // 1000:02d}/p{p:05d}/p{p:05d}_s{s:02d}" for p in patients for s in range(50)]


def parse_patient_range(text: str) -> range:
    """``"0-99"`` -> ``range(0, 100)``; ``"7"`` -> ``range(7, 8)``; a one-line :class:`DataError` otherwise."""
    a, _, b = text.strip().partition("-")
    try:
        lo, hi = int(a), int(b or a)
    except ValueError:
        raise DataError(f"--patients {text!r}: give FIRST-LAST, e.g. 0-99") from None
    if hi < lo:
        raise DataError(f"--patients {text!r}: the last patient comes before the first")
    return range(lo, hi + 1)


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
    """Download one record's header, signal and annotation files into ``dest`` (quietly); a
    record in a subfolder (``p00/p00000/p00000_s00``) keeps its subfolders."""
    import wfdb

    with contextlib.redirect_stdout(io.StringIO()):
        wfdb.dl_database(db, str(dest), records=[name], annotators=annotators, keep_subdirs="/" in name)


def record_files(name: str, sums: dict[str, str]) -> dict[str, str]:
    """The checksum entries (relative path -> sha256) of record ``name``'s files."""
    return {rel: d for rel, d in sums.items() if rel.rsplit(".", 1)[0] == name}


def is_complete(dest: Path, name: str, sums: dict[str, str]) -> bool:
    """True when every file of record ``name`` is in ``dest`` and matches its checksum."""
    files = record_files(name, sums)
    return bool(files) and all((dest / rel).is_file() and sha256_file(dest / rel) == d for rel, d in files.items())


def record_list(db: str) -> list[str]:
    """The record names PhysioNet lists for ``db``."""
    import wfdb

    return list(wfdb.get_record_list(db))


def fetch_database(db: str, dest: str | Path | None = None, records: list[str] | None = None,
                   progress: bool = True, patients: range | None = None) -> VerifyResult:
    """Download database ``db`` (a registry name, see ``edge-ecg data info --registry``) into
    ``dest`` and verify it.

    ``dest`` defaults to the per-user cache where edge-ecg looks for data. Records already
    present and intact are not downloaded again. ``patients`` (Icentia11k only, which needs
    it) picks patients by number. Raises :class:`DataError` when PhysioNet cannot be reached
    or a file fails its checksum.
    """
    if db not in REGISTRY:
        raise DataError(f"unknown database {db!r}; edge-ecg fetches {', '.join(REGISTRY)}")
    entry = get_database(db)
    if db == "icentia11k" and patients is None and not records:
        raise DataError("icentia11k is about 1 TB: give --patients FIRST-LAST (e.g. 0-99)")
    if patients is not None and db != "icentia11k":
        raise DataError(f"--patients is for icentia11k only; {db} is fetched whole or with --records")
    dest = Path(dest).expanduser() if dest else default_data_dir(db)
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a folder")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the folder ({exc.strerror})") from None

    import requests
    from tqdm.auto import tqdm

    sums = download_checksums(entry.physionet, entry.version)
    annotators = [entry.annotator] if entry.beats or db == "nstdb" else None
    try:
        if patients is not None:
            names = [n for n in icentia_records(patients) if f"{n}.hea" in sums]
        else:
            names = records or record_list(entry.physionet)
        skipped = 0
        for name in tqdm(names, desc=f"downloading {db}", unit="record", disable=not progress):
            if is_complete(dest, name, sums):
                skipped += 1
                continue
            files = record_files(name, sums)
            wanted = [a for a in (annotators or []) if f"{name}.{a}" in files] if files else annotators
            download_record(entry.physionet, name, dest, wanted or None)
    except requests.RequestException as exc:
        raise _network_error(db, exc) from None
    except PermissionError as exc:
        raise DataError(f"{dest}: cannot write ({exc.strerror})") from None
    if skipped and progress:
        print(f"{skipped} of {len(names)} records were already complete (not downloaded again)")
    return finish_download(dest, sums, names, progress=progress)


def finish_download(dest: Path, sums: dict[str, str], names: list[str], progress: bool = True) -> VerifyResult:
    """Write ``SHA256SUMS`` and ``RECORDS`` for what was downloaded, then verify it all."""
    chosen = set(names)
    wanted = {rel: digest for rel, digest in sums.items() if rel.rsplit(".", 1)[0] in chosen}
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
