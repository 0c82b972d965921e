"""Errors for entry kinds: what is wrong with a submitted entry, and where.

Every error names the offending field as a JSON path (``spec.signature.content``,
``hashedRekordRequestV002.signature.verifier.keyDetails``, ``envelope.signatures[1].sig``) so the
write API can answer a 400 that says exactly what to fix, and the CLI can print the same thing.
"""

from __future__ import annotations

from stelae.tiles.errors import FormatError, VerificationError


class InvalidEntryError(FormatError):
    """A proposed entry or a stored body does not follow its kind's format.

    ``field`` is a JSON path into the object that was given ("" for the object itself);
    ``problem`` is a sentence about that field. ``str(err)`` is ``"<field>: <problem>"``.
    """

    def __init__(self, field: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{field}: {problem}" if field else problem, hint=hint)
        self.field = field
        self.problem = problem


class SignatureError(InvalidEntryError, VerificationError):
    """A well-formed entry whose signature does not verify with the key or certificate it names.

    It is an :class:`InvalidEntryError` (the write API answers 400 and queues nothing) and a
    :class:`~stelae.tiles.errors.VerificationError` (the CLI reports a failed check).
    """
