"""tlog-policy files (https://c2sp.org/tlog-policy): parse/serialize, the quorum rule, and
checkpoint verification against real and freshly made cosignatures."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.note import InvalidSignatureError, Note, NoteSignature, sign_note
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner, verifier_to_vkey
from stelae.tiles.policy import MalformedPolicyError, Policy, QuorumNotMetError
from tests.support.vectors import load_vectors

VECTORS = load_vectors("checkpoints.json")
REKOR = next(c for c in VECTORS["signed"] if len(c["witnesses"]) == 3)


def _cosigner(name: str, seed: int) -> Ed25519CosignatureSigner:
    return Ed25519CosignatureSigner(name, bytes([seed]) * 32, lambda: 1_700_000_000)


X = [_cosigner(f"x{i}.example/w", i) for i in range(1, 4)]
Y = [_cosigner(f"y{i}.example/w", 10 + i) for i in range(1, 4)]
LOG = Ed25519NoteSigner("example.com/log", bytes([99]) * 32)


def _two_level_policy() -> bytes:
    lines = [f"log {LOG.vkey} https://log.example/\n"]
    lines += [f"witness X{i} {w.vkey}\n" for i, w in enumerate(X, 1)]
    lines.append("group X-witnesses 2 X1 X2 X3\n")
    lines += [f"witness Y{i} {w.vkey} https://y{i}.example/\n" for i, w in enumerate(Y, 1)]
    lines.append("group Y-witnesses any Y1 Y2 Y3\n")
    lines.append("group X-and-Y all X-witnesses Y-witnesses\n")
    lines.append("quorum X-and-Y\n")
    return "".join(lines).encode()


def test_spec_example_parses_and_round_trips() -> None:
    policy = Policy.parse(_two_level_policy())
    assert [w.name for w in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert [g.k for g in policy.groups] == [2, 1, 2]
    assert policy.logs[0].origin == "example.com/log"
    assert policy.logs[0].url == "https://log.example/"
    assert policy.witnesses[3].url == "https://y1.example/"
    again = Policy.parse(policy.to_bytes())
    assert again == policy
    assert again.to_bytes() == policy.to_bytes()


def test_comments_blanks_tabs_and_leading_space_are_ignored() -> None:
    data = (
        f"# a comment\n\n   \t\n  # indented comment\n\twitness  A\t{X[0].vkey}  \nquorum   A \t\n"
    ).encode()
    policy = Policy.parse(data)
    assert policy.quorum == "A"
    assert Policy.parse(policy.to_bytes()) == policy


def test_non_utf8_names_are_opaque_and_round_trip() -> None:
    data = b"witness K\xff " + X[0].vkey.encode() + b"\nquorum K\xff\n"
    policy = Policy.parse(data)
    assert policy.to_bytes() == data


# (cosigned witnesses, quorum satisfied) for the two-level example policy.
QUORUM_TABLE = [
    (set(), False),
    ({"X1", "X2"}, False),  # X group only
    ({"Y1"}, False),
    ({"X1", "Y2"}, False),  # X needs 2
    ({"X1", "X3", "Y2"}, True),
    ({"X1", "X2", "X3", "Y1", "Y2", "Y3"}, True),
    ({"X2", "X3", "Y3"}, True),
    ({"X-witnesses", "Y-witnesses"}, False),  # group names are not cosigners
]


@pytest.mark.parametrize(("cosigned", "want"), QUORUM_TABLE)
def test_quorum_table(cosigned: set[str], want: bool) -> None:
    assert Policy.parse(_two_level_policy()).satisfied(cosigned) is want


@pytest.mark.parametrize(
    ("quorum_lines", "cosigned", "want"),
    [
        ("quorum none\n", set(), True),
        ("quorum A\n", {"A"}, True),
        ("quorum A\n", {"B"}, False),
        ("group G all A B\nquorum G\n", {"A"}, False),
        ("group G all A B\nquorum G\n", {"A", "B"}, True),
        ("group G 1 A B\nquorum G\n", {"B"}, True),
        ("group G 2 A B\nquorum G\n", {"B"}, False),
    ],
)
def test_simple_quorums(quorum_lines: str, cosigned: set[str], want: bool) -> None:
    data = f"witness A {X[0].vkey}\nwitness B {X[1].vkey}\n{quorum_lines}".encode()
    assert Policy.parse(data).satisfied(cosigned) is want


BAD = [
    (f"witness A {X[0].vkey}\n".encode(), "no quorum line"),
    (f"witness A {X[0].vkey}\nquorum A\nquorum A\n".encode(), "exactly one quorum"),
    (b"quorum B\n", "not a witness or group defined above"),
    (f"group G any A\nwitness A {X[0].vkey}\nquorum G\n".encode(), "not defined on an earlier"),
    (f"witness A {X[0].vkey}\ngroup G 2 A\nquorum G\n".encode(), "threshold 2 is not between 1"),
    (f"witness A {X[0].vkey}\ngroup G 0 A\nquorum G\n".encode(), "threshold 0"),
    (f"witness A {X[0].vkey}\ngroup G some A\nquorum G\n".encode(), "not all, any or a number"),
    (f"witness A {X[0].vkey}\ngroup G any A A\nquorum G\n".encode(), "member twice"),
    (f"witness A {X[0].vkey}\ngroup G any none\nquorum G\n".encode(), "'none' cannot be"),
    (f"witness none {X[0].vkey}\nquorum none\n".encode(), "predefined"),
    (f"witness A {X[0].vkey}\nwitness A {X[1].vkey}\nquorum A\n".encode(), "already defined"),
    (f"witness A {X[0].vkey}\nwitness B {X[0].vkey}\nquorum A\n".encode(), "same public key"),
    (f"witness A {LOG.vkey}\nquorum A\n".encode(), "not 0x04 or 0x06"),
    (f"log {X[0].vkey}\nquorum none\n".encode(), "not 0x01, 0x02 or 0x06"),
    (b"witness A nota+vkey\nquorum A\n", "bad witness vkey"),
    (b"frobnicate x\nquorum none\n", "unknown keyword 'frobnicate'"),
    (b"quorum none\r\n", "control character 0x0d"),
    (b"quorum none", "does not end with a newline"),
    (b"group G any\nquorum none\n", "expected 'group"),
    (f"log {LOG.vkey} url extra\nquorum none\n".encode(), "expected 'log"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_policies_are_rejected_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPolicyError, match=message):
        Policy.parse(data)


def _checkpoint_note(size: int = 5) -> Note:
    cp = Checkpoint("example.com/log", size, bytes([7]) * 32)
    return sign_note(cp.to_text(), [LOG])


def test_open_checkpoint_needs_the_quorum_and_names_who_is_missing() -> None:
    policy = Policy.parse(_two_level_policy())
    log_only = _checkpoint_note()
    with pytest.raises(QuorumNotMetError) as caught:
        policy.open_checkpoint(log_only.to_bytes(), "example.com/log")
    assert caught.value.signed == ()
    assert caught.value.missing == ("X1", "X2", "X3", "Y1", "Y2", "Y3")
    partly = sign_note(log_only.text, [X[0], Y[1]], log_only)
    with pytest.raises(QuorumNotMetError) as caught:
        policy.open_checkpoint(partly.to_bytes(), "example.com/log")
    assert caught.value.signed == ("X1", "Y2")
    assert "signed by X1, Y2; missing X2, X3, Y1, Y3" in str(caught.value)
    enough = sign_note(log_only.text, [X[0], X[2], Y[1]], log_only)
    cp = policy.open_checkpoint(enough.to_bytes(), "example.com/log")
    assert cp.checkpoint.size == 5
    assert policy.witnessed(enough.to_bytes()).signed == ("X1", "X3", "Y2")


def test_a_broken_cosignature_from_a_policy_witness_rejects_the_note() -> None:
    policy = Policy.parse(_two_level_policy())
    note = sign_note(_checkpoint_note().text, [X[0], X[1], Y[0]], _checkpoint_note())
    bad = note.signatures[1]
    flipped = NoteSignature(
        bad.name, bad.key_id, bad.signature[:-1] + bytes([bad.signature[-1] ^ 1])
    )
    tampered = Note(note.text, (note.signatures[0], flipped, *note.signatures[2:]))
    with pytest.raises(InvalidSignatureError):
        policy.check_quorum(tampered.to_bytes())


def test_ml_dsa_witnesses_count_towards_the_quorum() -> None:
    pq = MLDSA44CosignatureSigner("pq.example/w", bytes([5]) * 32, lambda: 1_700_000_000)
    data = f"witness PQ {verifier_to_vkey(pq.verifier)}\nwitness A {X[0].vkey}\n"
    policy = Policy.parse((data + "group G all PQ A\nquorum G\n").encode())
    note = sign_note(_checkpoint_note().text, [pq, X[0]], _checkpoint_note())
    assert policy.check_quorum(note.to_bytes()).signed == ("PQ", "A")


def test_real_rekor_witness_cosignatures_satisfy_a_two_of_three_policy() -> None:
    case: dict[str, Any] = REKOR
    lines = [f"log {case['log_key']['vkey']}\n"]
    lines += [f"witness W{i} {w['vkey']}\n" for i, w in enumerate(case["witnesses"])]
    lines.append("group Q 2 W0 W1 W2\nquorum Q\n")
    policy = Policy.parse("".join(lines).encode())
    cp = policy.open_checkpoint(case["note"].encode(), case["origin"])
    assert cp.checkpoint.size == case["size"]
    assert policy.witnessed(case["note"].encode()).signed == ("W0", "W1", "W2")
    # Dropping two of the three cosignature lines leaves one: 2-of-3 fails, naming both.
    note = Note.parse(case["note"].encode())
    one = Note(note.text, note.signatures[:2]).to_bytes()
    with pytest.raises(QuorumNotMetError) as caught:
        policy.open_checkpoint(one, case["origin"])
    assert caught.value.signed == ("W0",)
    assert caught.value.missing == ("W1", "W2")
    assert base64.b64decode(case["root"]) == cp.checkpoint.root_hash
