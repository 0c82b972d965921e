"""``stelae witness`` as real processes on 127.0.0.1: the statuses of
https://c2sp.org/tlog-witness@v1.0.0 and that one log is never cosigned at two views."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stelae.tiles.addcheckpoint import AddCheckpointRequest, parse_signature_lines
from stelae.tiles.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from stelae.tiles.hashing import EMPTY_ROOT
from stelae.tiles.note import Note, open_note
from stelae.tiles.notekeys import Ed25519CosignatureVerifier, Ed25519NoteSigner, parse_vkey
from stelae.witness.state import origin_hash
from tests.support.witness import (
    LOG_ORIGIN,
    MemoryTree,
    WitnessProcess,
    init_witness,
    log_list,
    start_witness,
)

OTHER = Ed25519NoteSigner("example.test/rate-limited", bytes([43]) * 32)
EMPTY = Ed25519NoteSigner("example.test/empty", bytes([44]) * 32)


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree().grow(20)


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory, tree: MemoryTree) -> Iterator[WitnessProcess]:
    root = tmp_path_factory.mktemp("witness")
    init_witness(root / "data", "witness.test/w1")
    (root / "logs.txt").write_bytes(
        log_list((tree.signer.vkey, 86400), (OTHER.vkey, 1), (EMPTY.vkey, 86400))
    )
    proc = start_witness(root / "data", root / "logs.txt")
    yield proc
    assert proc.stop() == 0


def _cosigned(witness: WitnessProcess, note: bytes, body: bytes) -> None:
    text = Note.parse(note).text
    sigs = parse_signature_lines(text, body)
    assert len(sigs) == 1
    opened = open_note(Note(text, sigs).to_bytes(), [parse_vkey(witness.vkey)])
    assert opened.cosignatures[0].timestamp > 0


def test_init_prints_only_the_vkey(tmp_path: Path) -> None:
    out = init_witness(tmp_path / "w", "witness.test/init")
    assert out.count("\n") == 1
    verifier = parse_vkey(out.strip())
    assert isinstance(verifier, Ed25519CosignatureVerifier)
    assert verifier.name == "witness.test/init"
    pq = init_witness(tmp_path / "pq", "witness.test/pq", "ml-dsa-44")
    assert parse_vkey(pq.strip()).key_type == 0x06


def test_witness_walks_the_log_forward_and_serves_its_latest(
    witness: WitnessProcess, tree: MemoryTree
) -> None:
    status, _, body = witness.post(tree.request(0, 5))
    assert status == 200, body
    _cosigned(witness, tree.note(5), body)
    # Stale old size: 409 with the size the witness holds.
    status, ctype, body = witness.post(tree.request(0, 8))
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"5\n")
    status, _, body = witness.post(tree.request(5, 8))
    assert status == 200, body
    status, note = witness.get(f"/{origin_hash(LOG_ORIGIN)}/checkpoint")
    assert status == 200
    cp = open_checkpoint(
        note, [tree.signer.verifier], LOG_ORIGIN, witnesses=[parse_vkey(witness.vkey)]
    )
    assert cp.checkpoint.size == 8
    assert len(cp.note.cosignatures) == 1
    assert witness.get(f"/{'0' * 64}/checkpoint")[0] == 404

    # Split view: the same size 8 with another root is refused (409 in v1.0.0).
    fork = tree.fork(5).grow(3, b"fork")
    status, ctype, body = witness.post(fork.request(8))
    assert (status, body) == (409, b"8\n")
    # A consistency proof that does not lead to the new root: 422.
    fork10 = tree.fork(8).grow(2, b"other")
    bad = AddCheckpointRequest(8, tuple(tree.proof(8, 10)), fork10.note(10)).to_bytes()
    status, _, body = witness.post(bad)
    assert status == 422, body
    assert witness.get(f"/{origin_hash(LOG_ORIGIN)}/checkpoint")[1] == note  # unchanged
    # Old size larger than the checkpoint: 400.
    assert witness.post(tree.request(8, 8).replace(b"old 8", b"old 9", 1))[0] == 400


def test_refusals(witness: WitnessProcess, tree: MemoryTree) -> None:
    stranger = Ed25519NoteSigner("example.test/unknown", bytes([7]) * 32)
    unknown = MemoryTree(stranger).grow(3)
    assert witness.post(unknown.request(0))[0] == 404
    # Signed with another key under the log's name: 403.
    impostor = MemoryTree(Ed25519NoteSigner(LOG_ORIGIN, bytes([8]) * 32), tree.leaves[:12])
    status, _, body = witness.post(impostor.request(0))
    assert status == 403, body
    # The log's own line, altered: 403.
    note = Note.parse(tree.note(12))
    sig = note.signatures[0]
    broken = type(sig)(sig.name, sig.key_id, bytes(len(sig.signature)))
    req = AddCheckpointRequest(0, (), Note(note.text, (broken,)).to_bytes()).to_bytes()
    assert witness.post(req)[0] == 403
    assert witness.post(b"old zero\n\nnot a note")[0] == 400
    # A size-0 checkpoint must carry the empty root; with it, it is cosigned.
    zero = Checkpoint(EMPTY.name, 0, bytes(32))
    req = AddCheckpointRequest(0, (), sign_checkpoint(zero, EMPTY)).to_bytes()
    assert witness.post(req)[0] == 422
    empty = Checkpoint(EMPTY.name, 0, EMPTY_ROOT)
    req = AddCheckpointRequest(0, (), sign_checkpoint(empty, EMPTY)).to_bytes()
    assert witness.post(req)[0] == 200
    # A proof with old size 0 is refused.
    req = AddCheckpointRequest(0, (bytes(32),), MemoryTree(EMPTY).grow(2).note()).to_bytes()
    assert witness.post(req)[0] == 422


def test_rate_limit_answers_429(witness: WitnessProcess) -> None:
    # OTHER's list entry allows 1 request a day: the bucket holds one, the next is refused.
    tree = MemoryTree(OTHER).grow(2)
    assert witness.post(tree.request(0))[0] == 200
    status, _, body = witness.post(tree.request(2))
    assert status == 429, body


def test_racing_split_views_cosign_at_most_one(tmp_path: Path, tree: MemoryTree) -> None:
    """Two witness processes on one data directory, 16 threads: half send tree A, half tree B,
    both of size 14 and both consistent with the cosigned size 10. Exactly one request wins;
    every other one is told the new size (409), and the stored view is the winner's."""
    init_witness(tmp_path / "data", "witness.test/race")
    (tmp_path / "logs.txt").write_bytes(log_list((tree.signer.vkey, 86400)))
    procs = [start_witness(tmp_path / "data", tmp_path / "logs.txt") for _ in range(2)]
    try:
        assert procs[0].post(tree.request(0, 10))[0] == 200
        a = tree.fork(10).grow(4, b"A")
        b = tree.fork(10).grow(4, b"B")
        assert a.checkpoint().root_hash != b.checkpoint().root_hash
        bodies = {"A": a.request(10), "B": b.request(10)}
        barrier = threading.Barrier(16)

        def send(i: int) -> tuple[str, int, bytes]:
            which = "AB"[i % 2]
            barrier.wait()
            status, _, body = procs[i // 2 % 2].post(bodies[which])
            return which, status, body

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(send, range(16)))
        winners = [r for r in results if r[1] == 200]
        assert len(winners) == 1, results
        assert all(r[1] == 409 and r[2] == b"14\n" for r in results if r[1] != 200), results
        status, note = procs[1].get(f"/{origin_hash(LOG_ORIGIN)}/checkpoint")
        assert status == 200
        winner_tree = a if winners[0][0] == "A" else b
        assert Checkpoint.parse(Note.parse(note).text) == winner_tree.checkpoint()
    finally:
        for proc in procs:
            proc.stop()
