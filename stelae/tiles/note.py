"""Signed notes: c2sp.org/signed-note v1.0.0 with the Go sumdb/note rules (specs.md §3),
Ed25519, ECDSA (type 0x02) and tlog-cosignature v1 (type 0x04, specs.md §4) keys.

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
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from stelae.tiles.errors import FormatError, VerificationError

__all__ = [
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ECDSA",
    "KEY_TYPE_ED25519",
    "MAX_SIGNATURES",
    "ECDSANoteVerifier",
    "Ed25519CosignatureSigner",
    "Ed25519CosignatureVerifier",
    "Ed25519NoteSigner",
    "Ed25519NoteVerifier",
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
    "ecdsa_log_id",
    "note_key_id",
    "open_note",
    "parse_vkey",
    "rekor_v2_log_id",
    "sign_note",
    "verifier_to_vkey",
]

KEY_TYPE_ED25519 = 0x01
KEY_TYPE_ECDSA = 0x02
KEY_TYPE_COSIGNATURE_V1 = 0x04

#: Go rejects notes with more signature lines than this as malformed; C2SP requires >= 16.
MAX_SIGNATURES = 100

_SIG_PREFIX = "— "  # U+2014 EM DASH, then U+0020 SPACE
_MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: timestamps MUST be <= 2^63-1
_COSIGNATURE_HEADER = b"cosignature/v1\ntime "

# Unicode White_Space, which is what Go's unicode.IsSpace tests (Python's str.isspace differs).
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ECDSA_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


# --- errors -------------------------------------------------------------------------------------


class MalformedNoteError(FormatError):
    """The bytes are not a well-formed signed note (Go's "malformed note"; specs.md §3)."""


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
    """No signature on the note came from a known key (specs.md §3: MUST reject).

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
    """Why ``name`` is not a valid key name (specs.md §3), or None if it is."""
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


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a note text (non-empty, ends in "\\n", no controls), or None."""
    if not text or not text.endswith("\n"):
        return "note text must be non-empty and end with a newline"
    if any(ch < "\x20" and ch != "\n" for ch in text):
        return "note text contains a control character"
    if not _is_utf8_encodable(text):
        return "note text is not valid UTF-8"
    return None


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
        """Parse one signature line, without its trailing newline (specs.md §3)."""
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
        """Parse note bytes, enforcing every rule of specs.md §3 / Go ``note.Open``.

        The text ends at the *last* blank line ("\\n\\n"); the text keeps its final "\\n". More
        than :data:`MAX_SIGNATURES` lines is malformed (counted before de-duplication, like
        Go); exact duplicate lines are then dropped. Raises :class:`MalformedNoteError`.
        """
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedNoteError(f"note is not valid UTF-8: {err}") from err
        if any(ch < "\x20" and ch != "\n" for ch in decoded):
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


# --- key IDs ------------------------------------------------------------------------------------


def note_key_id(name: str, type_byte: int, key_bytes: bytes) -> int:
    """The recommended key ID: ``uint32_be(SHA-256(name || 0x0A || type || key)[:4])`` (§3).

    Not used for ECDSA type 0x02, whose key ID ignores the name (see :func:`ecdsa_log_id`).
    """
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([type_byte]) + key_bytes).digest()
    return int.from_bytes(digest[:4], "big")


def rekor_v2_log_id(origin: str, ed25519_public_raw32: bytes) -> bytes:
    """Rekor v2's full 32-byte Ed25519 key hash, ``SHA-256(origin || 0x0A || 0x01 || raw32)``.

    It is ``TransparencyLogEntry.logId.keyId`` and the TrustedRoot ``logId``; its first 4 bytes
    are the note key ID (specs.md §3 "How Rekor v2 computes key IDs").
    """
    if len(ed25519_public_raw32) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(origin.encode() + b"\n\x01" + ed25519_public_raw32).digest()


def ecdsa_log_id(spki_der: bytes) -> bytes:
    """``SHA-256(DER SubjectPublicKeyInfo)``: the Rekor v1/v2 ECDSA log ID; its first 4 bytes
    are the note key ID of type 0x02 (specs.md §3). No name and no type byte are hashed."""
    return hashlib.sha256(spki_der).digest()


# --- verifiers ----------------------------------------------------------------------------------


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


@runtime_checkable
class TimestampedNoteVerifier(NoteVerifier, Protocol):
    """A verifier whose signatures carry a signing time (cosignatures, specs.md §4)."""

    def timestamp(self, signature: bytes) -> int:
        """POSIX seconds embedded in ``signature``; only meaningful once it verified."""
        ...


