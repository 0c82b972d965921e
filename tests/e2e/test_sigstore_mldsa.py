"""sigstore-python on a log that also signs its checkpoints with ML-DSA-44 (docs/compatibility.md,
"Post-quantum log signatures"): the extra signature line is one sigstore does not know, and its
checkpoint check must still find and verify the log's Ed25519 line. The helpers (a throwaway
Sigstore PKI, the TrustedRoot for the log) are test_sigstore_compat's."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stelae.client import signing
from stelae.sequencer.logdir import open_log
from stelae.tiles.checkpoint import open_checkpoint
from stelae.tiles.note import Note, NoteSignature
from tests.e2e.test_sigstore_compat import V2, Pki, keyring, load_root, sigstore_entry, trusted_root
from tests.support.api import ORIGIN, served

sigstore = pytest.importorskip("sigstore")  # as in test_sigstore_compat: absent outside CI

from sigstore._internal.merkle import verify_merkle_inclusion  # noqa: E402
from sigstore._internal.rekor.checkpoint import verify_checkpoint  # noqa: E402
from sigstore.errors import VerificationError  # noqa: E402


def test_sigstore_verifies_entries_of_a_log_with_an_ml_dsa_line(tmp_path: Path) -> None:
    raws = []
    with served(tmp_path / "log", mldsa=True) as log:
        for i in range(3):
            key = ec.generate_private_key(ec.SECP256R1())
            digest = hashlib.sha256(f"pq {i} {os.urandom(8).hex()}".encode()).digest()
            request = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
            reply = log.post(V2, request)
            assert reply.status == 201, reply.body
            raws.append(reply.body)
        root = load_root(trusted_root(log, Pki.make()), tmp_path / "trusted_root.json")
    pq = open_log(tmp_path / "log").mldsa_signer
    assert pq is not None
    ring = keyring(root)
    for raw in raws:
        entry = sigstore_entry(raw)
        checkpoint = entry._inner.inclusion_proof.checkpoint
        assert checkpoint is not None
        envelope = checkpoint.envelope
        note = Note.parse(envelope.encode())
        assert note.signatures[-1].key_id == pq.key_id  # the ML-DSA line travels in the 201
        open_checkpoint(envelope.encode(), [pq.verifier], ORIGIN)
        verify_merkle_inclusion(entry)
        verify_checkpoint(ring, entry)
        entry._verify(ring)
    # The control: the ML-DSA line does not stand in for a broken Ed25519 one.
    entry = sigstore_entry(raws[-1])
    broken = tuple(
        s if s.key_id == pq.key_id else NoteSignature(s.name, s.key_id, bytes(64))
        for s in note.signatures
    )
    checkpoint = entry._inner.inclusion_proof.checkpoint
    assert checkpoint is not None
    checkpoint.envelope = Note(note.text, broken).to_bytes().decode()
    with pytest.raises(VerificationError):
        verify_checkpoint(ring, entry)
