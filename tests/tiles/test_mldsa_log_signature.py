"""A log's own ML-DSA-44 checkpoint signature beside its Ed25519 one.

https://c2sp.org/tlog-checkpoint recommends that logs sign with ML-DSA-44 cosignatures (type
0x06, https://c2sp.org/tlog-cosignature); a stelae log may add that line after its Ed25519 lines.
Verifiers that know only the Ed25519 key must still accept the note (https://c2sp.org/signed-note:
unknown signatures are ignored), verifiers given the ML-DSA key must check it.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa

from stelae.tiles.checkpoint import (
    Checkpoint,
    MissingLogSignatureError,
    open_checkpoint,
    sign_checkpoint,
)
from stelae.tiles.mldsa import MLDSA44CosignatureSigner, cosigned_message, parse_mldsa_skey
from stelae.tiles.note import (
    InvalidSignatureError,
    InvalidVerifierKeyError,
    Note,
    NoteSignature,
    NoteVerifier,
    UnverifiedNoteError,
    sign_note,
)
from stelae.tiles.notekeys import Ed25519NoteSigner, RekorV1HintSigner, parse_vkey
from stelae.tiles.policy import Policy

ORIGIN = "log.example.test/pq"
ED = Ed25519NoteSigner(ORIGIN, bytes([7]) * 32)
PQ = MLDSA44CosignatureSigner(ORIGIN, bytes([9]) * 32, lambda: 1_767_225_600)
CP = Checkpoint(ORIGIN, 1234, hashlib.sha256(b"root").digest())


def both_signed(cp: Checkpoint = CP) -> bytes:
    """The note a stelae log with both keys publishes: Ed25519, the Rekor v1 line, ML-DSA."""
    return sign_note(cp.to_text(), [ED, RekorV1HintSigner(ED), PQ]).to_bytes()


def replace_line(note: bytes, key_id: int, signature: bytes) -> bytes:
    parsed = Note.parse(note)
    sigs = tuple(
        NoteSignature(s.name, s.key_id, signature) if s.key_id == key_id else s
        for s in parsed.signatures
    )
    return Note(parsed.text, sigs).to_bytes()


def test_skey_round_trip_and_vkey_follow_signed_note() -> None:
    assert PQ.skey.startswith(f"PRIVATE+KEY+{ORIGIN}+{PQ.key_id:08x}+")
    again = MLDSA44CosignatureSigner.from_skey(PQ.skey)
    assert (again.name, again.seed, again.vkey) == (PQ.name, PQ.seed, PQ.vkey)
    name, hex8, b64 = PQ.vkey.split("+", 2)
    assert (name, int(hex8, 16)) == (ORIGIN, PQ.key_id)
    assert base64.b64decode(b64) == b"\x06" + PQ.public_key_bytes  # type byte, 1312-byte key
    want_id = hashlib.sha256(ORIGIN.encode() + b"\n\x06" + PQ.public_key_bytes).digest()[:4]
    assert PQ.key_id == int.from_bytes(want_id, "big")
    assert parse_vkey(PQ.vkey) == PQ.verifier


@pytest.mark.parametrize(
    ("skey", "message"),
    [
        (ED.skey, "type 0x06"),  # an Ed25519 key is not an ML-DSA one
        (PQ.skey.replace(f"+{PQ.key_id:08x}+", "+00000000+"), "does not match its key"),
        ("PRIVATE+KEY+only+three", "PRIVATE+KEY+name+keyid+key"),
        (PQ.skey.replace("PRIVATE", "PUBLIC"), "PRIVATE+KEY+name+keyid+key"),
        (PQ.skey.rstrip("=") + "!", "base64"),
        (PQ.skey.replace(f"+{PQ.key_id:08x}+", f"+{PQ.key_id:08X}+"), "lowercase hex"),
    ],
)
def test_bad_private_keys_are_refused_naming_the_problem(skey: str, message: str) -> None:
    with pytest.raises(InvalidVerifierKeyError, match=message.replace("+", r"\+")):
        parse_mldsa_skey(skey)


def test_both_signatures_round_trip_and_each_key_verifies_alone() -> None:
    note = both_signed()
    parsed = Note.parse(note)
    assert [s.key_id for s in parsed.signatures] == [
        ED.key_id,
        RekorV1HintSigner(ED).key_id,
        PQ.key_id,
    ]
    assert Note.parse(parsed.to_bytes()) == parsed
    for verifier in (ED.verifier, PQ.verifier):
        cp = open_checkpoint(note, [verifier], ORIGIN)
        assert cp.checkpoint == CP
        assert [(s.name, s.key_id) for s in cp.note.verified] == [(ORIGIN, verifier.key_id)]
    both = open_checkpoint(note, [ED.verifier, PQ.verifier], ORIGIN, require_all=True)
    assert {s.key_id for s in both.note.verified} == {ED.key_id, PQ.key_id}


def test_the_ml_dsa_line_signs_the_tlog_cosignature_struct_with_the_origin_as_name() -> None:
    sig = next(s for s in Note.parse(both_signed()).signatures if s.key_id == PQ.key_id)
    timestamp = struct.unpack(">Q", sig.signature[:8])[0]
    assert timestamp == 1_767_225_600
    message = cosigned_message(ORIGIN, timestamp, ORIGIN, start=0, end=CP.size, root=CP.root_hash)
    mldsa.MLDSA44PublicKey.from_public_bytes(PQ.public_key_bytes).verify(sig.signature[8:], message)


def test_an_ed25519_only_verifier_accepts_the_note_and_ignores_the_ml_dsa_line() -> None:
    """What every client from before the ML-DSA line does (signed-note: unknown keys ignored),
    even when that line is garbage: it is not its key."""
    tampered = replace_line(both_signed(), PQ.key_id, b"\x00" * (8 + 2420))
    cp = open_checkpoint(tampered, [ED.verifier], ORIGIN)
    assert cp.checkpoint == CP
    assert len(cp.note.note.signatures) == 3  # kept, unverified, in the note it carries on


def test_a_tampered_ml_dsa_signature_is_refused_by_a_verifier_that_knows_the_key() -> None:
    note = both_signed()
    sig = next(s for s in Note.parse(note).signatures if s.key_id == PQ.key_id)
    flipped = sig.signature[:100] + bytes([sig.signature[100] ^ 1]) + sig.signature[101:]
    pinned: list[list[NoteVerifier]] = [[PQ.verifier], [ED.verifier, PQ.verifier]]
    for verifiers in pinned:
        with pytest.raises(InvalidSignatureError, match="ML-DSA-44 check failed"):
            open_checkpoint(replace_line(note, PQ.key_id, flipped), verifiers, ORIGIN)
    # The timestamp is signed too: moving it breaks the signature.
    moved = struct.pack(">Q", 1_767_225_601) + sig.signature[8:]
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(replace_line(note, PQ.key_id, moved), [PQ.verifier], ORIGIN)


def test_a_signature_for_another_checkpoint_is_refused() -> None:
    other = both_signed(Checkpoint(ORIGIN, 1235, CP.root_hash))
    moved = next(s for s in Note.parse(other).signatures if s.key_id == PQ.key_id)
    forged = replace_line(both_signed(), PQ.key_id, moved.signature)
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(forged, [PQ.verifier], ORIGIN)


def test_a_line_under_another_key_id_is_ignored() -> None:
    """Same name, other key: the verifier skips it (signed-note), so a note signed only by an
    impostor ML-DSA key is unverified, and beside the Ed25519 line it is simply ignored."""
    impostor = MLDSA44CosignatureSigner(ORIGIN, bytes([10]) * 32, lambda: 1_767_225_600)
    assert impostor.key_id != PQ.key_id
    note = sign_note(CP.to_text(), [ED, impostor]).to_bytes()
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [PQ.verifier], ORIGIN)
    assert open_checkpoint(note, [ED.verifier], ORIGIN).checkpoint == CP
    with pytest.raises(MissingLogSignatureError, match=f"{PQ.key_id:08x}") as err:
        open_checkpoint(note, [ED.verifier, PQ.verifier], ORIGIN, require_all=True)
    assert err.value.missing == (f"{ORIGIN}+{PQ.key_id:08x}",)


def test_pinning_both_keys_refuses_a_note_with_the_ml_dsa_line_stripped() -> None:
    stripped = sign_checkpoint(CP, ED)
    assert open_checkpoint(stripped, [ED.verifier, PQ.verifier], ORIGIN).checkpoint == CP
    with pytest.raises(MissingLogSignatureError):
        open_checkpoint(stripped, [ED.verifier, PQ.verifier], ORIGIN, require_all=True)


def test_a_witness_policy_may_name_the_logs_ml_dsa_key() -> None:
    policy = Policy.parse(f"log {PQ.vkey}\nquorum none\n".encode())
    assert policy.logs[0].origin == ORIGIN
    assert Policy.parse(policy.to_bytes()) == policy
    assert policy.open_checkpoint(both_signed(), ORIGIN).checkpoint == CP
    with pytest.raises(UnverifiedNoteError):
        policy.open_checkpoint(sign_checkpoint(CP, ED), ORIGIN)  # no ML-DSA line: not the log's
