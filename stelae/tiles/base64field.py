"""Canonical base64 in stelae's own formats: one spelling for each value.

The proof file (:mod:`stelae.tiles.proofbundle`), the lookup proof (:mod:`stelae.tiles.indexproof`)
and the index manifest (:mod:`stelae.tiles.manifest`) write standard padded base64 (RFC 4648 §4,
https://www.rfc-editor.org/rfc/rfc4648#section-4) and read back only what that writer produces,
so a value has one encoding and a file cannot be re-encoded into a second, equal-looking one.

Pure code: no I/O.
"""

from __future__ import annotations

import base64
import binascii

from stelae.tiles.errors import FormatError

__all__ = ["decode_b64", "encode_b64"]


def encode_b64(data: bytes) -> str:
    """Standard padded base64 of ``data``."""
    return base64.b64encode(data).decode("ascii")


def decode_b64(value: object, what: str, error: type[FormatError] = FormatError) -> bytes:
    """The bytes of ``value``, which must be a string :func:`encode_b64` would write.

    ``what`` names the field in the message of the ``error`` raised otherwise (a string that is
    not base64, or base64 spelled another way: other padding, other alphabet, stray bits).
    """
    if not isinstance(value, str):
        raise error(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, binascii.Error) as err:  # UnicodeEncodeError is a ValueError
        raise error(f"{what} is not base64: {err}") from err
    if encode_b64(raw) != value:
        raise error(f"{what} is not canonical base64")
    return raw
