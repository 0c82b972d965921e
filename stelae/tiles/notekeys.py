"""Signed-note keys: key IDs, verifier keys (vkeys) and the concrete verifiers and signers.

Ed25519 (type 0x01), ECDSA as in transparency-dev/witness (type 0x02) and Ed25519 timestamped
cosignatures (https://c2sp.org/tlog-cosignature v1, type 0x04); key IDs as in
https://c2sp.org/signed-note and docs/compatibility.md ("Key IDs and log IDs"). The note format and
the protocols these implement are in :mod:`stelae.tiles.note`.

Pure code: no I/O. Randomness and time are injected where a signer needs them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from stelae.tiles.keystrings import (
    check_key_name,
    format_skey,
    format_vkey,
    note_key_id,
    parse_skey,
    split_vkey,
)
from stelae.tiles.mldsa import KEY_TYPE_COSIGNATURE_MLDSA44, MLDSA44CosignatureVerifier
from stelae.tiles.note import (
    MAX_COSIGNATURE_TIMESTAMP,
    InvalidSignatureError,
    InvalidVerifierKeyError,
    NoteSignature,
    check_text,
    cosignature_time,
    system_clock,
)

KEY_TYPE_ED25519 = 0x01
KEY_TYPE_ECDSA = 0x02
KEY_TYPE_COSIGNATURE_V1 = 0x04
_COSIGNATURE_HEADER = b"cosignature/v1\ntime "
_ECDSA_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


# --- key IDs ------------------------------------------------------------------------------------


def rekor_v2_log_id(origin: str, ed25519_public_raw32: bytes) -> bytes:
    """Rekor v2's full 32-byte Ed25519 key hash, ``SHA-256(origin || 0x0A || 0x01 || raw32)``.

    It is ``TransparencyLogEntry.logId.keyId`` and the TrustedRoot ``logId``; its first 4 bytes
    are the note key ID (docs/compatibility.md, "Key IDs and log IDs").
    """
    if len(ed25519_public_raw32) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(origin.encode() + b"\n\x01" + ed25519_public_raw32).digest()


def ecdsa_log_id(spki_der: bytes) -> bytes:
    """``SHA-256(DER SubjectPublicKeyInfo)``: the Rekor v1/v2 ECDSA log ID; its first 4 bytes
    are the note key ID of type 0x02 (docs/compatibility.md); no name and no type byte are
    hashed."""
    return hashlib.sha256(spki_der).digest()


# --- verifiers ----------------------------------------------------------------------------------


def _bad(name: str, key_id: int, reason: str) -> InvalidSignatureError:
    return InvalidSignatureError(name, key_id, reason)


@dataclass(frozen=True)
class _Ed25519Public:
    """The key material both Ed25519 verifiers share: a name and 32 raw public-key bytes; the
    key ID is the recommended one of the subclass's ``key_type``."""

    name: str
    public_key: bytes  # 32 raw bytes
    _key: ed25519.Ed25519PublicKey = field(init=False, repr=False, compare=False)

    key_type: ClassVar[int]

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "_key", _load_ed25519_public(self.public_key))

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, self.key_type, self.public_key)


