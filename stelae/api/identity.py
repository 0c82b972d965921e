"""The log's public identity as Rekor clients see it: origin, key, log IDs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae.tiles.errors import FormatError
from stelae.tiles.notekeys import Ed25519NoteVerifier, parse_vkey, rekor_v2_log_id
from stelae.tiles.timestamp import v1_log_id


@dataclass(frozen=True)
class LogIdentity:
    origin: str
    public_key: bytes  # raw 32-byte Ed25519

    @classmethod
    def from_vkey(cls, vkey: str) -> LogIdentity:
        verifier = parse_vkey(vkey)
        if not isinstance(verifier, Ed25519NoteVerifier):
            raise FormatError("a stelae log key must be an Ed25519 (type 0x01) note key")
        return cls(verifier.name, verifier.public_key)

    @cached_property
    def verifier(self) -> Ed25519NoteVerifier:
        """The log's note verifier: checkpoints, index manifests."""
        return Ed25519NoteVerifier(self.origin, self.public_key)

    @cached_property
    def v2_key_id(self) -> bytes:
        """``logId.keyId`` of Rekor v2: SHA-256(origin || \\n || 0x01 || key), all 32 bytes."""
        return rekor_v2_log_id(self.origin, self.public_key)

    @cached_property
    def v1_log_id(self) -> str:
        """Rekor v1 ``logID``: hex SHA-256 of the DER SubjectPublicKeyInfo."""
        return v1_log_id(self.public_key)

    @cached_property
    def public_key_pem(self) -> str:
        key = ed25519.Ed25519PublicKey.from_public_bytes(self.public_key)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
