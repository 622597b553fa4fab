"""``edge-ecg data``: get, check and describe the PhysioNet databases."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_ecg.cli._options import data_option, deprecated_alias, json_option, quiet_option, records_option
from edge_ecg.records.databases import REGISTRY
from edge_ecg.records.locate import default_data_dir, find_database

DB_CHOICE = click.Choice(list(REGISTRY))
DB_HELP = "; ".join(f"{d.name}: {d.title}" for d in REGISTRY.values())


def _resolve(directory: Path | None, data: Path | None, db: str | None) -> Path:
    if directory is not None and data is not None and Path(directory) != Path(data):
        raise click.UsageError("give the folder once: as DIRECTORY or as --data DIR")
    folder = directory if directory is not None else data
    return Path(folder) if folder is not None else find_database(db or "mitdb")


@click.group()
def data() -> None:
    """Get, check and describe PhysioNet databases and your own WFDB folders.

    \b
    Data is looked for, in order, in:
      1. the DIR you give (one database folder, e.g. ../shared/data/mitdb)
      2. $EDGE_ECG_DATA/<db>   (a folder holding mitdb/, svdb/, nstdb/ ...)
      3. the per-user cache, where `edge-ecg data fetch` puts it

    \b
    `edge-ecg data info --registry` lists the databases edge-ecg knows: rate, default lead and
    its fallbacks, how records map to patients, extra beat symbols, excluded records.

    \b
    Examples:
      edge-ecg data fetch --db mitdb                 # into the per-user cache
      edge-ecg data verify --data ../shared/data/mitdb
      edge-ecg data info --registry
    """


@data.command()
@click.option("--db", type=DB_CHOICE, default="mitdb", show_default=True, help=DB_HELP + ".")
@data_option
@deprecated_alias("--dest", "--data DIR", type=click.Path(path_type=Path))
@records_option
@click.option("--patients", default=None, metavar="FIRST-LAST",
              help="icentia11k only (it is about 1 TB): these patients, e.g. 0-99 (50 segments each).")
@quiet_option
def fetch(db: str, data: Path | None, dest: Path | None, records: str | None, patients: str | None,
          quiet: bool) -> None:
    """Download a database from PhysioNet into --data DIR and verify every file.

    Files are checked against PhysioNet's SHA256SUMS, which is kept in the folder so
    `data verify` works offline later. A record already present and intact is not downloaded
    again, so an interrupted fetch picks up where it stopped: just run it again.

    \b
    Examples:
      edge-ecg data fetch --db mitdb                 # ~100 MB into the cache
      edge-ecg data fetch --db svdb                  # 78 records, 128 Hz
      edge-ecg data fetch --db mitdb --records DS1    # only de Chazal's training records
      edge-ecg data fetch --db nstdb --data ./data/nstdb
      edge-ecg data fetch --db icentia11k --patients 0-19 --data ./data/icentia11k
    """
    from edge_ecg.records.fetch import fetch_database, parse_patient_range

    if dest is not None and data is not None and Path(dest) != Path(data):
        raise click.UsageError("give the folder once, as --data DIR (--dest is its old name)")
    target = data or dest or default_data_dir(db)
    names = REGISTRY[db].select(records) if records and records.strip().lower() != "all" else None
    span = parse_patient_range(patients) if patients else None
    result = fetch_database(db, target, records=names, progress=not quiet, patients=span)
    click.echo(f"{db}: {len(result.ok)} files verified in {target}")


@data.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@data_option
@click.option("--db", type=DB_CHOICE, default=None, help="Which database when no folder is given [default: mitdb].")
@quiet_option
def verify(directory: Path | None, data: Path | None, db: str | None, quiet: bool) -> None:
    """Check every file in DIRECTORY (or --data DIR) against its SHA256SUMS.

    Prints each missing or modified file and exits with status 1 if there is any.

    \b
    Examples:
      edge-ecg data verify ../shared/data/mitdb
      edge-ecg data verify --data ../shared/data/svdb
      edge-ecg data verify --db svdb                 # the folder data fetch filled
    """
    from edge_ecg.records.verify import verify_checksums

    folder = _resolve(directory, data, db)
    result = verify_checksums(folder, progress=not quiet)
    for rel, problem in result.problems:
        click.echo(f"BAD  {folder / rel}: {problem}", err=True)
    if not result.passed:
        raise click.ClickException(f"{len(result.problems)} of {len(result.ok) + len(result.problems)} files failed verification in {folder}")
    click.echo(f"OK   {len(result.ok)} files match SHA256SUMS in {folder}")


@data.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@data_option
@click.option("--db", type=DB_CHOICE, default=None,
              help="Which database: the folder to find when none is given [default: mitdb], and the registry entry "
                   "a folder is read as [default: by the folder's name, else your own records].")
@click.option("--registry", is_flag=True, help="List the databases edge-ecg knows instead (no data needed).")
@json_option
@quiet_option
def info(directory: Path | None, data: Path | None, db: str | None, registry: bool, as_json: bool,
         quiet: bool) -> None:
    """Records, patients, sampling rates, leads, durations and AAMI beat counts.

    Beats are counted per AAMI EC57 class with de Chazal's mapping
    (N = N L R e j, S = A a J S, V = V E, F = F, Q = / f Q) plus, outside MIT-BIH, the
    symbols mitdb never uses (B, n as N; r as V; ? as Q), for the whole folder and for the
    database's named sets (de Chazal's DS1 train and DS2 test for MIT-BIH). A folder of your
    own WFDB records works too: the lead is chosen by name (MLII, II, ML2, ECG1, ECG, I, else
    the first signal) and each record is its own patient.

    \b
    Examples:
      edge-ecg data info ../shared/data/mitdb
      edge-ecg data info --data ../shared/data/svdb --json --quiet | jq .sets.all
      edge-ecg data info --registry
    """
    if registry:
        entries = [d.describe() for d in REGISTRY.values()]
        if as_json:
            click.echo(json.dumps(entries, indent=2))
            return
        for e in entries:
            click.echo(f"{e['name']:<11} {e['title']} v{e['version']}, {e['fs']:g} Hz, {e['records']} records; "
                       f"leads {', '.join(e['leads'])}{' (else the first signal)' if e['first_signal_fallback'] else ''}"
                       f"; patients: {e['patients']}"
                       + (f"; excluded {', '.join(e['exclude'])}" if e["exclude"] else "")
                       + (f"; record sets {', '.join(f'{k} ({n})' for k, n in e['sets'].items())}" if e["sets"] else "")
                       + ("" if e["beats"] else "; noise, no beats"))
        return
    from edge_ecg.records.info import database_info, format_info

    folder = _resolve(directory, data, db)
    result = database_info(folder, progress=not quiet, db=db if (directory or data) else None)
    click.echo(json.dumps(result, indent=2) if as_json else format_info(result))
