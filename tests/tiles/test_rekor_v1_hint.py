"""The log's second checkpoint signature line, under Rekor v1's key hint (RekorV1HintSigner).

Rekor v1 clients look for a checkpoint signature whose 4-byte hint is the start of the v1
``logID`` (SHA-256 of the key's DER SubjectPublicKeyInfo); C2SP verifiers look for the
https://c2sp.org/signed-note key ID. One note carries both; each verifier finds its own line and
ignores the other. (Go's ``note.Open`` is held to the same in tests/e2e/test_interop.py, which
verifies the checkpoints ``stelae serve`` publishes.)
"""

from __future__ import annotations

import base64

import pytest

from stelae.tiles.note import Note, UnverifiedNoteError, open_note, sign_note
from stelae.tiles.notekeys import Ed25519NoteSigner, RekorV1HintSigner
from stelae.tiles.timestamp import v1_log_id

TEXT = "example.test/log\n1\nGGPAuy6KmjtKLIc4X8flKxXRiUvICFn7OJKBrUPpccI=\n"


def _signer() -> Ed25519NoteSigner:
    return Ed25519NoteSigner("example.test/log", bytes(range(32)))


def test_the_hint_is_the_start_of_the_rekor_v1_log_id() -> None:
    signer = _signer()
    hint = RekorV1HintSigner(signer).key_id.to_bytes(4, "big")
    assert hint == bytes.fromhex(v1_log_id(signer.public_key_bytes))[:4]
    assert RekorV1HintSigner(signer).key_id != signer.key_id


def test_a_double_signed_checkpoint_opens_with_the_c2sp_verifier() -> None:
    signer = _signer()
    data = sign_note(TEXT, [signer, RekorV1HintSigner(signer)]).to_bytes()
    note = Note.parse(data)
    assert [s.key_id for s in note.signatures] == [signer.key_id, RekorV1HintSigner(signer).key_id]
    # Same key, same text: the same Ed25519 signature under two hints.
    assert note.signatures[0].signature == note.signatures[1].signature
    opened = open_note(data, [signer.verifier])
    assert [s.key_id for s in opened.verified] == [signer.key_id]  # the other line is ignored
    assert data.decode().count("\n\n") == 1  # sigstore-python's note parser insists


def test_the_v1_line_alone_does_not_satisfy_a_c2sp_verifier() -> None:
    signer = _signer()
    data = sign_note(TEXT, [RekorV1HintSigner(signer)]).to_bytes()
    with pytest.raises(UnverifiedNoteError):
        open_note(data, [signer.verifier])
    line = data.decode().split("\n\n")[1].split(" ")[-1]
    assert base64.b64decode(line)[:4] == bytes.fromhex(v1_log_id(signer.public_key_bytes))[:4]
