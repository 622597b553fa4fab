"""``edge-ecg data``: get, check and describe the PhysioNet databases."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_ecg.records.locate import DATABASES, default_data_dir, find_database

DB_CHOICE = click.Choice(sorted(DATABASES))


def _resolve(directory: Path | None, db: str, data: Path | None = None) -> Path:
    """The database folder: DIRECTORY or --data (the same thing, as every other command spells it)."""
    if directory is not None and data is not None and Path(directory) != Path(data):
        raise click.UsageError(f"give the folder once: DIRECTORY {directory} or --data {data}")
    folder = directory if directory is not None else data
    return Path(folder) if folder is not None else find_database(db)


DATA_OPTION = click.option("--data", type=click.Path(path_type=Path), default=None,
                           help="The database folder (the same as DIRECTORY).")


@click.group()
def data() -> None:
    """Get, check and describe the MIT-BIH databases.

    \b
    Data is looked for, in order, in:
      1. the DIR you give (one database folder, e.g. ../shared/data/mitdb)
      2. $EDGE_ECG_DATA/<db>   (a folder holding mitdb/ and nstdb/)
      3. the per-user cache, where `edge-ecg data fetch` puts it
    """


@data.command()
@click.option("--db", type=DB_CHOICE, default="mitdb", show_default=True,
              help="mitdb: MIT-BIH Arrhythmia (48 records); nstdb: Noise Stress Test.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to download into. [default: the per-user cache]")
@click.option("--records", default=None, metavar="LIST", help="Only these records, comma separated (e.g. 100,101).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fetch(db: str, dest: Path | None, records: str | None, quiet: bool) -> None:
    """Download a database from PhysioNet and verify every file.

    Files are checked against PhysioNet's SHA256SUMS, which is kept in the folder so
    `data verify` works offline later. Files already present are not downloaded again.

    \b
    Example:
      edge-ecg data fetch --db mitdb                 # ~100 MB into the cache
      edge-ecg data fetch --db nstdb --dest ./data/nstdb
    """
    from edge_ecg.records.fetch import fetch_database

    target = dest or default_data_dir(db)
    names = [r.strip() for r in records.split(",") if r.strip()] if records else None
    result = fetch_database(db, target, records=names, progress=not quiet)
    click.echo(f"{db}: {len(result.ok)} files verified in {target}")


@data.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@DATA_OPTION
@click.option("--db", type=DB_CHOICE, default="mitdb", show_default=True, help="Which database when DIRECTORY is not given.")
def verify(directory: Path | None, data: Path | None, db: str) -> None:
    """Check every file in DIRECTORY against its SHA256SUMS.

    Prints each missing or modified file and exits with status 1 if there is any.

    \b
    Example:
      edge-ecg data verify ../shared/data/mitdb
      edge-ecg data verify --data ../shared/data/nstdb
    """
    from edge_ecg.records.verify import verify_checksums

    folder = _resolve(directory, db, data)
    result = verify_checksums(folder, progress=True)
    for rel, problem in result.problems:
        click.echo(f"BAD  {folder / rel}: {problem}", err=True)
    if not result.passed:
        raise click.ClickException(f"{len(result.problems)} of {len(result.ok) + len(result.problems)} files failed verification in {folder}")
    click.echo(f"OK   {len(result.ok)} files match SHA256SUMS in {folder}")


@data.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@DATA_OPTION
@click.option("--db", type=DB_CHOICE, default="mitdb", show_default=True, help="Which database when DIRECTORY is not given.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(directory: Path | None, data: Path | None, db: str, as_json: bool) -> None:
    """Records, sampling rates, leads, durations and AAMI beat counts.

    Beats are counted per AAMI EC57 class with de Chazal's mapping
    (N = N L R e j, S = A a J S, V = V E, F = F, Q = / f Q), for the whole folder and for
    de Chazal's inter-patient sets DS1 (train) and DS2 (test).

    \b
    Example:
      edge-ecg data info ../shared/data/mitdb
      edge-ecg data info --data ../shared/data/mitdb --json | jq .sets.DS2
    """
    from edge_ecg.records.info import database_info, format_info

    result = database_info(_resolve(directory, db, data), progress=not as_json)
    click.echo(json.dumps(result, indent=2) if as_json else format_info(result))
