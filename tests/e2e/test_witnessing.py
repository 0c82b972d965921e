"""WitnessCollector (the log's side of tlog-witness) against real ``stelae witness`` processes."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stelae.sequencer.witnessing import WitnessCollector
from stelae.tiles.note import Note, NoteSignature
from stelae.tiles.notekeys import Ed25519CosignatureSigner
from stelae.tiles.policy import Policy, QuorumNotMetError
from stelae.witness.identity import create_key
from tests.support.witness import (
    LOG_ORIGIN,
    MemoryTree,
    WitnessProcess,
    log_list,
    start_witness,
)


def _witnesses(root: Path, tree: MemoryTree, n: int) -> list[WitnessProcess]:
    (root / "logs.txt").write_bytes(log_list((tree.signer.vkey, 86400)))
    procs = []
    for i in range(n):
        # The CLI's init is tested in test_witness.py; here it would only add a process start
        # per witness. The third witness cosigns with ML-DSA-44 (type 0x06).
        create_key(root / f"w{i}", f"witness.test/w{i}", "ml-dsa-44" if i == 2 else "ed25519")
        procs.append(start_witness(root / f"w{i}", root / "logs.txt"))
    return procs


def _policy(tree: MemoryTree, members: list[tuple[str, str, str]], quorum: str) -> Policy:
    lines = [f"log {tree.signer.vkey}\n"]
    lines += [f"witness {name} {vkey} {url}\n" for name, vkey, url in members]
    return Policy.parse(("".join(lines) + quorum).encode())


def _two_of_three(tree: MemoryTree, procs: list[WitnessProcess]) -> Policy:
    members = [(f"W{i}", p.vkey, p.url) for i, p in enumerate(procs)]
    return _policy(tree, members, "group Q 2 W0 W1 W2\nquorum Q\n")


@pytest.fixture
def tree() -> MemoryTree:
    return MemoryTree().grow(12)


@pytest.fixture
def three(tmp_path: Path, tree: MemoryTree) -> Iterator[list[WitnessProcess]]:
    procs = _witnesses(tmp_path, tree, 3)
    yield procs
    for proc in procs:
        proc.stop()


def test_checkpoints_carry_the_quorum_and_a_witness_behind_catches_up(
    three: list[WitnessProcess], tree: MemoryTree
) -> None:
    policy = _two_of_three(tree, three)
    collector = WitnessCollector(policy, timeout=20)
    note = collector.cosign(tree.note(5), 5, tree.proof)
    cp = policy.open_checkpoint(note, LOG_ORIGIN)
    assert len(cp.note.cosignatures) == 3
    assert [len(c.signature.signature) for c in cp.note.cosignatures] == [72, 72, 8 + 2420]
    assert Note.parse(note).signatures[0] == Note.parse(tree.note(5)).signatures[0]
    assert [o.cosigned for o in collector.last_outcomes] == [True, True, True]
    note = collector.cosign(tree.note(9), 9, tree.proof)  # proofs from 5 to 9
    assert policy.check_quorum(note).signed == ("W0", "W1", "W2")
    # A new collector (a restarted sequencer) starts from 0: each witness answers 409 with
    # its size 9, the collector retries from there and is cosigned.
    fresh = WitnessCollector(policy, timeout=20)
    note = fresh.cosign(tree.note(12), 12, tree.proof)
    assert policy.check_quorum(note).signed == ("W0", "W1", "W2")
    assert [fresh.known_size(f"W{i}") for i in range(3)] == [12, 12, 12]
    collector.close()
    fresh.close()


def test_quorum_lost_fails_closed_and_fail_open_logs(
    three: list[WitnessProcess], tree: MemoryTree, caplog: pytest.LogCaptureFixture
) -> None:
    policy = _two_of_three(tree, three)
    three[1].stop()
    three[2].stop()
    closed = WitnessCollector(policy, timeout=20)
    with pytest.raises(QuorumNotMetError) as caught:
        closed.cosign(tree.note(5), 5, tree.proof)
    assert caught.value.signed == ("W0",)
    assert caught.value.missing == ("W1", "W2")
    assert "unreachable" in caught.value.reasons["W1"]
    assert "W2: unreachable" in str(caught.value)
    opened = WitnessCollector(policy, timeout=20, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="stelae.witnessing"):
        note = opened.cosign(tree.note(6), 6, tree.proof)
    assert policy.witnessed(note).signed == ("W0",)
    assert "without the witness quorum" in caplog.text
    assert "missing W1, W2" in caplog.text


class _Liar(http.server.BaseHTTPRequestHandler):
    """A 'witness' that answers 200 with a line under the right name and key ID but a
    signature of zeros."""

    signer: Ed25519CosignatureSigner

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        sig = NoteSignature(self.signer.name, self.signer.key_id, bytes(72))
        body = sig.to_line().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_bad_cosignature_is_not_counted_and_a_silent_witness_times_out(
    tmp_path: Path, tree: MemoryTree
) -> None:
    (honest,) = _witnesses(tmp_path, tree, 1)
    liar_key = Ed25519CosignatureSigner("witness.test/liar", bytes([9]) * 32)
    handler = type("Liar", (_Liar,), {"signer": liar_key})
    liar = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=liar.serve_forever, daemon=True).start()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    silent_key = Ed25519CosignatureSigner("witness.test/silent", bytes([10]) * 32)
    try:
        members = [
            ("H", honest.vkey, honest.url),
            ("L", liar_key.vkey, f"http://127.0.0.1:{liar.server_address[1]}"),
            ("S", silent_key.vkey, f"http://127.0.0.1:{silent.getsockname()[1]}"),
        ]
        policy = _policy(tree, members, "group Q 2 H L S\nquorum Q\n")
        collector = WitnessCollector(policy, timeout=1.5)
        with pytest.raises(QuorumNotMetError) as caught:
            collector.cosign(tree.note(4), 4, tree.proof)
        assert caught.value.signed == ("H",)
        assert caught.value.reasons["L"].startswith("bad cosignature")
        assert "no answer within 1.5 s" in caught.value.reasons["S"]
        collector.close()
    finally:
        liar.shutdown()
        liar.server_close()
        silent.close()
        honest.stop()
