"""Rekor's response shapes, field for field (docs/compatibility.md, "Rekor wire compatibility").

v2 ``TransparencyLogEntry`` as the Rekor v2 HTTP gateway marshals it (``EmitUnpopulated``): int64
as strings, bytes as base64, ``rootHash`` the raw 32 bytes, the whole signed checkpoint in
``inclusionProof.checkpoint.envelope``. v1 ``LogEntry``: keyed by UUID, hashes and root in hex, a
signed entry timestamp under ``verification``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stelae.api.identity import LogIdentity
from stelae.tiles.proofbundle import ProofBundle


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class ProvedEntry:
    """Everything a response needs about one integrated entry."""

    kind: str
    api_version: str
    body: bytes
    index: int
    integrated_time: int
    signed_entry_timestamp: bytes
    tree_size: int
    root_hash: bytes
    proof: Sequence[bytes]
    checkpoint: bytes  # the signed note

    @property
    def uuid(self) -> str:
        return hashlib.sha256(b"\x00" + self.body).hexdigest()


def v2_entry(log: LogIdentity, e: ProvedEntry) -> dict[str, Any]:
    """Rekor v2's answer: the same ``TransparencyLogEntry`` the offline proof file staples, so
    the shape is written once (:meth:`~stelae.tiles.proofbundle.ProofBundle.to_tle`). v2 has no
    integratedTime and no SET."""
    return ProofBundle(e.index, e.body, tuple(e.proof), e.checkpoint, log.v2_key_id).to_tle()


def v1_entry(log: LogIdentity, e: ProvedEntry) -> dict[str, Any]:
    verification: dict[str, Any] = {
        "inclusionProof": {
            "checkpoint": e.checkpoint.decode(),
            "hashes": [h.hex() for h in e.proof],
            "logIndex": e.index,
            "rootHash": e.root_hash.hex(),
            "treeSize": e.tree_size,
        }
    }
    if e.signed_entry_timestamp:
        verification["signedEntryTimestamp"] = _b64(e.signed_entry_timestamp)
    return {
        e.uuid: {
            "body": _b64(e.body),
            "integratedTime": e.integrated_time,
            "logID": log.v1_log_id,
            "logIndex": e.index,
            "verification": verification,
        }
    }


def v1_log_info(log: LogIdentity, size: int, root: bytes, checkpoint: bytes) -> dict[str, Any]:
    """``GET /api/v1/log``."""
    return {
        "rootHash": root.hex(),
        "treeSize": size,
        "signedTreeHead": checkpoint.decode(),
        "treeID": log.v1_log_id[:16],
        "inactiveShards": [],
    }
