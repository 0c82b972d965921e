"""A witness whose log list names a log's ML-DSA-44 key (type 0x06, the log signature
https://c2sp.org/tlog-checkpoint recommends): it checks that line of each checkpoint, beside
which the log's Ed25519 lines are just other signatures."""

from __future__ import annotations

from pathlib import Path

from stelae.tiles.addcheckpoint import AddCheckpointRequest, parse_signature_lines
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.hashing import leaf_hash, root_from_leaf_hashes
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.note import Note, NoteSignature, sign_note
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner
from stelae.witness.loglist import LogList
from stelae.witness.protocol import Witness
from stelae.witness.state import WitnessState
from tests.support.witness import log_list

ORIGIN = "pq.example/log"
ED = Ed25519NoteSigner(ORIGIN, bytes([5]) * 32)
PQ = MLDSA44CosignatureSigner(ORIGIN, bytes([6]) * 32, lambda: 1_767_225_600)
WITNESS = Ed25519CosignatureSigner("w.example/one", bytes([7]) * 32, lambda: 1_767_225_601)
CP = Checkpoint(ORIGIN, 2, root_from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b")]))


def request(note: bytes) -> bytes:
    # From size 0 no consistency proof is needed (https://c2sp.org/tlog-witness).
    return AddCheckpointRequest(0, (), note).to_bytes()


def witness(tmp_path: Path) -> Witness:
    logs = LogList.parse(log_list((PQ.vkey, 10**6)))
    assert logs.logs[ORIGIN].verifier == PQ.verifier
    return Witness(WITNESS, logs, WitnessState(tmp_path))


def test_a_witness_cosigns_a_checkpoint_by_the_logs_ml_dsa_key(tmp_path: Path) -> None:
    note = sign_note(CP.to_text(), [ED, PQ]).to_bytes()
    answer = witness(tmp_path).add_checkpoint(request(note))
    assert answer.status == 200, answer
    (line,) = parse_signature_lines(CP.to_text(), answer.body)
    assert (line.name, line.key_id) == (WITNESS.name, WITNESS.key_id)


def test_without_a_valid_ml_dsa_line_the_witness_refuses(tmp_path: Path) -> None:
    w = witness(tmp_path)
    ed_only = sign_note(CP.to_text(), [ED]).to_bytes()
    refused = w.add_checkpoint(request(ed_only))
    assert refused.status == 403 and b"no signature by the key" in refused.body
    both = Note.parse(sign_note(CP.to_text(), [ED, PQ]).to_bytes())
    forged = tuple(
        NoteSignature(s.name, s.key_id, s.signature[:-1] + bytes([s.signature[-1] ^ 1]))
        if s.key_id == PQ.key_id
        else s
        for s in both.signatures
    )
    bad = w.add_checkpoint(request(Note(both.text, forged).to_bytes()))
    assert bad.status == 403 and b"bad signature" in bad.body
