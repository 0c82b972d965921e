"""The serverless witness as API Gateway and a racing client see it: HTTP API (2.0) events, the
checks every deployment of it must pass, and a store that makes two requests read a log's record
before either writes (the race S3's conditional writes must settle)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.lambda_events import http_api_event
from stelae.tiles.addcheckpoint import parse_signature_lines
from stelae.tiles.note import Note, NoteVerifier, open_note
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.witness.gateway import handle_event
from stelae.witness.protocol import Witness
from stelae.witness.state import LogRecord, WitnessStore, origin_hash
from tests.support.witness import MemoryTree

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
HOST = "w1.execute-api.us-east-1.amazonaws.com"


def witness_event(method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    """What an HTTP API with a Lambda proxy integration (payload 2.0) hands the function; a
    ``text/plain`` body arrives as text, which is what witness clients send."""
    return http_api_event(method, path, body, "text/plain", host=HOST, base64_body=False)


def post(invoke: Invoke, body: bytes) -> tuple[int, bytes]:
    result = invoke(witness_event("POST", "/add-checkpoint", body))
    return int(result["statusCode"]), str(result["body"]).encode()


def check_witness(invoke: Invoke, verifier: NoteVerifier, tree: MemoryTree) -> None:
    """Every tlog-witness answer a deployment must give, in order, for ``tree``'s log (at least
    5 leaves; the witness has not seen it yet). Leaves the witness holding ``tree`` at size 4."""
    stranger = MemoryTree(Ed25519NoteSigner.generate("unknown.example/log")).grow(2)
    assert post(invoke, stranger.request(0))[0] == 404, "an unknown log is 404"

    status, lines = post(invoke, tree.request(0, 4))
    assert status == 200, lines
    text = Note.parse(tree.note(4)).text
    mine = parse_signature_lines(text, lines)
    opened = open_note(Note(text, mine).to_bytes(), [verifier])  # raises if it does not verify
    assert [s.name for s in opened.verified] == [verifier.name]

    read = invoke(witness_event("GET", f"/{origin_hash(tree.signer.name)}/checkpoint"))
    assert read["statusCode"] == 200
    open_note(str(read["body"]).encode(), [verifier, tree.signer.verifier])

    assert post(invoke, tree.request(0, 5)) == (409, b"4\n"), "a stale old size learns 4"
    # Split views: another tree of the cosigned size is 409 (tlog-witness v1.0.0); a larger tree
    # whose proof is not from the cosigned one is 422.
    other = tree.fork(2).grow(2, b"split")
    assert post(invoke, other.request(4, 4))[0] == 409
    other.grow(4, b"split")
    assert post(invoke, other.request(4, 8))[0] == 422

    assert invoke({"not": "an event"})["statusCode"] == 400
    wrong = invoke(witness_event("GET", "/add-checkpoint"))
    assert (wrong["statusCode"], wrong["headers"]["Allow"]) == (405, "POST")


class ReadTogether:
    """A :class:`WitnessStore` over ``inner`` whose first ``parties`` reads all happen before
    any of them goes on to check and write, one at a time: two requests that race perfectly.
    Later reads (a request checked again after losing) pass straight through."""

    def __init__(self, inner: WitnessStore, parties: int = 2) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=30)
        self.left = parties
        self.lock = threading.Lock()
        self.one_at_a_time = threading.Lock()

    @contextlib.contextmanager
    def locked(self, origin: str) -> Iterator[LogRecord]:
        with self.lock:
            first = self.left > 0
            self.left -= 1
        with self.inner.locked(origin) as record:
            if first:
                self.barrier.wait()
            with self.one_at_a_time:
                yield record

    def latest(self, origin_hex: str) -> bytes | None:
        return self.inner.latest(origin_hex)


def check_race(witness: Witness, tree: MemoryTree) -> None:
    """Two trees of one size, from the size ``witness`` holds (4), submitted at once through
    the event handler: exactly one is cosigned, the other is told the new size (409)."""
    racing = Witness(witness.signer, witness.log_list, ReadTogether(witness.state))
    a = MemoryTree(tree.signer, list(tree.leaves[:4])).grow(4, b"a")
    b = MemoryTree(tree.signer, list(tree.leaves[:4])).grow(4, b"b")
    answers: dict[str, tuple[int, bytes]] = {}

    def submit(name: str, t: MemoryTree) -> None:
        answers[name] = post(lambda e: handle_event(racing, e), t.request(4, 8))

    threads = [threading.Thread(target=submit, args=p) for p in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(s for s, _ in answers.values()) == [200, 409], answers
    winner = a if answers["a"][0] == 200 else b
    loser = b if winner is a else a
    assert answers["b" if winner is a else "a"][1] == b"8\n"
    held = witness.state.latest(origin_hash(tree.signer.name))
    assert held is not None
    assert Note.parse(held).text == Note.parse(winner.note(8)).text
    # The loser's tree stays refused: it is a split view of the cosigned one.
    assert post(lambda e: handle_event(witness, e), loser.request(8, 8))[0] == 409
