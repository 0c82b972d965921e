"""Decoding of typed string fields (base64, hex) with errors that name the field."""

from __future__ import annotations

import base64
import binascii

from stelae.kinds.errors import InvalidEntryError


def b64decode(value: str, field: str) -> bytes:
    """Strict standard base64 (Rekor v1 ``strfmt.Base64``, DSSE envelopes)."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as err:
        raise InvalidEntryError(field, f"is not valid base64: {err}") from err


def b64decode_proto(value: str, field: str) -> bytes:
    """protojson ``bytes``: standard or URL-safe alphabet, padding optional."""
    try:
        text = value.encode("ascii")
    except UnicodeEncodeError as err:
        raise InvalidEntryError(field, "is not valid base64") from err
    text = text.rstrip(b"=")
    if b"-" in text or b"_" in text:
        text = text.replace(b"-", b"+").replace(b"_", b"/")
    text += b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidEntryError(field, f"is not valid base64: {err}") from err


def b64encode(data: bytes) -> str:
    """Standard base64 with padding: the form every canonical body uses."""
    return base64.b64encode(data).decode("ascii")


def hexdecode(value: str, field: str, *, length: int | None = None) -> bytes:
    """Hex (either case) of exactly ``length`` bytes when given."""
    try:
        raw = bytes.fromhex(value)
    except ValueError as err:
        raise InvalidEntryError(field, "is not valid hex") from err
    if len(value) != 2 * len(raw):
        raise InvalidEntryError(field, "is not valid hex")
    if length is not None and len(raw) != length:
        raise InvalidEntryError(
            field, f"digest is {len(raw)} bytes, but the algorithm's digests are {length} bytes"
        )
    return raw
