"""The base of every error stelae raises on purpose: the one module every package may import.

Every deliberate error derives from :class:`StelaeError`, so each edge (HTTP, CLI, Lambda) turns
errors into statuses or exit codes in exactly one place (docs/architecture.md). The pure core's
own errors (malformed input, a failed check, something missing) are in
:mod:`stelae.tiles.errors`; each package adds its own beside its code.
"""

from __future__ import annotations


class StelaeError(Exception):
    """Base of every error stelae raises deliberately.

    ``hint`` is an optional sentence telling a human what to do about it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message
