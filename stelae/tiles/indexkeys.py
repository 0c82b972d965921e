"""What a lookup-index key is: its kind, its one normalized spelling, and its 16-byte index key.

docs/index.md ("Keys") is the reference. Every (kind, value) pair is normalized before it is
hashed, so a lookup for ``SHA256:ABC…`` and an entry that recorded ``sha256:abc…`` meet at the
same index key. The normalizations are those the per-key index objects of older logs used
(docs/layout.md): digests as ``<alg>:<lower hex>`` (a bare 64-digit hex string is a
SHA-256), key fingerprints in lower-case hex, e-mail identities lower-cased, URIs as written.

Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from enum import StrEnum

from stelae.tiles.errors import FormatError

__all__ = ["INDEX_KEY_SIZE", "KeyKind", "entry_keys", "index_key", "normalize"]

INDEX_KEY_SIZE = 16
_DOMAIN = b"stelae-index-key/v1\n"


class KeyKind(StrEnum):
    """The kinds of key an entry is indexed under; the value is the name hashed into its key."""

    LEAF = "leaf"
    DIGEST = "digest"
    KEY = "key"
    IDENTITY = "identity"


_HEX = re.compile(r"[0-9a-fA-F]+")  # ASCII only: str.isalnum and friends accept far more
_DIGEST_HEX_DIGITS = {"sha256": 64, "sha384": 96, "sha512": 128}


def _normalize_leaf(value: str) -> str:
    if len(value) != 64 or not _HEX.fullmatch(value):
        raise FormatError(f"{value[:80]!r} is not a leaf hash (64 hex digits)")
    return value.lower()


def _normalize_digest(value: str) -> str:
    alg, sep, digits = value.partition(":")
    if not sep:  # a bare hex string is taken as SHA-256, as the old digest index did
        alg, digits = "sha256", alg
    alg = alg.lower()
    want = _DIGEST_HEX_DIGITS.get(alg)
    if want is None or not _HEX.fullmatch(digits):
        raise FormatError(f"{value[:80]!r} is not a digest like sha256:<hex>")
    if len(digits) != want:
        raise FormatError(f"a {alg} digest has {want} hex digits, not {len(digits)}")
    return f"{alg}:{digits.lower()}"


def _normalize_key(value: str) -> str:
    # Hex SHA-256 of a DER SPKI (64 digits) or an OpenPGP v4/v6 fingerprint (40/64 digits); the
    # old key index accepted 40..128 digits, and so does this one.
    if not 40 <= len(value) <= 128 or not _HEX.fullmatch(value):
        raise FormatError(f"{value[:80]!r} is not a key fingerprint (40..128 hex digits)")
    return value.lower()


def _normalize_identity(value: str) -> str:
    ident = value.strip()
    if not ident:
        raise FormatError("an identity is an e-mail address or a URI, not an empty string")
    try:
        ident.encode("utf-8")
    except UnicodeEncodeError as err:
        raise FormatError(f"identity {ident[:80]!r} is not valid UTF-8") from err
    if "@" in ident and "://" not in ident:
        ident = ident.lower()  # e-mail addresses compare case-insensitively; URIs do not
    return ident


_NORMALIZERS = {
    KeyKind.LEAF: _normalize_leaf,
    KeyKind.DIGEST: _normalize_digest,
    KeyKind.KEY: _normalize_key,
    KeyKind.IDENTITY: _normalize_identity,
}


def normalize(kind: KeyKind, value: str) -> str:
    """The one spelling of ``value`` that is hashed into its index key.

    Raises :class:`FormatError` naming the problem when ``value`` cannot be a key of ``kind``.
    """
    return _NORMALIZERS[KeyKind(kind)](value)


_PREFIXES = {kind: _DOMAIN + kind.value.encode() + b"\n" for kind in KeyKind}
_sha256 = hashlib.sha256


def hash_normalized(kind: KeyKind, value: str) -> bytes:
    """The index key of an already normalized value (the sequencer's hot path; see
    :func:`index_key` for anything that came from outside)."""
    return _sha256(_PREFIXES[kind] + value.encode()).digest()[:INDEX_KEY_SIZE]


def index_key(kind: KeyKind, value: str) -> bytes:
    """``SHA-256("stelae-index-key/v1\\n" || kind || "\\n" || normalized value)[0:16]``."""
    kind = KeyKind(kind)
    return hash_normalized(kind, normalize(kind, value))


def entry_keys(
    leaf_hash: bytes,
    digests: Iterable[str],
    key_fingerprints: Iterable[str],
    identities: Iterable[str],
) -> list[tuple[KeyKind, str]]:
    """Every key an entry is indexed under, normalized and without repeats: its leaf first, then
    digests, key fingerprints and identities in the order given."""
    if len(leaf_hash) != 32:
        raise FormatError(f"leaf hash is {len(leaf_hash)} bytes, not 32")
    out = [(KeyKind.LEAF, leaf_hash.hex())]
    for kind, values in (
        (KeyKind.DIGEST, digests),
        (KeyKind.KEY, key_fingerprints),
        (KeyKind.IDENTITY, identities),
    ):
        out.extend((kind, normalize(kind, v)) for v in values)
    return list(dict.fromkeys(out))
