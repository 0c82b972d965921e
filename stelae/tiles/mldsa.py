"""ML-DSA-44 cosignatures: key type 0x06 of https://c2sp.org/tlog-cosignature@v1.1.0-rc.1.

Unlike the Ed25519 type 0x04 (:mod:`stelae.tiles.notekeys`), the signed message is not the note
text but a binary ``cosigned_message`` that commits to the cosigner's *name*, the timestamp, the
log origin, the leaf range ``[start, end)`` and the root hash::

    "subtree/v1\\n\\0" || u8 len || name || u64 timestamp || u8 len || origin
                       || u64 start || u64 end || hash[32]

A cosignature of a checkpoint has ``start = 0`` and ``end = size``; checkpoint extension lines
are not signed. The signature bytes after the key ID are ``u64 timestamp || 2420-byte ML-DSA-44``.
The key ID is ``SHA-256(name || "\\n" || 0x06 || 1312-byte public key)[:4]``.

The same type is what https://c2sp.org/tlog-checkpoint recommends for a *log's* own checkpoint
signature (since 2026-04): the log is then the "cosigner", its key name the origin. stelae uses
it that way beside the Ed25519 line (docs/compatibility.md, "Post-quantum log signatures"). Such
a key is kept as ``PRIVATE+KEY+<name>+<hex8 key ID>+base64(0x06 || 32-byte seed)``, the shape of
Go's ``note`` private keys; neither spec defines a private-key string for type 0x06.

ML-DSA itself (FIPS 204, pure mode, empty context) comes from ``cryptography``; nothing here
does lattice arithmetic. Pure code: no I/O; the clock and randomness are injected.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

from stelae.tiles.checkpoint import Checkpoint, MalformedCheckpointError
from stelae.tiles.keystrings import (
    check_key_name,
    format_skey,
    format_vkey,
    note_key_id,
    parse_skey,
)
from stelae.tiles.note import (
    MAX_COSIGNATURE_TIMESTAMP,
    InvalidSignatureError,
    InvalidVerifierKeyError,
    NoteSignature,
    check_text,
    cosignature_time,
    system_clock,
)

__all__ = [
    "KEY_TYPE_COSIGNATURE_MLDSA44",
    "MLDSA44CosignatureSigner",
    "MLDSA44CosignatureVerifier",
    "cosigned_message",
    "parse_mldsa_skey",
]

KEY_TYPE_COSIGNATURE_MLDSA44 = 0x06
PUBLIC_KEY_SIZE = 1312
SIGNATURE_SIZE = 2420
_LABEL = b"subtree/v1\n\x00"  # 12 bytes, the spec's uint8 label[12]


def _opaque8(what: str, value: bytes) -> bytes:
    """TLS ``opaque x<1..2^8-1>``: a one-byte length, then the bytes."""
    if not 1 <= len(value) <= 255:
        raise ValueError(f"{what} is {len(value)} bytes; ML-DSA cosignatures allow 1 to 255")
    return bytes([len(value)]) + value


def cosigned_message(
    name: str, timestamp: int, origin: str, *, start: int, end: int, root: bytes
) -> bytes:
    """The ``cosigned_message`` structure of tlog-cosignature v1.1.0-rc.1 §"ML-DSA-44 signed
    message". Raises ``ValueError`` for a name or origin outside 1..255 bytes."""
    if len(root) != 32:
        raise ValueError("the subtree hash is 32 bytes")
    return b"".join(
        [
            _LABEL,
            _opaque8("cosigner name", name.encode()),
            struct.pack(">Q", timestamp),
            _opaque8("log origin", origin.encode()),
            struct.pack(">QQ", start, end),
            root,
        ]
    )


def _checkpoint_message(name: str, timestamp: int, text: bytes) -> bytes:
    """The message a checkpoint cosignature signs: ``start = 0``, ``end = size``."""
    checkpoint = Checkpoint.parse(text.decode("utf-8"))
    return cosigned_message(
        name,
        timestamp,
        checkpoint.origin,
        start=0,
        end=checkpoint.size,
        root=checkpoint.root_hash,
    )


