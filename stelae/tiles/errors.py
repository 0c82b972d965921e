"""Typed errors shared by every layer of stelae.

Every error stelae raises on purpose derives from :class:`StelaeError`, so each edge (HTTP, CLI,
Lambda) turns errors into statuses or exit codes in exactly one place. Verification failures carry
their evidence as attributes, never only a message.
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


class FormatError(StelaeError, ValueError):
    """Input does not follow the format it claims (note, checkpoint, tile, path…)."""


class VerificationError(StelaeError):
    """Something well-formed failed a cryptographic or Merkle check."""


class NotFoundError(StelaeError, LookupError):
    """A resource (tile, bundle, checkpoint, object) does not exist."""
