"""The integration intent: the durable record that assigns indices to a batch before any tile moves.

Sequencing (durably deciding which entry gets which index) is separate from integration (writing
tiles, bundles, indexes and the checkpoint). A sequencer claims a batch by replacing
``.state/intent`` with compare-and-swap; the winner owns indices ``base_size .. base_size+len-1``
and everything it then writes is a pure function of the published tree and this record. A crash
after the claim is repaired by whoever runs next: it finds an intent beyond the published size and
completes it, writing exactly the same bytes. A sequencer that loses the claim has written nothing.

Format: one JSON header line, then one :meth:`PendingEntry.to_json` line per entry.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from stelae.sequencer.pending import PendingEntry
from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import HASH_SIZE

INTENT_KEY = ".state/intent"
_FORMAT = "stelae-intent/v1"


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
        header = {
            "format": _FORMAT,
            "base_size": self.base_size,
            "base_root": base64.b64encode(self.base_root).decode(),
            "count": len(self.entries),
            "integrated_time": self.integrated_time,
        }
        lines = [json.dumps(header, separators=(",", ":"))]
        lines.extend(e.to_json() for e in self.entries)
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> Intent:
        try:
            lines = data.decode().split("\n")
            header = json.loads(lines[0])
        except (UnicodeDecodeError, ValueError) as err:
            raise FormatError(f"intent record is unreadable: {err}") from err
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise FormatError("intent record has an unknown format")
        size, count, root = header.get("base_size"), header.get("count"), header.get("base_root")
        if not isinstance(size, int) or not isinstance(count, int) or not isinstance(root, str):
            raise FormatError("intent record header is incomplete")
        try:
            base_root = base64.b64decode(root, validate=True)
        except (binascii.Error, ValueError) as err:
            raise FormatError("intent record root is not base64") from err
        if len(base_root) != HASH_SIZE or size < 0:
            raise FormatError("intent record header has a bad size or root")
        body = [line for line in lines[1:] if line]
        if len(body) != count:
            raise FormatError(f"intent record holds {len(body)} entries, header says {count}")
        itime = header.get("integrated_time", 0)
        if not isinstance(itime, int) or itime < 0:
            raise FormatError("intent record has a bad integrated_time")
        return cls(size, base_root, tuple(PendingEntry.from_json(line) for line in body), itime)
