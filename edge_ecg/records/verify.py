"""Checking a database folder against PhysioNet's SHA-256 checksums."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from edge_ecg.errors import DataError

#: File names PhysioNet (``SHA256SUMS.txt``) and our own copies (``SHA256SUMS``) use.
CHECKSUM_FILES = ("SHA256SUMS", "SHA256SUMS.txt")


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_checksums`: files that matched, and ``(file, problem)`` pairs."""

    folder: Path
    ok: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and bool(self.ok)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def parse_checksums(text: str) -> dict[str, str]:
    """``{relative path: hex digest}`` from ``sha256sum`` output (``<hex>  <path>`` lines)."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"checksum line {n} is malformed: {line[:60]!r}")
        out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def find_checksum_file(folder: Path) -> Path:
    """The checksum file in ``folder``, or a :class:`DataError`."""
    for name in CHECKSUM_FILES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {CHECKSUM_FILES[0]} file to verify against")


def verify_checksums(folder: str | Path, progress: bool = False) -> VerifyResult:
    """Check every file listed in the folder's ``SHA256SUMS``; missing files are problems too."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    expected = parse_checksums(find_checksum_file(folder).read_text())
    result = VerifyResult(folder)
    from tqdm.auto import tqdm

    for rel, digest in tqdm(sorted(expected.items()), desc="verifying", unit="file", disable=not progress, leave=False):
        path = folder / rel
        if not path.is_file():
            result.problems.append((rel, "missing"))
        elif sha256_file(path) != digest:
            result.problems.append((rel, "checksum mismatch (corrupt or modified)"))
        else:
            result.ok.append(rel)
    return result