def _bad(name: str, key_id: int, reason: str) -> InvalidSignatureError:
    return InvalidSignatureError(name, key_id, reason)


@dataclass(frozen=True)
class Ed25519NoteVerifier:
    """Type 0x01: Ed25519 over the note text (signed-note §"Ed25519 signatures")."""

    name: str
    public_key: bytes  # 32 raw bytes
    _key: ed25519.Ed25519PublicKey = field(init=False, repr=False, compare=False)

    key_type = KEY_TYPE_ED25519

    def __post_init__(self) -> None:
        _check_verifier_name(self.name)
        object.__setattr__(self, "_key", _load_ed25519_public(self.public_key))

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, KEY_TYPE_ED25519, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != 64:
            raise _bad(self.name, self.key_id, f"Ed25519 signature is {len(signature)} bytes")
        try:
            self._key.verify(signature, message)
        except InvalidSignature as err:
            raise _bad(self.name, self.key_id, "Ed25519 check failed") from err


@dataclass(frozen=True)
class ECDSANoteVerifier:
    """Type 0x02 (transparency-dev/witness, Rekor v1): a DER ECDSA signature over
    SHA-256(text) on P-256, P-384 or P-521. The key ID is ``SHA-256(SPKI)[:4]``, so the name
    (e.g. ``rekor.sigstage.dev``) is free to differ from the checkpoint origin (specs.md §3)."""

    name: str
    spki_der: bytes
    _key: ec.EllipticCurvePublicKey = field(init=False, repr=False, compare=False)

    key_type = KEY_TYPE_ECDSA

    def __post_init__(self) -> None:
        _check_verifier_name(self.name)
        try:
            key = serialization.load_der_public_key(self.spki_der)
        except (ValueError, UnsupportedAlgorithm) as err:
            raise InvalidVerifierKeyError(f"ECDSA key is not a DER SPKI: {err}") from err
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, _ECDSA_CURVES
        ):
            raise InvalidVerifierKeyError("type 0x02 keys must be ECDSA P-256, P-384 or P-521")
        canonical = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if canonical != self.spki_der:
            # The key ID hashes these exact bytes, so only one encoding may be accepted.
            raise InvalidVerifierKeyError("ECDSA SPKI is not in canonical uncompressed DER form")
        object.__setattr__(self, "_key", key)

    @property
    def key_id(self) -> int:
        return int.from_bytes(ecdsa_log_id(self.spki_der)[:4], "big")

    @property
    def public_key(self) -> bytes:
        return self.spki_der

    def verify(self, message: bytes, signature: bytes) -> None:
        digest = hashlib.sha256(message).digest()
        try:
            self._key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError) as err:
            raise _bad(self.name, self.key_id, "ECDSA check failed") from err


@dataclass(frozen=True)
class Ed25519CosignatureVerifier:
    """Type 0x04 (tlog-cosignature v1, specs.md §4). Signature bytes are
    ``u64_be(timestamp) || ed25519_sig64`` over
    ``"cosignature/v1\\ntime " || decimal(timestamp) || "\\n" || text``."""

    name: str
    public_key: bytes  # 32 raw bytes
    _key: ed25519.Ed25519PublicKey = field(init=False, repr=False, compare=False)

    key_type = KEY_TYPE_COSIGNATURE_V1

    def __post_init__(self) -> None:
        _check_verifier_name(self.name)
        object.__setattr__(self, "_key", _load_ed25519_public(self.public_key))

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, KEY_TYPE_COSIGNATURE_V1, self.public_key)

    def timestamp(self, signature: bytes) -> int:
        if len(signature) != 72:
            raise _bad(self.name, self.key_id, f"cosignature is {len(signature)} bytes, not 72")
        return int.from_bytes(signature[:8], "big")

    def verify(self, message: bytes, signature: bytes) -> None:
        timestamp = self.timestamp(signature)
        if timestamp > _MAX_TIMESTAMP:
            raise _bad(self.name, self.key_id, "cosignature timestamp exceeds 2^63-1")
        try:
            self._key.verify(signature[8:], _cosigned_message(timestamp, message))
        except InvalidSignature as err:
            raise _bad(self.name, self.key_id, "Ed25519 cosignature check failed") from err


def _cosigned_message(timestamp: int, text: bytes) -> bytes:
    return _COSIGNATURE_HEADER + str(timestamp).encode("ascii") + b"\n" + text


