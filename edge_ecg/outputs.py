"""Files a command writes: folders made before the run, contents replaced atomically.

Every output option (``plot --out``, ``explain --out``, ``evaluate --plot``, ``convert --out``,
``stream --jsonl/--save/--summary-json``, ``train --out``) follows one rule: a missing parent folder
is created before any work starts, and a path that cannot be written is a one-line error
then, not after a long run. :func:`write_atomic` writes a file's new contents next to it and
renames it over the old one, so an interruption leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge_ecg.errors import ConfigError


def prepare_output(path: str | Path, option: str = "output") -> Path:
    """Make the parent folder of the file ``path`` (``option`` names it in errors); returns the path."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create the folder {path.parent} ({exc.strerror or exc})") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{option} {path}: the folder {path.parent} is not writable")
    return path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_or_fallback(path: str | Path, data: str | bytes, option: str = "output") -> tuple[Path, str | None]:
    """:func:`write_atomic` ``data`` to ``path``; when that fails (a full disk, a folder made
    read-only during the run), write it to the temporary folder instead. Returns the path
    written and, after a fallback, the one line saying why and where (None when ``path`` was
    written). Raises only if both fail."""
    path = Path(path)
    try:
        return write_atomic(path, data), None
    except OSError as exc:
        why = exc.strerror or str(exc)
    other = Path(tempfile.gettempdir()) / f"edge-ecg-{os.getpid()}-{path.name}"
    write_atomic(other, data)
    return other, f"{option} {path}: {why}; saved to {other} instead"


def disk_error(option: str, path: str | Path, exc: OSError, what: str) -> str:
    """One line for a write that failed during a run: ``option``, ``path``, the system's reason
    and ``what`` was kept (e.g. "the file keeps the first 120 events")."""
    return f"{option} {path}: {exc.strerror or exc}; {what}"


def save_figure(fig, path: str | Path, option: str = "--out", **savefig_kwargs) -> Path:
    """Render a matplotlib ``fig`` to PNG in memory and :func:`write_atomic` it to ``path``: a
    full disk leaves no partial image under the final name, and is one line naming ``option``."""
    import io

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_kwargs)
    try:
        return write_atomic(path, buf.getvalue())
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write the image ({exc.strerror or exc})") from None
