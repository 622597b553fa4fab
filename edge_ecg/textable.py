"""Plain aligned text tables for terminal reports (no box drawing, so they paste anywhere)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """Rows under headers, columns padded to width.

    ``align`` has one letter per column, ``l`` or ``r``; by default the first column is left
    aligned and the rest right aligned (names, then numbers). ``None`` cells print as ``-``.
    """
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    headers = [str(h) for h in headers]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, align)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)
