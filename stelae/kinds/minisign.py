"""minisign signatures (Ed25519) over a whole file, for ``rekord``.

Public key: ``base64("Ed" || key_id[8] || ed25519_pk[32])``, optionally after an
``untrusted comment:`` line. Signature file: an untrusted comment line, then
``base64(alg[2] || key_id[8] || sig[64])``, then ``trusted comment: <text>``, then
``base64(global_sig[64])`` where the global signature covers ``sig || <text>``. ``alg`` is "Ed"
(legacy: Ed25519 over the file) or "ED" (prehashed: Ed25519 over BLAKE2b-512 of the file).
Both signatures are checked, as the minisign tool does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae.kinds import keys
from stelae.kinds.errors import InvalidEntryError, SignatureError

_TRUSTED = b"trusted comment: "


def _b64(line: bytes, field: str, what: str) -> bytes:
    try:
        return base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidEntryError(field, f"minisign {what} is not base64") from err


def _lines(data: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in data.strip().split(b"\n") if line.strip()]


def parse_public_key(data: bytes, field: str) -> tuple[bytes, keys.Verifier]:
    """(key id, verifier) from a minisign public key (file or bare base64 line)."""
    lines = [ln for ln in _lines(data) if not ln.startswith(b"untrusted comment:")]
    if len(lines) != 1:
        raise InvalidEntryError(field, "is not a minisign public key")
    raw = _b64(lines[0], field, "public key")
    if len(raw) != 42 or raw[:2] != b"Ed":
        raise InvalidEntryError(field, "is not a minisign Ed25519 public key (42 bytes, 'Ed')")
    key = ed25519.Ed25519PublicKey.from_public_bytes(raw[10:])
    return raw[2:10], keys.Verifier(key)


def public_key_text(key_id: bytes, key: ed25519.Ed25519PublicKey) -> bytes:
    """The minisign public key line (what the log stores as the canonical key)."""
    return base64.b64encode(b"Ed" + key_id + key.public_bytes_raw())


def verify(
    key_id: bytes, verifier: keys.Verifier, signature: bytes, message: bytes, field: str
) -> None:
    lines = _lines(signature)
    if len(lines) != 4 or not lines[0].startswith(b"untrusted comment:"):
        raise InvalidEntryError(field, "is not a minisign signature file (4 lines)")
    if not lines[2].startswith(_TRUSTED):
        raise InvalidEntryError(field, "minisign signature has no trusted comment line")
    sig = _b64(lines[1], field, "signature")
    global_sig = _b64(lines[3], field, "global signature")
    if len(sig) != 74 or len(global_sig) != 64:
        raise InvalidEntryError(field, "minisign signature has the wrong length")
    alg, sig_key_id, raw = sig[:2], sig[2:10], sig[10:]
    if alg not in (b"Ed", b"ED"):
        raise InvalidEntryError(field, f"unsupported minisign algorithm {alg!r}")
    if sig_key_id != key_id:
        raise SignatureError(
            field, f"signed by minisign key {sig_key_id[::-1].hex().upper()}, not the given key"
        )
    signed = hashlib.blake2b(message, digest_size=64).digest() if alg == b"ED" else message
    key = verifier.key
    assert isinstance(key, ed25519.Ed25519PublicKey)
    try:
        key.verify(raw, signed)
    except InvalidSignature as err:
        raise SignatureError(field, "minisign signature does not verify over the artifact") from err
    try:
        key.verify(global_sig, raw + lines[2][len(_TRUSTED) :])
    except InvalidSignature as err:
        raise SignatureError(field, "minisign trusted comment signature does not verify") from err


def sign(
    private_key: ed25519.Ed25519PrivateKey,
    key_id: bytes,
    message: bytes,
    *,
    prehashed: bool = True,
    trusted_comment: str = "timestamp:0",
) -> bytes:
    """A minisign signature file ("ED" prehashed by default, "Ed" legacy otherwise)."""
    alg = b"ED" if prehashed else b"Ed"
    signed = hashlib.blake2b(message, digest_size=64).digest() if prehashed else message
    raw = private_key.sign(signed)
    comment = trusted_comment.encode()
    global_sig = private_key.sign(raw + comment)
    return b"\n".join(
        [
            b"untrusted comment: signature from stelae",
            base64.b64encode(alg + key_id + raw),
            _TRUSTED + comment,
            base64.b64encode(global_sig),
            b"",
        ]
    )
