"""What a sequencer integrates: an entry's leaf bytes plus the keys it is looked up by.

The write path builds a :class:`PendingEntry` from a validated submission; a queue (in-process, or
SQS on AWS) carries it to the sequencer as :meth:`PendingEntry.to_json`. The sequencer never
re-parses the entry kind: it trusts the lookup keys the write path derived, and monitors re-derive
them from the leaf when they audit the log.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.tile import MAX_ENTRY_SIZE, EntryTooLargeError

_DIGEST = re.compile(r"(sha256|sha384|sha512):[0-9a-f]+")
_KEY_FP = re.compile(r"[0-9a-f]{40,128}")


@dataclass(frozen=True)
class PendingEntry:
    """A validated entry waiting for an index.

    ``digests`` are ``"<alg>:<lowercase hex>"``; ``key_fingerprints`` are lowercase hex SHA-256 of
    DER SubjectPublicKeyInfo; ``identities`` are certificate SAN emails (lowercased) and URIs.
    """

    body: bytes
    digests: tuple[str, ...] = ()
    key_fingerprints: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.body) > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(len(self.body))
        if not self.body:
            raise FormatError("an entry cannot be empty")
        for d in self.digests:
            if not _DIGEST.fullmatch(d):
                raise FormatError(f"digest {d!r} is not '<sha256|sha384|sha512>:<hex>'")
        for k in self.key_fingerprints:
            if not _KEY_FP.fullmatch(k):
                raise FormatError(f"key fingerprint {k!r} is not 40..128 lowercase hex digits")
        for i in self.identities:
            if not i or len(i) > 1024 or any(c in i for c in "\n\r\x00"):
                raise FormatError(f"identity {i!r} is empty, too long or has control characters")

    @cached_property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.body)

    def to_json(self) -> str:
        return json.dumps(
            {
                "body": base64.b64encode(self.body).decode(),
                "digests": list(self.digests),
                "keys": list(self.key_fingerprints),
                "identities": list(self.identities),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PendingEntry:
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
        return cls(body, lists[0], lists[1], lists[2])
