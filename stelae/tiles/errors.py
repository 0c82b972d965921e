"""The pure core's typed errors: malformed input, a failed check, something missing.

They derive from :class:`stelae.errors.StelaeError`, the base every package shares, so each edge
(HTTP, CLI, Lambda) turns errors into statuses or exit codes in exactly one place. Verification
failures carry their evidence as attributes, never only a message.
"""

from __future__ import annotations

from stelae.errors import StelaeError


class FormatError(StelaeError, ValueError):
    """Input does not follow the format it claims (note, checkpoint, tile, path…)."""


class VerificationError(StelaeError):
    """Something well-formed failed a cryptographic or Merkle check."""


class NotFoundError(StelaeError, LookupError):
    """A resource (tile, bundle, checkpoint, object) does not exist."""