@dataclass(frozen=True)
class MLDSA44CosignatureVerifier:
    """Type 0x06 verifier. ``public_key`` is the 1312-byte FIPS 204 encoding."""

    name: str
    public_key: bytes
    _key: mldsa.MLDSA44PublicKey = field(init=False, repr=False, compare=False)

    key_type = KEY_TYPE_COSIGNATURE_MLDSA44

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.name.encode()) > 255:
            raise InvalidVerifierKeyError("an ML-DSA cosigner name is at most 255 bytes")
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise InvalidVerifierKeyError(
                f"ML-DSA-44 public key is {len(self.public_key)} bytes, not {PUBLIC_KEY_SIZE}"
            )
        try:
            key = mldsa.MLDSA44PublicKey.from_public_bytes(self.public_key)
        except ValueError as err:
            raise InvalidVerifierKeyError(f"not an ML-DSA-44 public key: {err}") from err
        object.__setattr__(self, "_key", key)

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, KEY_TYPE_COSIGNATURE_MLDSA44, self.public_key)

    def timestamp(self, signature: bytes) -> int:
        if len(signature) != 8 + SIGNATURE_SIZE:
            raise InvalidSignatureError(
                self.name, self.key_id, f"ML-DSA-44 cosignature is {len(signature)} bytes"
            )
        return int.from_bytes(signature[:8], "big")

    def verify(self, message: bytes, signature: bytes) -> None:
        timestamp = self.timestamp(signature)
        if timestamp > MAX_COSIGNATURE_TIMESTAMP:
            raise InvalidSignatureError(self.name, self.key_id, "timestamp exceeds 2^63-1")
        try:
            signed = _checkpoint_message(self.name, timestamp, message)
        except (MalformedCheckpointError, UnicodeDecodeError, ValueError) as err:
            # The ML-DSA type signs a checkpoint's fields, so a note that is not a checkpoint
            # (or whose origin is over 255 bytes) cannot carry a valid one.
            raise InvalidSignatureError(self.name, self.key_id, f"not a checkpoint: {err}") from err
        try:
            self._key.verify(signature[8:], signed)
        except InvalidSignature as err:
            raise InvalidSignatureError(self.name, self.key_id, "ML-DSA-44 check failed") from err


@dataclass(frozen=True)
class MLDSA44CosignatureSigner:
    """Type 0x06 cosigner from a 32-byte FIPS 204 seed (keep it secret). ``clock`` returns
    POSIX seconds; tlog-witness requires a non-zero timestamp on checkpoint cosignatures."""

    name: str
    seed: bytes = field(repr=False)
    clock: Callable[[], int] = field(default=system_clock, repr=False, compare=False)
    _key: mldsa.MLDSA44PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.seed) != 32:
            raise InvalidVerifierKeyError("an ML-DSA-44 seed is 32 bytes")
        object.__setattr__(self, "_key", mldsa.MLDSA44PrivateKey.from_seed_bytes(self.seed))

    @classmethod
    def generate(
        cls,
        name: str,
        clock: Callable[[], int] = system_clock,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> Self:
        return cls(name, randbytes(32), clock)

    @property
    def public_key_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, KEY_TYPE_COSIGNATURE_MLDSA44, self.public_key_bytes)

    @classmethod
    def from_skey(cls, skey: str, clock: Callable[[], int] = system_clock) -> Self:
        """Load ``PRIVATE+KEY+name+hex8+base64(0x06 || seed)``, checking the key ID."""
        name, seed = parse_mldsa_skey(skey)
        return cls(name, seed, clock)

    @property
    def skey(self) -> str:
        """The private key string :meth:`from_skey` reads; keep it secret."""
        return format_skey(self.name, self.key_id, KEY_TYPE_COSIGNATURE_MLDSA44, self.seed)

    @property
    def verifier(self) -> MLDSA44CosignatureVerifier:
        return MLDSA44CosignatureVerifier(self.name, self.public_key_bytes)

    @property
    def vkey(self) -> str:
        """``name+hex8+base64(0x06 || public key)`` (https://c2sp.org/signed-note vkeys)."""
        return format_vkey(
            self.name, self.key_id, KEY_TYPE_COSIGNATURE_MLDSA44, self.public_key_bytes
        )

    def sign(self, text: str) -> NoteSignature:
        check_text(text)
        timestamp = cosignature_time(self.clock)
        signature = self._key.sign(_checkpoint_message(self.name, timestamp, text.encode()))
        return NoteSignature(self.name, self.key_id, struct.pack(">Q", timestamp) + signature)


def parse_mldsa_skey(skey: str) -> tuple[str, bytes]:
    """``(name, seed)`` from ``PRIVATE+KEY+name+hex8+base64(0x06 || 32-byte seed)``.

    The key ID is recomputed from the derived public key and must match, so a key string that
    was edited or mixed up with another log's is refused here rather than signing under an ID
    no verifier expects. Raises :class:`InvalidVerifierKeyError` (naming the problem, never the
    key material).
    """
    return parse_skey(
        skey,
        KEY_TYPE_COSIGNATURE_MLDSA44,
        lambda name, seed: MLDSA44CosignatureSigner(name, seed).key_id,
        label="ML-DSA private key",
    )
