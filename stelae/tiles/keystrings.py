"""The text forms of signed-note keys: verifier keys (vkeys) and private-key strings.

A vkey (https://c2sp.org/signed-note) is ``name+hex8(key ID)+base64(type || public key)``. A
private key is kept in the shape Go's ``golang.org/x/mod/sumdb/note`` writes for Ed25519,
``PRIVATE+KEY+name+hex8(key ID)+base64(type || 32-byte seed)``; stelae uses the same shape for
the types no spec gives a private-key string (docs/compatibility.md). Every key type
(:mod:`stelae.tiles.notekeys`, :mod:`stelae.tiles.mldsa`) reads and writes them here, so each
applies the same checks: a valid key name, exactly 8 lowercase hex digits, canonical base64, and
a key ID that matches the key.

Pure code: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from stelae.tiles.note import InvalidVerifierKeyError, _b64decode_canonical, _name_problem

__all__ = [
    "check_key_name",
    "format_skey",
    "format_vkey",
    "note_key_id",
    "parse_key_id",
    "parse_skey",
    "split_vkey",
]

_SEED_SIZE = 32


def note_key_id(name: str, type_byte: int, key_bytes: bytes) -> int:
    """The recommended key ID: ``uint32_be(SHA-256(name || 0x0A || type || key)[:4])``
    (https://c2sp.org/signed-note, "Verifier keys"). Not used for ECDSA type 0x02, whose key ID
    ignores the name (:func:`stelae.tiles.notekeys.ecdsa_log_id`)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([type_byte]) + key_bytes).digest()
    return int.from_bytes(digest[:4], "big")


def check_key_name(name: str) -> None:
    """Raise :class:`InvalidVerifierKeyError` unless ``name`` is a valid key name."""
    if (problem := _name_problem(name)) is not None:
        raise InvalidVerifierKeyError(problem)


def parse_key_id(hex8: str, what: str) -> int:
    """The key ID spelled ``hex8``: exactly 8 lowercase hex digits, as every producer writes it
    (``what`` names the key in the error)."""
    if len(hex8) != 8 or any(c not in "0123456789abcdef" for c in hex8):
        raise InvalidVerifierKeyError(f"{what} ID {hex8!r} is not 8 lowercase hex digits")
    return int(hex8, 16)


def _decode_key(b64: str, what: str) -> bytes:
    try:
        return _b64decode_canonical(b64)
    except ValueError as err:
        raise InvalidVerifierKeyError(f"{what} is not valid base64: {err}") from err


def split_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    """``(name, key ID, key type, key)`` from ``name+hex8(key ID)+base64(type || key)``, the key
    ID as written (the caller, who knows the type, checks it against the key).

    Splits on the first two '+' only, since the base64 may contain '+'. Raises
    :class:`InvalidVerifierKeyError`.
    """
    name, sep1, rest = vkey.partition("+")
    hex8, sep2, b64 = rest.partition("+")
    if not sep1 or not sep2:
        raise InvalidVerifierKeyError(f"vkey {vkey!r} is not name+keyid+key")
    check_key_name(name)
    key_id = parse_key_id(hex8, "vkey key")
    key = _decode_key(b64, "vkey key")
    if not key:
        raise InvalidVerifierKeyError("vkey key is empty")
    return name, key_id, key[0], key[1:]


def format_vkey(name: str, key_id: int, key_type: int, key: bytes) -> str:
    """``name+hex8(key_id)+base64(key_type || key)``."""
    encoded = base64.b64encode(bytes([key_type]) + key).decode("ascii")
    return f"{name}+{key_id:08x}+{encoded}"


def format_skey(name: str, key_id: int, key_type: int, seed: bytes) -> str:
    """``PRIVATE+KEY+name+hex8(key_id)+base64(key_type || seed)``; the result is a secret."""
    return "PRIVATE+KEY+" + format_vkey(name, key_id, key_type, seed)


def parse_skey(
    skey: str,
    key_type: int,
    key_id_of: Callable[[str, bytes], int],
    *,
    label: str = "private key",
) -> tuple[str, bytes]:
    """``(name, seed)`` from a private-key string of ``key_type`` with a 32-byte seed.

    ``key_id_of(name, seed)`` derives the key ID, which must match the one in the string, so a
    key string that was edited or mixed up with another's is refused here rather than signing
    under an ID no verifier expects. Raises :class:`InvalidVerifierKeyError` naming the problem
    (``label`` names the key kind), never the key material.
    """
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise InvalidVerifierKeyError(f"{label} is not PRIVATE+KEY+name+keyid+key")
    name, hex8, b64 = parts[2], parts[3], parts[4]
    check_key_name(name)
    key_id = parse_key_id(hex8, "private key")
    key = _decode_key(b64, "private key")
    if len(key) != 1 + _SEED_SIZE or key[0] != key_type:
        raise InvalidVerifierKeyError(
            f"{label} must be type 0x{key_type:02x} with a {_SEED_SIZE}-byte seed"
        )
    seed = key[1:]
    if key_id_of(name, seed) != key_id:
        raise InvalidVerifierKeyError(f"private key ID {hex8} does not match its key")
    return name, seed
