"""The integration intent of stelae before batch records: read only, to finish a batch it claimed.

Logs written before the batch record (``stelae.tiles.batch``, docs/sequencing.md) claimed each
batch by replacing ``.state/intent``. A sequencer that finds one beyond the published size turns it
into a batch record and finishes it; nothing writes intents any more. What follows is how they
were made.

Sequencing (durably deciding which entry gets which index) is separate from integration (writing
tiles, bundles, indexes and the checkpoint). A sequencer claims a batch by replacing
``.state/intent`` with compare-and-swap; the winner owns indices ``base_size .. base_size+len-1``
and everything it then writes is a pure function of the published tree and this record. A crash
after the claim is repaired by whoever runs next: it finds an intent beyond the published size and
completes it, writing exactly the same bytes. A sequencer that loses the claim has written nothing.

Format (binary, so a 4096-entry batch costs no base64 or per-entry JSON)::

    header JSON line            {"format": "stelae-intent/v2", "base_size", "base_root", "count",
                                 "integrated_time", "keys_length"}
    keys JSON (keys_length B)   [[digests], [key fingerprints], [identities]] per entry
    bodies                      entry-bundle records: uint16_be(len) || body, ``count`` times

:func:`read_header` reads only the header, which is all a sequencer needs in the steady state
(the previous intent is complete); the entries are parsed only to recover a crashed batch.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from stelae.sequencer.pending import PendingEntry, decode_entry
from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import HASH_SIZE
from stelae.tiles.tile import encode_records

_FORMAT = "stelae-intent/v2"
_FORMAT_V1 = "stelae-intent/v1"  # JSON lines, one PendingEntry.to_json per entry; read only


@dataclass(frozen=True)
class IntentHeader:
    base_size: int
    base_root: bytes
    count: int
    integrated_time: int

    @property
    def new_size(self) -> int:
        return self.base_size + self.count


@dataclass(frozen=True)
class Intent:
    base_size: int
    base_root: bytes
    entries: tuple[PendingEntry, ...]
    integrated_time: int = 0
    """POSIX seconds when the batch was claimed: every entry's Rekor v1 ``integratedTime``."""

    @property
    def new_size(self) -> int:
        return self.base_size + len(self.entries)

    def to_bytes(self) -> bytes:
        keys = json.dumps(
            [[list(e.digests), list(e.key_fingerprints), list(e.identities)] for e in self.entries],
            separators=(",", ":"),
        ).encode()
        header = {
            "format": _FORMAT,
            "base_size": self.base_size,
            "base_root": base64.b64encode(self.base_root).decode(),
            "count": len(self.entries),
            "integrated_time": self.integrated_time,
            "keys_length": len(keys),
        }
        head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
        return head + keys + encode_records([e.body for e in self.entries])

    @classmethod
    def parse(cls, data: bytes) -> Intent:
        header, keys_length, offset = _parse_header(data)
        if keys_length < 0:  # a v1 record, left by an earlier stelae
            lines = [line for line in data[offset:].split(b"\n") if line]
            if len(lines) != header.count:
                raise FormatError("intent record entry count does not match its header")
            return cls(
                header.base_size,
                header.base_root,
                tuple(decode_entry(line) for line in lines),
                header.integrated_time,
            )
        try:
            keys: Any = json.loads(data[offset : offset + keys_length])
        except (ValueError, UnicodeDecodeError) as err:
            raise FormatError(f"intent record keys are unreadable: {err}") from err
        if not isinstance(keys, list) or len(keys) != header.count:
            raise FormatError("intent record keys do not match its entry count")
        pos = offset + keys_length
        entries: list[PendingEntry] = []
        for k in keys:
            if pos + 2 > len(data):
                raise FormatError("intent record is truncated")
            n = int.from_bytes(data[pos : pos + 2], "big")
            body = data[pos + 2 : pos + 2 + n]
            if len(body) != n:
                raise FormatError("intent record is truncated")
            pos += 2 + n
            if not isinstance(k, list) or len(k) != 3:
                raise FormatError("intent record keys are malformed")
            entries.append(PendingEntry(body, *(tuple(_strings(x)) for x in k)))
        if pos != len(data):
            raise FormatError("intent record has trailing bytes")
        return cls(header.base_size, header.base_root, tuple(entries), header.integrated_time)


def read_header(data: bytes) -> IntentHeader:
    return _parse_header(data)[0]


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError("intent record keys are malformed")
    return value


def _parse_header(data: bytes) -> tuple[IntentHeader, int, int]:
    end = data.find(b"\n")
    try:
        header = json.loads(data[:end]) if end > 0 else None
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"intent record header is unreadable: {err}") from err
    if not isinstance(header, dict) or header.get("format") not in (_FORMAT, _FORMAT_V1):
        raise FormatError("intent record has an unknown format")
    if header["format"] == _FORMAT_V1:
        header = {"integrated_time": 0, **header, "keys_length": -1}
    fields = [header.get(k) for k in ("base_size", "count", "integrated_time")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in fields):
        raise FormatError("intent record header is incomplete")
    keys_length = header.get("keys_length")
    if not isinstance(keys_length, int) or isinstance(keys_length, bool) or keys_length < -1:
        raise FormatError("intent record header is incomplete")
    size, count, itime = (int(v) for v in fields)  # type: ignore[arg-type]
    try:
        root = base64.b64decode(str(header.get("base_root")), validate=True)
    except (binascii.Error, ValueError) as err:
        raise FormatError("intent record root is not base64") from err
    if len(root) != HASH_SIZE:
        raise FormatError("intent record root is not a hash")
    return IntentHeader(size, root, count, itime), keys_length, end + 1