def _check_verifier_name(name: str) -> None:
    if (problem := _name_problem(name)) is not None:
        raise InvalidVerifierKeyError(problem)


def _load_ed25519_public(raw: bytes) -> ed25519.Ed25519PublicKey:
    if len(raw) != 32:
        raise InvalidVerifierKeyError(f"Ed25519 public key is {len(raw)} bytes, not 32")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


VkeyVerifier = Ed25519NoteVerifier | ECDSANoteVerifier | Ed25519CosignatureVerifier


def parse_vkey(vkey: str) -> VkeyVerifier:
    """Parse ``name+hex8(key_id)+b64(type || key)`` (specs.md §3), as Go ``NewVerifier`` does.

    Splits on the first two '+' only (the base64 may contain '+'), requires exactly 8 lowercase
    hex digits and canonical base64, recomputes the key ID from the key and rejects a mismatch.
    Supported types: 0x01 Ed25519, 0x02 ECDSA (DER SPKI), 0x04 Ed25519 cosignature. Raises
    :class:`InvalidVerifierKeyError`.
    """
    name, sep1, rest = vkey.partition("+")
    hex8, sep2, b64 = rest.partition("+")
    if not sep1 or not sep2:
        raise InvalidVerifierKeyError(f"vkey {vkey!r} is not name+keyid+key")
    _check_verifier_name(name)
    if len(hex8) != 8 or any(c not in "0123456789abcdef" for c in hex8):
        raise InvalidVerifierKeyError(f"vkey key ID {hex8!r} is not 8 lowercase hex digits")
    try:
        key = _b64decode_canonical(b64)
    except ValueError as err:
        raise InvalidVerifierKeyError(f"vkey key is not valid base64: {err}") from err
    if not key:
        raise InvalidVerifierKeyError("vkey key is empty")
    verifier: VkeyVerifier
    key_type, key_bytes = key[0], key[1:]
    if key_type == KEY_TYPE_ED25519:
        verifier = Ed25519NoteVerifier(name, key_bytes)
    elif key_type == KEY_TYPE_ECDSA:
        verifier = ECDSANoteVerifier(name, key_bytes)
    elif key_type == KEY_TYPE_COSIGNATURE_V1:
        verifier = Ed25519CosignatureVerifier(name, key_bytes)
    else:
        raise InvalidVerifierKeyError(f"vkey has unknown key type 0x{key_type:02x}")
    if verifier.key_id != int(hex8, 16):
        raise InvalidVerifierKeyError(
            f"vkey key ID {hex8} does not match its key (computed {verifier.key_id:08x})"
        )
    return verifier


def verifier_to_vkey(verifier: VkeyVerifier) -> str:
    """The vkey string for ``verifier``; the inverse of :func:`parse_vkey`."""
    key = base64.b64encode(bytes([verifier.key_type]) + verifier.public_key).decode("ascii")
    return f"{verifier.name}+{verifier.key_id:08x}+{key}"


# --- signers ------------------------------------------------------------------------------------


class NoteSigner(Protocol):
    """Produces one signature line over a note text for the key (``name``, ``key_id``)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, text: str) -> NoteSignature: ...


def _parse_skey(skey: str) -> tuple[str, int, bytes]:
    """Parse Go's ``PRIVATE+KEY+name+hex8+b64(0x01 || seed32)``; the key ID is not checked."""
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise InvalidVerifierKeyError("private key is not PRIVATE+KEY+name+keyid+key")
    name, hex8, b64 = parts[2], parts[3], parts[4]
    _check_verifier_name(name)
    if len(hex8) != 8 or any(c not in "0123456789abcdef" for c in hex8):
        raise InvalidVerifierKeyError(f"private key ID {hex8!r} is not 8 lowercase hex digits")
    try:
        key = _b64decode_canonical(b64)
    except ValueError as err:
        raise InvalidVerifierKeyError(f"private key is not valid base64: {err}") from err
    if len(key) != 33 or key[0] != KEY_TYPE_ED25519:
        raise InvalidVerifierKeyError("private key must be type 0x01 with a 32-byte seed")
    return name, int(hex8, 16), key[1:]


def _format_skey(name: str, seed: bytes) -> str:
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    key_id = note_key_id(name, KEY_TYPE_ED25519, public)
    key = base64.b64encode(bytes([KEY_TYPE_ED25519]) + seed).decode("ascii")
    return f"PRIVATE+KEY+{name}+{key_id:08x}+{key}"