@dataclass(frozen=True)
class Ed25519NoteVerifier(_Ed25519Public):
    """Type 0x01: Ed25519 over the note text (signed-note §"Ed25519 signatures")."""

    key_type = KEY_TYPE_ED25519

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
    (e.g. ``rekor.sigstage.dev``) is free to differ from the checkpoint origin (signed-note)."""

    name: str
    spki_der: bytes
    _key: ec.EllipticCurvePublicKey = field(init=False, repr=False, compare=False)

    key_type = KEY_TYPE_ECDSA

    def __post_init__(self) -> None:
        check_key_name(self.name)
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
class Ed25519CosignatureVerifier(_Ed25519Public):
    """Type 0x04 (https://c2sp.org/tlog-cosignature v1). Signature bytes are
    ``u64_be(timestamp) || ed25519_sig64`` over
    ``"cosignature/v1\\ntime " || decimal(timestamp) || "\\n" || text``."""

    key_type = KEY_TYPE_COSIGNATURE_V1

    def timestamp(self, signature: bytes) -> int:
        if len(signature) != 72:
            raise _bad(self.name, self.key_id, f"cosignature is {len(signature)} bytes, not 72")
        return int.from_bytes(signature[:8], "big")

    def verify(self, message: bytes, signature: bytes) -> None:
        timestamp = self.timestamp(signature)
        if timestamp > MAX_COSIGNATURE_TIMESTAMP:
            raise _bad(self.name, self.key_id, "cosignature timestamp exceeds 2^63-1")
        try:
            self._key.verify(signature[8:], _cosigned_message(timestamp, message))
        except InvalidSignature as err:
            raise _bad(self.name, self.key_id, "Ed25519 cosignature check failed") from err


def _cosigned_message(timestamp: int, text: bytes) -> bytes:
    return _COSIGNATURE_HEADER + str(timestamp).encode("ascii") + b"\n" + text


def _load_ed25519_public(raw: bytes) -> ed25519.Ed25519PublicKey:
    if len(raw) != 32:
        raise InvalidVerifierKeyError(f"Ed25519 public key is {len(raw)} bytes, not 32")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


VkeyVerifier = (
    Ed25519NoteVerifier
    | ECDSANoteVerifier
    | Ed25519CosignatureVerifier
    | MLDSA44CosignatureVerifier
)


def parse_vkey(vkey: str) -> VkeyVerifier:
    """Parse ``name+hex8(key_id)+b64(type || key)`` (signed-note), as Go ``NewVerifier`` does.

    Splits on the first two '+' only (the base64 may contain '+'), requires exactly 8 lowercase
    hex digits and canonical base64, recomputes the key ID from the key and rejects a mismatch.
    Supported types: 0x01 Ed25519, 0x02 ECDSA (DER SPKI), 0x04 Ed25519 cosignature, 0x06 ML-DSA-44
    cosignature (:mod:`stelae.tiles.mldsa`). Raises
    :class:`InvalidVerifierKeyError`.
    """
    name, key_id, key_type, key_bytes = split_vkey(vkey)
    verifier: VkeyVerifier
    if key_type == KEY_TYPE_ED25519:
        verifier = Ed25519NoteVerifier(name, key_bytes)
    elif key_type == KEY_TYPE_ECDSA:
        verifier = ECDSANoteVerifier(name, key_bytes)
    elif key_type == KEY_TYPE_COSIGNATURE_V1:
        verifier = Ed25519CosignatureVerifier(name, key_bytes)
    elif key_type == KEY_TYPE_COSIGNATURE_MLDSA44:
        # https://c2sp.org/tlog-cosignature@v1.1.0-rc.1: ML-DSA-44 cosignatures, type 0x06.
        verifier = MLDSA44CosignatureVerifier(name, key_bytes)
    else:
        raise InvalidVerifierKeyError(f"vkey has unknown key type 0x{key_type:02x}")
    if verifier.key_id != key_id:
        raise InvalidVerifierKeyError(
            f"vkey key ID {key_id:08x} does not match its key (computed {verifier.key_id:08x})"
        )
    return verifier


def verifier_to_vkey(verifier: VkeyVerifier) -> str:
    """The vkey string for ``verifier``; the inverse of :func:`parse_vkey`."""
    return format_vkey(verifier.name, verifier.key_id, verifier.key_type, verifier.public_key)


# --- signers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ed25519Seed:
    """The key material both Ed25519 signers share. ``seed`` is the 32-byte RFC 8032 private
    key; keep it secret. ``skey`` is Go's ``PRIVATE+KEY+name+hex8+b64(0x01 || seed)``."""

    name: str
    seed: bytes = field(repr=False)
    _key: ed25519.Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    key_type: ClassVar[int]

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.seed) != 32:
            raise InvalidVerifierKeyError("Ed25519 seed must be 32 bytes")
        object.__setattr__(self, "_key", ed25519.Ed25519PrivateKey.from_private_bytes(self.seed))

    @staticmethod
    def _seed_from_skey(skey: str) -> tuple[str, bytes]:
        # Go's PRIVATE+KEY+name+hex8+b64(0x01 || seed32), the key ID that of type 0x01.
        return parse_skey(skey, KEY_TYPE_ED25519, _ed25519_key_id)

    @property
    def public_key_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    @property
    def skey(self) -> str:
        key_id = note_key_id(self.name, KEY_TYPE_ED25519, self.public_key_bytes)
        return format_skey(self.name, key_id, KEY_TYPE_ED25519, self.seed)

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, self.key_type, self.public_key_bytes)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, self.key_id, self.key_type, self.public_key_bytes)


