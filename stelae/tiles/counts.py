"""Counted nouns in messages people read: "1 hash", "2 hashes", never "1 hashes"."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it needs; ``plural`` defaults to ``singular + "s"``."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
