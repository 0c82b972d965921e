"""The entries the sequencer benchmarks integrate, and the logs they integrate them into.

Entries are 1 KiB, each with the lookup keys a real submission carries, chosen round-robin so
that write counts are exact and repeatable:

- one artifact digest, unique per entry (the SHA-256 of the body);
- one of :data:`SIGNER_KEYS` signer key fingerprints;
- one of :data:`IDENTITIES` certificate identities.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.logdir import LOCAL_PARALLEL_WRITES
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.store import ObjectStore
from stelae.tiles.notekeys import Ed25519NoteSigner

ORIGIN = "bench.stelae.example"
ENTRY_SIZE = 1024
SIGNER_KEYS = 64
IDENTITIES = 1024

SIGNER = Ed25519NoteSigner.generate(ORIGIN)
"""The benchmark logs' signing key (fresh per process): readers verify with its vkey."""

NO_INDEXES = SequencerConfig(ORIGIN, lookup_index=False, background_merges=False)
"""Tiles, bundles, batch record and checkpoint only: the log itself."""
ALL_INDEXES = SequencerConfig(ORIGIN, background_merges=False)
"""Every lookup key (leaf hash, digest, signer key, identity) in the batch-level index; merges
run when the benchmark calls ``Sequencer.merge`` (between batches), so they are counted."""


def body(i: int) -> bytes:
    """Entry ``i``'s bytes: exactly :data:`ENTRY_SIZE` bytes, distinct for every ``i``."""
    head = b'{"n":%d,"pad":"' % i
    tail = b'"}'
    return head + b"x" * (ENTRY_SIZE - len(head) - len(tail)) + tail


def entry(i: int) -> PendingEntry:
    data = body(i)
    return PendingEntry(
        data,
        digests=(f"sha256:{hashlib.sha256(data).hexdigest()}",),
        key_fingerprints=(f"{i % SIGNER_KEYS:064x}",),
        identities=(f"user{i % IDENTITIES}@example.com",),
    )


def entries(start: int, count: int) -> list[PendingEntry]:
    return [entry(i) for i in range(start, start + count)]


@functools.cache
def _rekord_keys() -> tuple[tuple[str, str], ...]:
    """:data:`SIGNER_KEYS` P-256 public keys: (base64 of the PEM, index fingerprint)."""
    out = []
    for _ in range(SIGNER_KEYS):
        spki = ec.generate_private_key(ec.SECP256R1()).public_key()
        der = spki.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pem = spki.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out.append((base64.b64encode(pem).decode(), hashlib.sha256(der).hexdigest()))
    return tuple(out)


def rekord_entry(i: int) -> PendingEntry:
    """Entry ``i`` as a real stored Rekor v1 ``rekord`` body (RFC 8785 canonical, ~570 B), whose
    lookup keys ``stelae.kinds.from_body`` re-derives: a unique artifact digest and one of
    :data:`SIGNER_KEYS` keys round-robin (no identity: plain public keys carry none). For what
    recomputes the index from the bodies, as the monitor does; a stored rekord body keeps only
    the signature bytes, which nobody re-verifies, so they are filler here."""
    pem, fingerprint = _rekord_keys()[i % SIGNER_KEYS]
    digest = hashlib.sha256(b"rekord artifact %d" % i).hexdigest()
    obj = {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest}},
            "signature": {
                "content": base64.b64encode(b"\x30" * 70).decode(),
                "format": "x509",
                "publicKey": {"content": pem},
            },
        },
    }
    # ASCII strings and no numbers: sorted keys and no spaces is the RFC 8785 form.
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    return PendingEntry(data, (f"sha256:{digest}",), (fingerprint,), ())


def rekord_entries(start: int, count: int) -> list[PendingEntry]:
    return [rekord_entry(i) for i in range(start, start + count)]


@contextmanager
def sequencer(store: ObjectStore, config: SequencerConfig) -> Iterator[Sequencer]:
    """A sequencer over ``store`` with the benchmark signing key; its write pool closed after.

    On a local directory it writes serially, as ``stelae serve``'s local log does."""
    if isinstance(store, LocalStore):
        config = replace(config, parallel_writes=LOCAL_PARALLEL_WRITES)
    seq = Sequencer(store, SIGNER, config)
    try:
        yield seq
    finally:
        seq.close()