@dataclass(frozen=True)
class Ed25519NoteSigner(_Ed25519Seed):
    """Type 0x01 signer, interoperable with Go ``note.NewSigner`` keys (signed-note)."""

    key_type = KEY_TYPE_ED25519

    @classmethod
    def generate(cls, name: str, randbytes: Callable[[int], bytes] = os.urandom) -> Self:
        """A new key; ``randbytes`` is injectable for deterministic tests."""
        return cls(name, randbytes(32))

    @classmethod
    def from_skey(cls, skey: str) -> Self:
        """Parse Go's private key string, checking its key ID against the derived public key."""
        return cls(*cls._seed_from_skey(skey))

    @property
    def verifier(self) -> Ed25519NoteVerifier:
        return Ed25519NoteVerifier(self.name, self.public_key_bytes)

    def sign(self, text: str) -> NoteSignature:
        check_text(text)
        return NoteSignature(self.name, self.key_id, self._key.sign(text.encode()))

    def sign_bytes(self, message: bytes) -> bytes:
        """A raw Ed25519 signature with the log key, for non-note statements the log makes
        (Rekor v1 signed entry timestamps). Never used on note text."""
        return self._key.sign(message)


@dataclass(frozen=True)
class RekorV1HintSigner:
    """The log key's second checkpoint signature line, under Rekor v1's key hint.

    Rekor v1 names a checkpoint signature by ``SHA-256(DER SubjectPublicKeyInfo)[:4]``, the
    first four bytes of its v1 ``logID``, and Rekor v1 clients (sigstore-python's
    ``verify_checkpoint`` among them) look only for a line under that hint. A stelae checkpoint
    therefore carries the C2SP line (:class:`Ed25519NoteSigner`, key ID per
    https://c2sp.org/signed-note) and this one: the same Ed25519 signature over the same text,
    only the 4-byte hint differs. C2SP verifiers, Go's ``note.Open`` and stelae's own
    :func:`~stelae.tiles.note.open_note` ignore a line whose (name, key ID) they do not know, so
    the extra line costs them nothing (https://c2sp.org/signed-note: unknown keys are ignored).
    """

    log_signer: Ed25519NoteSigner

    @property
    def name(self) -> str:
        return self.log_signer.name

    @property
    def key_id(self) -> int:
        public = ed25519.Ed25519PublicKey.from_public_bytes(self.log_signer.public_key_bytes)
        spki = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return int.from_bytes(ecdsa_log_id(spki)[:4], "big")

    def sign(self, text: str) -> NoteSignature:
        return NoteSignature(self.name, self.key_id, self.log_signer.sign(text).signature)


def _ed25519_key_id(name: str, seed: bytes) -> int:
    return Ed25519NoteSigner(name, seed).key_id


@dataclass(frozen=True)
class Ed25519CosignatureSigner(_Ed25519Seed):
    """Type 0x04 cosigner (tlog-cosignature v1). ``clock`` returns POSIX seconds
    and is injected so tests and witnesses control the timestamp.

    There is no standard private-key string for type 0x04; :meth:`from_skey` accepts (and
    ``skey`` emits) Go's type-0x01 ``PRIVATE+KEY+…`` form, key ID checked as type 0x01.
    """

    clock: Callable[[], int] = field(default=system_clock, repr=False, compare=False)

    key_type = KEY_TYPE_COSIGNATURE_V1

    @classmethod
    def generate(
        cls,
        name: str,
        clock: Callable[[], int] = system_clock,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> Self:
        """A new key; ``randbytes`` is injectable for deterministic tests."""
        return cls(name, randbytes(32), clock)

    @classmethod
    def from_skey(cls, skey: str, clock: Callable[[], int] = system_clock) -> Self:
        return cls(*cls._seed_from_skey(skey), clock)

    @property
    def verifier(self) -> Ed25519CosignatureVerifier:
        return Ed25519CosignatureVerifier(self.name, self.public_key_bytes)

    def sign(self, text: str) -> NoteSignature:
        check_text(text)
        timestamp = cosignature_time(self.clock)
        sig = self._key.sign(_cosigned_message(timestamp, text.encode()))
        return NoteSignature(self.name, self.key_id, timestamp.to_bytes(8, "big") + sig)
