"""The queue's codec for :class:`~stelae.tiles.batch.PendingEntry`: one JSON encoding, used by every
queue that crosses a process boundary (SQS on AWS, the relay between ``stelae serve --workers``
processes). The batch record (``stelae.tiles.batch``) is the entry's durable encoding.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from stelae.tiles.batch import PendingEntry
from stelae.tiles.errors import FormatError

__all__ = ["PendingEntry", "decode_entry", "encode_entry"]


def encode_entry(entry: PendingEntry) -> str:
    return json.dumps(
        {
            "body": base64.b64encode(entry.body).decode(),
            "digests": list(entry.digests),
            "keys": list(entry.key_fingerprints),
            "identities": list(entry.identities),
        },
        separators=(",", ":"),
    )


def decode_entry(text: str | bytes) -> PendingEntry:
    """Parse a queued entry; a malformed message raises FormatError naming the problem."""
    try:
        obj: Any = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"queued entry is not JSON: {err}") from err
    if not isinstance(obj, dict) or not isinstance(obj.get("body"), str):
        raise FormatError("queued entry has no 'body' string")
    try:
        body = base64.b64decode(obj["body"], validate=True)
    except (binascii.Error, ValueError) as err:
        raise FormatError("queued entry body is not base64") from err
    lists = []
    for name in ("digests", "keys", "identities"):
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FormatError(f"queued entry field {name!r} is not a list of strings")
        lists.append(tuple(value))
    return PendingEntry(body, lists[0], lists[1], lists[2])
