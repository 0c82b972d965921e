"""Rekor v1 signed entry timestamps (SETs): the signed bytes and their check.

The sequencer, which holds the log's key, makes them; anyone with the log's public key checks them.

A SET is the log's signature over the RFC 8785 canonical JSON of
``{"body": b64(body), "integratedTime": T, "logID": hex, "logIndex": N}``, as Rekor v1 signs it
(docs/compatibility.md).
Rekor signs it with ECDSA; a stelae log's key is Ed25519, so the SET is an Ed25519 signature over
those bytes, verifiable with the log's public key. Ed25519 is deterministic, so a batch completed
twice (crash recovery) produces the same SET and the leaf record stays immutable.

The ``logID`` of Rekor v1 is the hex SHA-256 of the log's DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae.tiles.errors import VerificationError

_PLAIN_LOG_ID = re.compile(r"[0-9a-fA-F]*")


def v1_log_id(public_key_raw: bytes) -> str:
    """Rekor v1 log ID of an Ed25519 log key: hex SHA-256 of its DER SPKI."""
    spki = ed25519.Ed25519PublicKey.from_public_bytes(public_key_raw).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def set_payload(body: bytes, integrated_time: int, log_id: str, log_index: int) -> bytes:
    """The canonical bytes a SET signs. All values are ASCII strings or integers, for which
    sorted-key compact JSON is exactly RFC 8785."""
    if _PLAIN_LOG_ID.fullmatch(log_id) and type(integrated_time) is int and type(log_index) is int:
        # The same bytes as json.dumps below, formatted directly: this runs once per entry.
        # Base64 and hex need no JSON escaping; the keys are already in sorted order.
        return b'{"body":"%s","integratedTime":%d,"logID":"%s","logIndex":%d}' % (
            base64.b64encode(body),
            integrated_time,
            log_id.encode(),
            log_index,
        )
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "integratedTime": integrated_time,
            "logID": log_id,
            "logIndex": log_index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def verify_set(
    public_key_raw: bytes, signature: bytes, body: bytes, integrated_time: int, log_index: int
) -> None:
    """Raise VerificationError unless ``signature`` is the log's SET for this entry."""
    payload = set_payload(body, integrated_time, v1_log_id(public_key_raw), log_index)
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key_raw).verify(signature, payload)
    except Exception as err:
        raise VerificationError(
            f"signed entry timestamp for entry {log_index} does not verify"
        ) from err
