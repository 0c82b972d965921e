"""Checkpoints: https://c2sp.org/tlog-checkpoint v1.0.0, carried in signed notes.

The body is ``origin\\n`` ``size\\n`` ``b64(root)\\n`` then optional non-empty extension lines.
:class:`Checkpoint` is the value; :func:`open_checkpoint` is the only way to get one from
untrusted bytes *and* trust it. Pure code: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.note import (
    Note,
    NoteSigner,
    NoteVerifier,
    UnverifiedNoteError,
    VerifiedNote,
    open_note,
    sign_note,
)

__all__ = [
    "Checkpoint",
    "CheckpointMismatchError",
    "MalformedCheckpointError",
    "MissingLogSignatureError",
    "SignedCheckpoint",
    "open_checkpoint",
    "sign_checkpoint",
]

# Go's tlog uses int64 tree sizes; larger values could not be read by Go clients.
_MAX_SIZE = 2**63 - 1


class MalformedCheckpointError(FormatError):
    """A note text is not a tlog-checkpoint (https://c2sp.org/tlog-checkpoint)."""


class CheckpointMismatchError(VerificationError):
    """A validly signed checkpoint is for a different log: its origin line is not the one the
    caller expected. Carries ``expected`` and ``actual`` origins."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"checkpoint origin {actual!r} is not the expected {expected!r}",
            hint="the checkpoint belongs to another log (or another shard)",
        )
        self.expected = expected
        self.actual = actual


class MissingLogSignatureError(VerificationError):
    """A checkpoint lacks a valid signature from a log key the caller requires: one of several
    pinned keys (Ed25519 and ML-DSA-44, say) did not sign it. Carries the ``missing`` keys as
    ``name+hex8`` strings."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            f"the checkpoint has no signature from the log key(s) {', '.join(missing)}",
            hint="every --vkey given must have signed it; the log may not use that key (yet)",
        )
        self.missing = tuple(missing)


def _line_problem(what: str, line: str) -> str | None:
    if not line:
        return f"empty {what}"
    if any(ch < "\x20" for ch in line):  # includes "\n": one value, one line
        return f"{what} contains a newline or control character"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} is not valid UTF-8"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``origin`` (the log's identity), ``size`` (number of leaves), the 32-byte
    RFC 6962 ``root_hash``, and opaque non-empty ``extensions`` lines (NOT RECOMMENDED)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (problem := _line_problem("origin", self.origin)) is not None:
            raise MalformedCheckpointError(problem)
        if not 0 <= self.size <= _MAX_SIZE:
            raise MalformedCheckpointError(f"tree size {self.size} out of range")
        if len(self.root_hash) != 32:
            raise MalformedCheckpointError(f"root hash is {len(self.root_hash)} bytes, not 32")
        for ext in self.extensions:
            if (problem := _line_problem("extension line", ext)) is not None:
                raise MalformedCheckpointError(problem)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (a note text): at least 3 lines, each ending in "\\n", the
        size in canonical ASCII decimal, the root as canonical b64 of 32 bytes (tlog-checkpoint).
        Raises :class:`MalformedCheckpointError`."""
        if not text.endswith("\n"):
            raise MalformedCheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError(f"checkpoint has {len(lines)} lines, needs 3")
        origin, size_line, root_line, *extensions = lines
        try:
            size = parse_decimal(size_line, "tree size", maximum=_MAX_SIZE)
        except FormatError as err:
            raise MalformedCheckpointError(str(err)) from err
        try:
            root = base64.b64decode(root_line.encode("ascii"), validate=True)
        except ValueError as err:
            raise MalformedCheckpointError(f"root hash is not base64: {err}") from err
        if base64.b64encode(root).decode("ascii") != root_line:
            raise MalformedCheckpointError("root hash is not canonical base64")
        return cls(origin, size, root, tuple(extensions))

    def to_text(self) -> str:
        """The note text; ``Checkpoint.parse(c.to_text()) == c``."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose note verified against trusted keys; built by :func:`open_checkpoint`.

    ``note.verified`` lists the signatures that verified and ``note.cosignatures`` the
    timestamps of the timestamped ones: the witnesses', and the log's own ML-DSA-44 line when
    its key was given (filter by key, as :class:`~stelae.tiles.policy.Policy` does);
    ``note.note.to_bytes()`` re-serializes the signed note exactly.
    """

    checkpoint: Checkpoint
    note: VerifiedNote

    def to_bytes(self) -> bytes:
        return self.note.note.to_bytes()


def open_checkpoint(
    data: bytes,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    *,
    witnesses: Sequence[NoteVerifier] = (),
    require_all: bool = False,
) -> SignedCheckpoint:
    """Verify a signed checkpoint from log ``origin`` (tlog-checkpoint and signed-note).

    At least one signature from ``verifiers`` (the log's keys) must verify — with
    ``require_all``, one from each of them, else :class:`MissingLogSignatureError`: a client
    that pins both a log's Ed25519 and ML-DSA-44 keys then cannot be fed a note whose ML-DSA
    line was stripped and whose Ed25519 line was forged. Signatures from
    ``witnesses`` are verified too when present (cosignature timestamps end up in
    ``note.cosignatures``) but never count as the log's own. A failing known signature raises
    :class:`~stelae.tiles.note.InvalidSignatureError`, no log signature raises
    :class:`~stelae.tiles.note.UnverifiedNoteError`, a body that is not a checkpoint raises
    :class:`MalformedCheckpointError` and a different first line raises
    :class:`CheckpointMismatchError`. The key name need not equal the origin (Rekor v1).
    """
    verified = open_note(data, [*verifiers, *witnesses])
    log_keys = {(v.name, v.key_id) for v in verifiers}
    signed = {(s.name, s.key_id) for s in verified.verified}
    if not log_keys & signed:
        raise UnverifiedNoteError(verified.note)
    if require_all and (missing := sorted(log_keys - signed)):
        raise MissingLogSignatureError([f"{name}+{key_id:08x}" for name, key_id in missing])
    checkpoint = Checkpoint.parse(verified.text)
    if checkpoint.origin != origin:
        raise CheckpointMismatchError(origin, checkpoint.origin)
    return SignedCheckpoint(checkpoint, verified)


def sign_checkpoint(
    checkpoint: Checkpoint, signer: NoteSigner, existing: Note | None = None
) -> bytes:
    """The signed note bytes for ``checkpoint``; ``existing`` signatures (e.g. cosignatures of
    the same text) are kept first, as in :func:`~stelae.tiles.note.sign_note`."""
    return sign_note(checkpoint.to_text(), [signer], existing).to_bytes()
