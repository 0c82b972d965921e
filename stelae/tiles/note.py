"""Signed notes: https://c2sp.org/signed-note v1.0.0 with the Go sumdb/note rules.

The format, the verifier and signer protocols, and :func:`open_note` / :func:`sign_note` live
here; the concrete key types (Ed25519, ECDSA type 0x02, tlog-cosignature type 0x04) live in
:mod:`stelae.tiles.notekeys`, key IDs and the vkey and private-key strings in
:mod:`stelae.tiles.keystrings`.

A note is ``text || "\\n" || sigline+`` where each signature line is
``"— " || name || " " || b64(key_id4 || sig) || "\\n"``. Parsing (:meth:`Note.parse`) only checks
the format; :func:`open_note` is the one place that decides whether a note is trusted.

Deliberate choices, all on the strict side of Go's ``note.Open``:

- base64 must be canonical (what ``b64encode`` would emit), so a parsed note re-serializes to
  exactly the input bytes and a signature line cannot be re-encoded into a second, distinct line;
- every signature line from a known (name, key ID) pair is verified, including a second line from
  the same key (Go silently keeps only the first);
- vkey key IDs must be 8 *lowercase* hex digits, as every producer emits them.

Pure code: no I/O. Randomness and time are injected where a signer needs them.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stelae.tiles.errors import FormatError, VerificationError

__all__ = [
    "MAX_SIGNATURES",
    "InvalidSignatureError",
    "InvalidVerifierKeyError",
    "MalformedNoteError",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "TimestampedNoteVerifier",
    "UnverifiedNoteError",
    "VerifiedCosignature",
    "VerifiedNote",
    "open_note",
    "sign_note",
]


#: Go rejects notes with more signature lines than this as malformed; C2SP requires >= 16.
MAX_SIGNATURES = 100

_SIG_PREFIX = "— "  # U+2014 EM DASH, then U+0020 SPACE

# Unicode White_Space, which is what Go's unicode.IsSpace tests (Python's str.isspace differs).
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


# --- errors -------------------------------------------------------------------------------------


class MalformedNoteError(FormatError):
    """The bytes are not a well-formed signed note (Go's "malformed note"; signed-note)."""


class InvalidVerifierKeyError(FormatError):
    """A vkey or private-key string is malformed, has an unknown type, or a wrong key ID."""


class InvalidSignatureError(VerificationError):
    """A signature from a known (name, key ID) pair failed to verify; the whole note is rejected.

    ``name`` and ``key_id`` identify the key; ``reason`` says what was wrong, when known.
    """

    def __init__(self, name: str, key_id: int, reason: str | None = None) -> None:
        message = f"invalid signature for key {name}+{key_id:08x}"
        if reason:
            message += f": {reason}"
        super().__init__(message, hint="the note was altered or signed by a different key")
        self.name = name
        self.key_id = key_id
        self.reason = reason


class UnverifiedNoteError(VerificationError):
    """No signature on the note came from a known key (signed-note: MUST reject).

    ``note`` is the parsed, untrusted note, so a caller can report which keys did sign it.
    """

    def __init__(self, note: Note) -> None:
        signers = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        super().__init__(
            f"note has no signature from a known key (signed by: {signers})",
            hint="check that the right verifier keys are configured",
        )
        self.note = note


# --- format -------------------------------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name (signed-note), or None if it is."""
    if not name:
        return "empty key name"
    for ch in name:
        if ch in _UNICODE_SPACES:
            return f"key name {name!r} contains a space"
        if ch == "+":
            return f"key name {name!r} contains '+'"
        if ch < "\x20":
            return f"key name {name!r} contains a control character"
    if not _is_utf8_encodable(name):
        return f"key name {name!r} is not valid UTF-8"
    return None


def _is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


#: Every character below U+0020 except the newline (what signed-note forbids in a note).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a note text (non-empty, ends in "\\n", no controls), or None."""
    if not text or not text.endswith("\n"):
        return "note text must be non-empty and end with a newline"
    if _CONTROL.search(text):
        return "note text contains a control character"
    if not _is_utf8_encodable(text):
        return "note text is not valid UTF-8"
    return None


def check_text(text: str) -> None:
    """Raise :class:`MalformedNoteError` unless ``text`` can be a note's text: what every signer
    checks before signing, so no signature is made over text no verifier would accept."""
    if (problem := _text_problem(text)) is not None:
        raise MalformedNoteError(problem)


def _b64decode_canonical(data: str) -> bytes:
    """Decode standard padded base64, rejecting anything ``b64encode`` would not produce."""
    raw = base64.b64decode(data.encode("ascii"), validate=True)  # ValueError on bad input
    if base64.b64encode(raw).decode("ascii") != data:
        raise ValueError("non-canonical base64")
    return raw


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key ``name``, 32-bit ``key_id`` and the ``signature`` bytes *after*
    the 4-byte key ID (for type 0x04 these start with the 8-byte timestamp)."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        if (problem := _name_problem(self.name)) is not None:
            raise MalformedNoteError(problem)
        if not 0 <= self.key_id <= 0xFFFFFFFF:
            raise MalformedNoteError(f"key ID {self.key_id} is not a uint32")
        if not self.signature:
            # Go requires >= 5 decoded bytes: the key ID and at least one signature byte.
            raise MalformedNoteError(f"empty signature for key {self.name}")

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line, without its trailing newline (signed-note)."""
        if not line.startswith(_SIG_PREFIX):
            raise MalformedNoteError(f"not a signature line: {line[:80]!r}")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64:
            raise MalformedNoteError(f"signature line has no signature: {line[:80]!r}")
        try:
            raw = _b64decode_canonical(b64)
        except ValueError as err:
            raise MalformedNoteError(f"bad base64 in signature by {name!r}: {err}") from err
        if len(raw) < 5:
            raise MalformedNoteError(f"signature by {name!r} is shorter than 5 bytes")
        return cls(name, int.from_bytes(raw[:4], "big"), raw[4:])

    def to_line(self) -> str:
        """The signature line including its trailing newline."""
        b64 = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {b64}\n"


@dataclass(frozen=True)
class Note:
    """A parsed signed note. Valid once constructed; *not* trusted until :func:`open_note`.

    ``text`` is the signed message: non-empty, ends with "\\n", no control characters but "\\n".
    ``signatures`` are in file order, 1 to :data:`MAX_SIGNATURES` of them, no exact duplicates.
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if (problem := _text_problem(self.text)) is not None:
            raise MalformedNoteError(problem)
        if not self.signatures:
            raise MalformedNoteError("a note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
        if len(set(self.signatures)) != len(self.signatures):
            raise MalformedNoteError("duplicate signature lines")

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Parse note bytes, enforcing every rule of signed-note / Go ``note.Open``.

        The text ends at the *last* blank line ("\\n\\n"); the text keeps its final "\\n". More
        than :data:`MAX_SIGNATURES` lines is malformed (counted before de-duplication, like
        Go); exact duplicate lines are then dropped. Raises :class:`MalformedNoteError`.
        """
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedNoteError(f"note is not valid UTF-8: {err}") from err
        if _CONTROL.search(decoded):
            raise MalformedNoteError("note contains a control character other than newline")
        split = decoded.rfind("\n\n")
        if split < 0:
            raise MalformedNoteError("note has no blank line before its signatures")
        text, sigs = decoded[: split + 1], decoded[split + 2 :]
        if not sigs or not sigs.endswith("\n"):
            raise MalformedNoteError("signature block is empty or lacks its final newline")
        lines = sigs[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signatures")
        # dict.fromkeys keeps the first occurrence of each line, in order.
        signatures = tuple(NoteSignature.from_line(line) for line in dict.fromkeys(lines))
        return cls(text, signatures)

    def to_bytes(self) -> bytes:
        """Serialize; ``Note.parse(n.to_bytes()) == n`` for every valid note."""
        lines = "".join(sig.to_line() for sig in self.signatures)
        return f"{self.text}\n{lines}".encode()


# --- keys (implementations live in stelae.tiles.notekeys) ----------------------------------


class NoteVerifier(Protocol):
    """Checks signatures made by one key, identified in notes by (``name``, ``key_id``).

    ``verify(message, signature)`` gets the note text bytes and the signature bytes that follow
    the 4-byte key ID, returns None if the signature is valid, and raises
    :class:`VerificationError` (with a reason) otherwise. It must not raise anything else for
    hostile input.
    """

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> None: ...


#: https://c2sp.org/tlog-cosignature: a cosignature's timestamp MUST be at most 2^63-1.
MAX_COSIGNATURE_TIMESTAMP = 2**63 - 1


def system_clock() -> int:
    """POSIX seconds now: the clock cosigners use unless one is injected."""
    return int(time.time())


def cosignature_time(clock: Callable[[], int]) -> int:
    """The time a new cosignature asserts, read from ``clock`` (POSIX seconds). Raises
    ``ValueError`` for a time no verifier would accept."""
    timestamp = clock()
    if not 0 < timestamp <= MAX_COSIGNATURE_TIMESTAMP:
        # tlog-witness: the timestamp must be non-zero; tlog-cosignature: <= 2^63-1.
        raise ValueError(f"cosignature timestamp {timestamp} out of range")
    return timestamp


@runtime_checkable
class TimestampedNoteVerifier(NoteVerifier, Protocol):
    """A verifier whose signatures carry a signing time (https://c2sp.org/tlog-cosignature)."""

    def timestamp(self, signature: bytes) -> int:
        """POSIX seconds embedded in ``signature``; only meaningful once it verified."""
        ...


class NoteSigner(Protocol):
    """Produces one signature line over a note text for the key (``name``, ``key_id``)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, text: str) -> NoteSignature: ...


# --- signing and opening ------------------------------------------------------------------------


def sign_note(text: str, signers: Sequence[NoteSigner], existing: Note | None = None) -> Note:
    """Sign ``text`` with every signer, like Go ``note.Sign``: ``existing`` signatures come
    first, except those with the same (name, key ID) as a new one, which they replace.

    ``existing`` must carry the same text; its signatures are copied, not verified.
    """
    if existing is not None and existing.text != text:
        raise ValueError("existing note has a different text")
    new = [signer.sign(text) for signer in signers]
    replaced = {(sig.name, sig.key_id) for sig in new}
    kept = [] if existing is None else existing.signatures
    merged = [s for s in kept if (s.name, s.key_id) not in replaced] + new
    return Note(text, tuple(dict.fromkeys(merged)))


@dataclass(frozen=True)
class VerifiedCosignature:
    """A verified timestamped signature and the time it asserts (POSIX seconds)."""

    signature: NoteSignature
    timestamp: int


@dataclass(frozen=True)
class VerifiedNote:
    """A note with at least one verified signature from a known key.

    ``verified`` lists every signature that verified, in note order (unknown ones are in
    ``note.signatures`` only). ``cosignatures`` holds those from timestamped verifiers.
    """

    note: Note
    verified: tuple[NoteSignature, ...]
    cosignatures: tuple[VerifiedCosignature, ...] = ()

    @property
    def text(self) -> str:
        return self.note.text

    def cosignature_time(self, name: str) -> int | None:
        """The timestamp of the verified cosignature by key ``name``, if any."""
        for cosig in self.cosignatures:
            if cosig.signature.name == name:
                return cosig.timestamp
        return None


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> VerifiedNote:
    """Parse ``data`` and verify it against ``verifiers`` (signed-note verification rules).

    Signatures whose (name, key ID) matches no verifier are ignored. Every signature that does
    match is verified and any failure raises :class:`InvalidSignatureError`. If nothing
    verified, raises :class:`UnverifiedNoteError`. Malformed input raises
    :class:`MalformedNoteError`. Passing two different verifiers with the same (name, key ID)
    is a configuration error (``ValueError``).
    """
    known: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in verifiers:
        pair = (verifier.name, verifier.key_id)
        if pair in known and known[pair] != verifier:
            raise ValueError(f"two verifiers for key {pair[0]}+{pair[1]:08x}")
        known[pair] = verifier
    note = Note.parse(data)
    message = note.text.encode()
    verified: list[NoteSignature] = []
    cosignatures: list[VerifiedCosignature] = []
    for sig in note.signatures:
        match = known.get((sig.name, sig.key_id))
        if match is None:
            continue
        try:
            match.verify(message, sig.signature)
        except InvalidSignatureError:
            raise
        except VerificationError as err:
            raise InvalidSignatureError(sig.name, sig.key_id, err.message) from err
        verified.append(sig)
        if isinstance(match, TimestampedNoteVerifier):
            cosignatures.append(VerifiedCosignature(sig, match.timestamp(sig.signature)))
    if not verified:
        raise UnverifiedNoteError(note)
    return VerifiedNote(note, tuple(verified), tuple(cosignatures))
