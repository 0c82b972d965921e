"""The wire formats of https://c2sp.org/tlog-witness@v1.0.0: the ``add-checkpoint`` request body,
the ``text/x.tlog.size`` body of a 409, and the signature lines of a 200.

A request body is ``old <size>\\n``, zero to 63 base64 proof hashes one per line, a blank line,
then the signed checkpoint note. Both the witness (parsing) and the log (building) use these
values, so the two sides cannot disagree on the format. Pure code: no I/O.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError
from stelae.tiles.note import Note, NoteSignature

__all__ = [
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "MalformedWitnessMessageError",
    "format_signature_lines",
    "format_size_body",
    "parse_signature_lines",
    "parse_size_body",
]

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_MAX_SIZE = 2**63 - 1


class MalformedWitnessMessageError(FormatError):
    """A tlog-witness request or response body does not follow the format."""


def _size(text: str, what: str) -> int:
    try:
        return parse_decimal(text, what, maximum=_MAX_SIZE)
    except FormatError as err:
        raise MalformedWitnessMessageError(str(err)) from err


@dataclass(frozen=True)
class AddCheckpointRequest:
    """``old_size``, the consistency ``proof`` (32-byte hashes) and the signed ``checkpoint``
    note bytes (not verified here: that is the witness's job)."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.old_size <= _MAX_SIZE:
            raise MalformedWitnessMessageError(f"old size {self.old_size} out of range")
        if len(self.proof) > MAX_PROOF_LINES:
            raise MalformedWitnessMessageError(
                f"{len(self.proof)} proof lines; at most {MAX_PROOF_LINES} are allowed"
            )
        if any(len(h) != 32 for h in self.proof):
            raise MalformedWitnessMessageError("every proof hash is 32 bytes")

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpointRequest:
        """Parse a request body; raises :class:`MalformedWitnessMessageError`."""
        head, sep, note = body.partition(b"\n\n")
        if not sep:
            raise MalformedWitnessMessageError("no blank line between the proof and the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError as err:
            raise MalformedWitnessMessageError("the request head is not ASCII") from err
        if not lines[0].startswith("old "):
            raise MalformedWitnessMessageError("the first line is not 'old <size>'")
        old = _size(lines[0][len("old ") :], "old size")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise MalformedWitnessMessageError(f"more than {MAX_PROOF_LINES} proof lines")
        proof: list[bytes] = []
        for line in lines[1:]:
            try:
                raw = base64.b64decode(line, validate=True)
            except ValueError as err:
                raise MalformedWitnessMessageError(
                    f"proof line {line[:60]!r} is not base64"
                ) from err
            if len(raw) != 32 or base64.b64encode(raw).decode() != line:
                raise MalformedWitnessMessageError(f"proof line {line[:60]!r} is not a hash")
            proof.append(raw)
        return cls(old, tuple(proof), note)

    def to_bytes(self) -> bytes:
        """The request body; ``AddCheckpointRequest.parse(r.to_bytes()) == r``."""
        lines = [f"old {self.old_size}"] + [base64.b64encode(h).decode() for h in self.proof]
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint


def format_size_body(size: int) -> bytes:
    """A 409's body: the latest cosigned size in decimal and a newline."""
    return f"{size}\n".encode()


def parse_size_body(body: bytes) -> int:
    """The size in a ``text/x.tlog.size`` body; raises :class:`MalformedWitnessMessageError`."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as err:
        raise MalformedWitnessMessageError("the size body is not ASCII") from err
    if not text.endswith("\n"):
        raise MalformedWitnessMessageError("the size body does not end with a newline")
    return _size(text[:-1], "cosigned size")


def format_signature_lines(signatures: tuple[NoteSignature, ...]) -> bytes:
    """A 200's body: one note signature line per cosignature."""
    return "".join(sig.to_line() for sig in signatures).encode()


def parse_signature_lines(checkpoint_text: str, body: bytes) -> tuple[NoteSignature, ...]:
    """The signature lines of a 200, parsed as the spec suggests: appended to the checkpoint
    text to form a note (so every note rule applies). Raises a ``FormatError``."""
    if not body:
        raise MalformedWitnessMessageError("the witness answered no signature line")
    return Note.parse(checkpoint_text.encode() + b"\n" + body).signatures
