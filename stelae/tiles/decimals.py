"""The one parser of decimal numbers found in untrusted text: ASCII digits only.

Python's ``int()``, ``str.isdigit()`` and the regex ``\\d`` accept every Unicode decimal digit, so
``int("٠٠١") == 1`` and ``"１".isdigit()`` is true. The formats stelae reads — tile paths
(https://c2sp.org/tlog-tiles), checkpoint sizes (https://c2sp.org/tlog-checkpoint), protojson
int64 strings, HTTP headers and query parameters — all mean the ASCII digits 0-9, and a canonical
format must give each value one spelling. Every number that arrives as text from a client, a store
or a file goes through :func:`parse_decimal`; nothing else calls ``int()`` on such text.
"""

from __future__ import annotations

import re

from stelae.tiles.errors import FormatError

__all__ = ["MAX_UINT64", "parse_decimal"]

MAX_UINT64 = (1 << 64) - 1

# [0-9], never \d: \d matches Unicode decimal digits too, even in a str pattern.
_CANONICAL = re.compile(r"0|[1-9][0-9]*")
_DIGITS = re.compile(r"[0-9]+")


def parse_decimal(
    text: str, what: str, *, maximum: int = MAX_UINT64, width: int | None = None
) -> int:
    """Parse ``text`` as a non-negative ASCII decimal number no larger than ``maximum``.

    Without ``width`` the spelling must be canonical: ``0`` or no leading zero, no sign, no
    spaces, no underscores. With ``width`` it must be exactly that many ASCII digits (leading
    zeros allowed, as in a tile path's three-digit groups). ``what`` names the value in the
    error. The length is checked before any conversion, so a huge input costs nothing.
    Raises :class:`FormatError`.
    """
    if width is not None:
        ok = len(text) == width and _DIGITS.fullmatch(text) is not None
        shape = f"{width} ASCII digits"
    else:
        ok = len(text) <= len(str(maximum)) and _CANONICAL.fullmatch(text) is not None
        shape = "a canonical ASCII decimal number"
    if not ok:
        raise FormatError(f"{what} {text[:30]!r} is not {shape}")
    value = int(text)
    if value > maximum:
        raise FormatError(f"{what} {value} is larger than {maximum}")
    return value
