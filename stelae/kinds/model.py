"""The one internal model of a log entry that the write API, the sequencer and the CLI share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Kinds and versions this package can parse.
KINDS: dict[str, tuple[str, ...]] = {
    "hashedrekord": ("0.0.1", "0.0.2"),
    "dsse": ("0.0.1", "0.0.2"),
    "rekord": ("0.0.1",),
}


@dataclass(frozen=True)
class Entry:
    """A validated, signature-checked entry and what the lookup indexes need from it.

    Built only by :func:`stelae.kinds.from_v1_proposed`, :func:`stelae.kinds.from_v2_request` and
    :func:`stelae.kinds.from_body`; ``body`` is canonical (RFC 8785) and at most 65,535 bytes.
    """

    kind: str
    api_version: str
    #: The canonical JSON body: this is the Merkle leaf.
    body: bytes
    #: ``"<alg>:<lowercase hex>"`` for each artifact digest the entry commits to (sha256/384/512).
    artifact_digests: tuple[str, ...]
    #: Lowercase hex SHA-256 of each verifier's DER SubjectPublicKeyInfo (see keys.fingerprint).
    key_fingerprints: tuple[str, ...]
    #: Certificate SAN emails (lowercased) and URIs; OpenPGP user-ID emails. Empty for bare keys.
    identities: tuple[str, ...]

    @property
    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash: SHA-256(0x00 || body)."""
        return hashlib.sha256(b"\x00" + self.body).digest()

    @property
    def uuid(self) -> str:
        """Rekor's entry UUID: the hex leaf hash."""
        return self.leaf_hash.hex()


def dedupe(items: list[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats (index keys must not repeat)."""
    return tuple(dict.fromkeys(items))
