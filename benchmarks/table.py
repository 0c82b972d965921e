"""Plain-text tables for the benchmark printers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO


def fmt(value: object, digits: int = 3) -> str:
    """A number as a table cell: ints with thousands separators, floats to ``digits`` figures."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 10**digits:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def table(out: TextIO, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Right-aligned columns under a header, numbers through :func:`fmt`."""
    cells = [list(header), *[[fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)
