"""ML-DSA-44 cosignatures (key type 0x06, https://c2sp.org/tlog-cosignature@v1.1.0-rc.1)."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa

from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.mldsa import (
    MLDSA44CosignatureSigner,
    MLDSA44CosignatureVerifier,
    cosigned_message,
)
from stelae.tiles.note import (
    InvalidSignatureError,
    InvalidVerifierKeyError,
    Note,
    open_note,
    sign_note,
)
from stelae.tiles.notekeys import parse_vkey, verifier_to_vkey

CP = Checkpoint("example.com/behind-the-sofa", 20852163, bytes(range(32)))
SIGNER = MLDSA44CosignatureSigner("witness.example/pq", bytes([3]) * 32, lambda: 1_679_315_147)


def test_cosigned_message_layout_follows_the_spec_struct() -> None:
    msg = cosigned_message("w", 7, "o", start=0, end=9, root=bytes(32))
    assert msg == (
        b"subtree/v1\n\x00"
        + b"\x01w"
        + struct.pack(">Q", 7)
        + b"\x01o"
        + struct.pack(">QQ", 0, 9)
        + bytes(32)
    )
    with pytest.raises(ValueError, match="1 to 255"):
        cosigned_message("w", 7, "o" * 256, start=0, end=9, root=bytes(32))


def test_signature_is_timestamp_then_fips204_signature_over_the_struct() -> None:
    sig = SIGNER.sign(CP.to_text())
    assert len(sig.signature) == 8 + 2420
    assert int.from_bytes(sig.signature[:8], "big") == 1_679_315_147
    key = mldsa.MLDSA44PublicKey.from_public_bytes(SIGNER.public_key_bytes)
    key.verify(
        sig.signature[8:],
        cosigned_message(
            "witness.example/pq", 1_679_315_147, CP.origin, start=0, end=CP.size, root=CP.root_hash
        ),
    )
    want_id = hashlib.sha256(b"witness.example/pq\n\x06" + SIGNER.public_key_bytes).digest()[:4]
    assert sig.key_id == int.from_bytes(want_id, "big")


def test_vkey_round_trip_and_note_verification() -> None:
    vkey = verifier_to_vkey(SIGNER.verifier)
    assert base64.b64decode(vkey.split("+")[2])[0] == 0x06
    verifier = parse_vkey(vkey)
    assert verifier == SIGNER.verifier
    note = sign_note(CP.to_text(), [SIGNER])
    opened = open_note(note.to_bytes(), [verifier])
    assert opened.cosignature_time("witness.example/pq") == 1_679_315_147


def test_extension_lines_are_not_signed_but_the_root_is() -> None:
    sig = SIGNER.sign(CP.to_text())
    with_ext = Checkpoint(CP.origin, CP.size, CP.root_hash, ("ext",)).to_text()
    open_note(Note(with_ext, (sig,)).to_bytes(), [SIGNER.verifier])  # still valid
    other_root = Checkpoint(CP.origin, CP.size, bytes(32)).to_text()
    with pytest.raises(InvalidSignatureError, match="ML-DSA-44 check failed"):
        open_note(Note(other_root, (sig,)).to_bytes(), [SIGNER.verifier])
    other_time = type(sig)(sig.name, sig.key_id, struct.pack(">Q", 1) + sig.signature[8:])
    with pytest.raises(InvalidSignatureError):
        open_note(Note(CP.to_text(), (other_time,)).to_bytes(), [SIGNER.verifier])
    short = type(sig)(sig.name, sig.key_id, sig.signature[:100])
    with pytest.raises(InvalidSignatureError, match="100 bytes"):
        open_note(Note(CP.to_text(), (short,)).to_bytes(), [SIGNER.verifier])


def test_a_note_that_is_no_checkpoint_has_no_valid_ml_dsa_cosignature() -> None:
    sig = SIGNER.sign(CP.to_text())
    with pytest.raises(InvalidSignatureError, match="not a checkpoint"):
        open_note(Note("hello\n", (sig,)).to_bytes(), [SIGNER.verifier])


def test_bad_keys_are_refused() -> None:
    with pytest.raises(InvalidVerifierKeyError, match="1312"):
        MLDSA44CosignatureVerifier("w", bytes(32))
    with pytest.raises(ValueError, match="out of range"):
        MLDSA44CosignatureSigner("w", bytes(32), lambda: 0).sign(CP.to_text())
