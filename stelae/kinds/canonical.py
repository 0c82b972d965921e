"""RFC 8785 (JCS) canonical bodies: the bytes that become Merkle leaves.

The leaf is exactly the canonical JSON body of the entry, as Rekor does it (specs.md §7), so the
Rekor "UUID" is the hex of SHA-256(0x00 || body). A body over 65,535 bytes cannot be stored in an
entry bundle (uint16 length prefix) and is refused, never truncated.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from stelae.kinds.errors import InvalidEntryError

#: Largest canonical body a log accepts: entry bundles prefix each entry with a uint16 length.
MAX_BODY_SIZE = 65_535

#: Largest JSON request the write API should hand to :func:`load_json` (a Lambda payload is 6 MB;
#: the biggest legitimate request is a ``rekord`` carrying its artifact).
MAX_REQUEST_SIZE = 24 * 1024 * 1024


def canonicalize(obj: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of ``obj``; refuses a result over :data:`MAX_BODY_SIZE`."""
    try:
        body: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as err:
        raise InvalidEntryError("", f"cannot canonicalize entry: {err}") from err
    check_body_size(body)
    return body


def check_body_size(body: bytes) -> None:
    """Refuse a canonical body that does not fit an entry bundle record."""
    if len(body) > MAX_BODY_SIZE:
        raise InvalidEntryError(
            "",
            f"canonical entry body is {len(body)} bytes; the log stores at most {MAX_BODY_SIZE}",
            hint="entries are never truncated; use a smaller key, certificate or signature",
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidEntryError(key, "duplicate JSON object key")
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise InvalidEntryError("", f"{name} is not JSON")


def load_json(raw: bytes | str, *, limit: int = MAX_REQUEST_SIZE) -> object:
    """Parse a JSON request strictly: bounded size, UTF-8, no duplicate keys, no NaN/Infinity.

    The size is checked before anything is parsed, so a huge request costs nothing.
    """
    if len(raw) > limit:
        raise InvalidEntryError("", f"request is {len(raw)} bytes; at most {limit} are accepted")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidEntryError("", f"request is not UTF-8: {err}") from err
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise InvalidEntryError("", f"not valid JSON: {err}") from err
    except RecursionError as err:
        raise InvalidEntryError("", "JSON nested too deeply") from err


def parse_canonical(body: bytes) -> dict[str, Any]:
    """Parse a stored body and insist it is already canonical (what the log would have written).

    A body that parses but is not byte-identical to its own RFC 8785 form is refused: it could not
    have been produced by a conforming log, and its leaf hash would not be reproducible.
    """
    check_body_size(body)
    obj = load_json(body, limit=MAX_BODY_SIZE)
    if not isinstance(obj, dict):
        raise InvalidEntryError("", "entry body must be a JSON object")
    if rfc8785.dumps(obj) != body:
        raise InvalidEntryError("", "entry body is not RFC 8785 canonical JSON")
    return obj