@dataclass(frozen=True)
class _Ed25519Seed:
    """The key material both Ed25519 signers share. ``seed`` is the 32-byte RFC 8032 private
    key; keep it secret. ``skey`` is Go's ``PRIVATE+KEY+name+hex8+b64(0x01 || seed)``."""

    name: str
    seed: bytes = field(repr=False)
    _key: ed25519.Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_verifier_name(self.name)
        if len(self.seed) != 32:
            raise InvalidVerifierKeyError("Ed25519 seed must be 32 bytes")
        object.__setattr__(self, "_key", ed25519.Ed25519PrivateKey.from_private_bytes(self.seed))

    @staticmethod
    def _seed_from_skey(skey: str) -> tuple[str, bytes]:
        name, key_id, seed = _parse_skey(skey)
        if Ed25519NoteSigner(name, seed).key_id != key_id:
            raise InvalidVerifierKeyError(f"private key ID {key_id:08x} does not match its key")
        return name, seed

    @property
    def public_key_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    @property
    def skey(self) -> str:
        return _format_skey(self.name, self.seed)


@dataclass(frozen=True)
class Ed25519NoteSigner(_Ed25519Seed):
    """Type 0x01 signer, interoperable with Go ``note.NewSigner`` keys (specs.md §3)."""

    @classmethod
    def generate(cls, name: str, randbytes: Callable[[int], bytes] = os.urandom) -> Self:
        """A new key; ``randbytes`` is injectable for deterministic tests."""
        return cls(name, randbytes(32))

    @classmethod
    def from_skey(cls, skey: str) -> Self:
        """Parse Go's private key string, checking its key ID against the derived public key."""
        return cls(*cls._seed_from_skey(skey))

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, KEY_TYPE_ED25519, self.public_key_bytes)

    @property
    def verifier(self) -> Ed25519NoteVerifier:
        return Ed25519NoteVerifier(self.name, self.public_key_bytes)

    @property
    def vkey(self) -> str:
        return verifier_to_vkey(self.verifier)

    def sign(self, text: str) -> NoteSignature:
        if (problem := _text_problem(text)) is not None:
            raise MalformedNoteError(problem)
        return NoteSignature(self.name, self.key_id, self._key.sign(text.encode()))

    def sign_bytes(self, message: bytes) -> bytes:
        """A raw Ed25519 signature with the log key, for non-note statements the log makes
        (Rekor v1 signed entry timestamps). Never used on note text."""
        return self._key.sign(message)


def _system_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Ed25519CosignatureSigner(_Ed25519Seed):
    """Type 0x04 cosigner (tlog-cosignature v1, specs.md §4). ``clock`` returns POSIX seconds
    and is injected so tests and witnesses control the timestamp.

    There is no standard private-key string for type 0x04; :meth:`from_skey` accepts (and
    ``skey`` emits) Go's type-0x01 ``PRIVATE+KEY+…`` form, key ID checked as type 0x01.
    """

    clock: Callable[[], int] = field(default=_system_clock, repr=False, compare=False)

    @classmethod
    def generate(
        cls,
        name: str,
        clock: Callable[[], int] = _system_clock,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> Self:
        """A new key; ``randbytes`` is injectable for deterministic tests."""
        return cls(name, randbytes(32), clock)

    @classmethod
    def from_skey(cls, skey: str, clock: Callable[[], int] = _system_clock) -> Self:
        return cls(*cls._seed_from_skey(skey), clock)

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, KEY_TYPE_COSIGNATURE_V1, self.public_key_bytes)

    @property
    def verifier(self) -> Ed25519CosignatureVerifier:
        return Ed25519CosignatureVerifier(self.name, self.public_key_bytes)

    @property
    def vkey(self) -> str:
        return verifier_to_vkey(self.verifier)

    def sign(self, text: str) -> NoteSignature:
        if (problem := _text_problem(text)) is not None:
            raise MalformedNoteError(problem)
        timestamp = self.clock()
        if not 0 < timestamp <= _MAX_TIMESTAMP:
            # tlog-witness: the timestamp must be non-zero; tlog-cosignature: <= 2^63-1.
            raise ValueError(f"cosignature timestamp {timestamp} out of range")
        sig = self._key.sign(_cosigned_message(timestamp, text.encode()))
        return NoteSignature(self.name, self.key_id, timestamp.to_bytes(8, "big") + sig)


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
    """Parse ``data`` and verify it against ``verifiers`` (specs.md §3 verification rules).

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
