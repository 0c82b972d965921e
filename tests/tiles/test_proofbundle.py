"""The offline proof file (stelae.tiles.proofbundle): every form round-trips, verifies with no
network, and every tampered part fails with its own typed error."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.errors import StelaeError
from stelae.tiles.checkpoint import Checkpoint, CheckpointMismatchError, sign_checkpoint
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.note import InvalidSignatureError, Note, UnverifiedNoteError, sign_note
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner, rekor_v2_log_id
from stelae.tiles.proof import ProofError, RootMismatchError
from stelae.tiles.proofbundle import (
    MEDIA_TYPE,
    TLOG_PROOF_HEADER,
    LogIdMismatchError,
    MalformedProofError,
    ProofBundle,
    log_ids,
    verify,
)
from tests.support.merkle_reference import mth, path

ORIGIN = "proofs.example.test/log"
SIGNER = Ed25519NoteSigner.from_skey(
    Ed25519NoteSigner.generate(ORIGIN, lambda n: bytes(range(n))).skey
)
OTHER = Ed25519NoteSigner.generate(ORIGIN)  # same name, another key


def body(i: int) -> bytes:
    return json.dumps(
        {"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"n": i}},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def make(
    size: int = 13, index: int = 6, signer: Ed25519NoteSigner = SIGNER, **kw: Any
) -> ProofBundle:
    leaves = [leaf_hash(body(i)) for i in range(size)]
    cp = sign_checkpoint(Checkpoint(ORIGIN, size, mth(leaves)), signer)
    return ProofBundle(
        index,
        body(index),
        tuple(path(index, leaves)),
        cp,
        log_id=rekor_v2_log_id(ORIGIN, signer.public_key_bytes),
        **kw,
    )


V = [SIGNER.verifier]


# --- round trips ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_form_round_trips_and_verifies(size_index: tuple[int, int]) -> None:
    size, index = size_index
    b = make(size, index)
    assert ProofBundle.parse(b.to_json()) == b
    assert ProofBundle.parse(json.dumps(b.to_tle()).encode()) == b
    assert ProofBundle.from_tle(b.to_tle()) == b
    text = ProofBundle.parse(b.to_tlog_proof())
    assert text == replace(b, log_id=b"")  # the text form carries no log ID
    assert text.to_tlog_proof() == b.to_tlog_proof()
    for form in (b, text):
        cp = verify(form, V, ORIGIN)
        assert cp.checkpoint.size == size


def test_the_rekor_v1_timestamp_survives_the_json_forms() -> None:
    b = make(integrated_time=1_700_000_000, signed_entry_timestamp=b"\x01" * 64)
    tle = b.to_tle()
    assert tle["integratedTime"] == "1700000000"
    assert tle["inclusionPromise"] == {
        "signedEntryTimestamp": base64.b64encode(b"\x01" * 64).decode()
    }
    assert ProofBundle.parse(b.to_json()) == b


def test_the_tle_is_exactly_rekor_v2s_shape() -> None:
    b = make(size=5, index=4)
    tle = b.to_tle()
    assert set(tle) == {
        "logIndex",
        "logId",
        "kindVersion",
        "integratedTime",
        "inclusionPromise",
        "inclusionProof",
        "canonicalizedBody",
    }
    assert tle["logIndex"] == "4" and tle["integratedTime"] == "0"
    assert tle["inclusionPromise"] is None
    assert tle["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    proof = tle["inclusionProof"]
    assert proof["logIndex"] == "4" and proof["treeSize"] == "5"
    assert base64.b64decode(proof["rootHash"]) == b.tree.root_hash  # raw 32 bytes, not hex
    assert proof["checkpoint"]["envelope"].encode() == b.checkpoint
    assert proof["checkpoint"]["envelope"].count("\n\n") == 1  # what sigstore-python requires
    assert base64.b64decode(tle["logId"]["keyId"])[:4] == SIGNER.key_id.to_bytes(4, "big")
    assert base64.b64decode(tle["canonicalizedBody"]) == body(4)


def test_the_tlog_proof_text_follows_c2sp() -> None:
    b = make(size=13, index=6)
    lines = b.to_tlog_proof().decode().split("\n")
    assert lines[0] == TLOG_PROOF_HEADER
    assert lines[1] == "extra " + base64.b64encode(body(6)).decode()
    assert lines[2] == "index 6"
    n = len(b.hashes)
    assert [base64.b64decode(x) for x in lines[3 : 3 + n]] == list(b.hashes)
    assert lines[3 + n] == ""
    assert "\n".join(lines[4 + n :]).encode() == b.checkpoint


def test_a_size_one_tree_has_an_empty_proof() -> None:
    b = make(size=1, index=0)
    assert b.hashes == ()
    assert ProofBundle.parse(b.to_tlog_proof()).hashes == ()
    verify(b, V, ORIGIN)


def test_cosignatures_are_kept_and_checked() -> None:
    witness = Ed25519CosignatureSigner.generate("witness.example.test", clock=lambda: 1234)
    b = make()
    cosigned = sign_note(Note.parse(b.checkpoint).text, [witness], Note.parse(b.checkpoint))
    b2 = replace(b, checkpoint=cosigned.to_bytes())
    assert ProofBundle.parse(b2.to_json()) == b2
    cp = verify(b2, V, ORIGIN, witnesses=[witness.verifier])
    assert cp.note.cosignature_time("witness.example.test") == 1234


def test_a_sigstore_bundle_is_read_through_its_first_tlog_entry() -> None:
    b = make()
    sigstore = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"tlogEntries": [b.to_tle()]},
    }
    assert ProofBundle.parse(json.dumps(sigstore).encode()) == b


def test_a_rekor_v1_answer_converts() -> None:
    b = make(integrated_time=99, signed_entry_timestamp=b"s" * 64)
    tree = b.tree
    answer = {
        b.uuid: {
            "body": base64.b64encode(b.body).decode(),
            "integratedTime": 99,
            "logID": b.log_id.hex(),
            "logIndex": b.index,
            "verification": {
                "inclusionProof": {
                    "checkpoint": b.checkpoint.decode(),
                    "hashes": [h.hex() for h in b.hashes],
                    "logIndex": b.index,
                    "rootHash": tree.root_hash.hex(),
                    "treeSize": tree.size,
                },
                "signedEntryTimestamp": base64.b64encode(b"s" * 64).decode(),
            },
        }
    }
    assert ProofBundle.from_rekor_v1(answer) == b
    answer[("00" * 32)] = answer.pop(b.uuid)
    with pytest.raises(MalformedProofError, match="UUID"):
        ProofBundle.from_rekor_v1(answer)


def test_log_ids_cover_rekor_v2_and_v1() -> None:
    v2, v1 = log_ids(SIGNER.verifier)
    assert v2 == rekor_v2_log_id(ORIGIN, SIGNER.public_key_bytes)
    assert v1 != v2 and len(v1) == 32


# --- tampering -----------------------------------------------------------------------------------


def _tle(b: ProofBundle) -> dict[str, Any]:
    return b.to_tle()


def test_a_tampered_body_fails_the_inclusion_proof() -> None:
    b = make()
    bad = replace(b, body=body(7))
    with pytest.raises(RootMismatchError) as err:
        verify(bad, V, ORIGIN)
    assert err.value.expected == b.tree.root_hash  # the evidence: both roots
    assert err.value.calculated != b.tree.root_hash


@pytest.mark.parametrize("which", [0, 1, -1])
def test_a_tampered_hash_fails(which: int) -> None:
    b = make()
    hashes = list(b.hashes)
    hashes[which] = bytes([hashes[which][0] ^ 1]) + hashes[which][1:]
    with pytest.raises(RootMismatchError):
        verify(replace(b, hashes=tuple(hashes)), V, ORIGIN)


@pytest.mark.parametrize("hashes", [lambda h: h[:-1], lambda h: (*h, h[0])])
def test_a_proof_of_the_wrong_length_fails(hashes: Any) -> None:
    b = make()
    with pytest.raises(ProofError, match="too"):
        verify(replace(b, hashes=hashes(b.hashes)), V, ORIGIN)


@pytest.mark.parametrize("index", [5, 7, 12])
def test_a_tampered_index_fails(index: int) -> None:
    with pytest.raises(VerificationError):
        verify(replace(make(index=6), index=index), V, ORIGIN)


def test_an_index_outside_the_tree_is_malformed() -> None:
    with pytest.raises(MalformedProofError, match="not in the checkpoint"):
        replace(make(size=13), index=13)


def test_a_checkpoint_signed_by_another_key_fails() -> None:
    b = make(signer=OTHER)  # same name, another key: another key ID, so no known signature
    with pytest.raises(UnverifiedNoteError):
        verify(replace(b, log_id=b""), V, ORIGIN)


def test_a_checkpoint_of_another_origin_fails() -> None:
    with pytest.raises(CheckpointMismatchError):
        verify(make(), V, "another.example.test/log")


def test_a_tampered_checkpoint_text_fails() -> None:
    b = make()
    text = b.checkpoint.decode()
    lines = text.split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()  # another root, same signature
    with pytest.raises(InvalidSignatureError):
        verify(replace(b, checkpoint="\n".join(lines).encode()), V, ORIGIN)


def test_a_tampered_log_id_fails_with_both_ids() -> None:
    b = replace(make(), log_id=bytes(32))
    with pytest.raises(LogIdMismatchError) as err:
        verify(b, V, ORIGIN)
    assert err.value.stated == bytes(32)
    assert rekor_v2_log_id(ORIGIN, SIGNER.public_key_bytes) in err.value.expected


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda t: t["inclusionProof"].update(rootHash=base64.b64encode(bytes(32)).decode()),
            "root",
        ),
        (lambda t: t["inclusionProof"].update(treeSize="14"), "treeSize"),
        (lambda t: t["inclusionProof"].update(logIndex="5"), "logIndex"),
        (lambda t: t.update(logIndex="5"), "logIndex"),
        (lambda t: t.update(kindVersion={"kind": "dsse", "version": "0.0.2"}), "kindVersion"),
        (lambda t: t.update(canonicalizedBody="not base64!"), "base64"),
        (lambda t: t.update(canonicalizedBody=""), "empty"),
        (lambda t: t["inclusionProof"].update(hashes=["AAAA"]), "bytes"),
        (lambda t: t["inclusionProof"]["checkpoint"].update(envelope="nonsense"), "checkpoint"),
        (lambda t: t.pop("inclusionProof"), "inclusionProof"),
        (lambda t: t.update(logIndex="-1"), "logIndex"),
        (lambda t: t.update(logIndex="01"), "logIndex"),
        (lambda t: t.update(logIndex=True), "logIndex"),
    ],
)
def test_inconsistent_tles_are_malformed(edit: Any, match: str) -> None:
    tle = _tle(make())
    edit(tle)
    with pytest.raises(MalformedProofError, match=match):
        ProofBundle.from_tle(tle)


def test_the_two_forms_of_a_proof_file_must_agree() -> None:
    b = make()
    other = make(index=7)
    obj = json.loads(b.to_json())
    obj["tlogProof"] = other.to_tlog_proof().decode()
    with pytest.raises(MalformedProofError, match="disagree"):
        ProofBundle.parse(json.dumps(obj).encode())
    assert json.loads(b.to_json())["mediaType"] == MEDIA_TYPE


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b"c2sp.org/tlog-proof@v2\nindex 1\n\n", "start with"),
        (b"c2sp.org/tlog-proof@v1\nindex 6\n\n", "extra"),
        (b"c2sp.org/tlog-proof@v1\nextra e30=\n\n", "index"),
        (b"c2sp.org/tlog-proof@v1\nextra e30=\nindex 06\n\n", "canonical"),
        (b"c2sp.org/tlog-proof@v1\nextra e30\nindex 6\n\n", "base64"),
        (b"c2sp.org/tlog-proof@v1\nextra e30=\nindex 6\nAAAA\n\n", "bytes"),
        (b"c2sp.org/tlog-proof@v1\nextra e30=\nindex 6", "blank line"),
        (b"nonsense", "neither"),
        (b"[1, 2]", "object"),
        (b'{"mediaType": "application/x-other"}', "mediaType"),
    ],
)
def test_malformed_tlog_proofs(text: bytes, match: str) -> None:
    with pytest.raises(MalformedProofError, match=match):
        ProofBundle.parse(text)


def test_a_tlog_proof_with_a_bad_checkpoint_is_malformed() -> None:
    b = make()
    text = b.to_tlog_proof().replace(b"\n\n" + b.checkpoint, b"\n\nnot a note\n")
    with pytest.raises(MalformedProofError, match="checkpoint"):
        ProofBundle.parse(text)


def test_errors_are_stelae_errors() -> None:
    assert issubclass(MalformedProofError, FormatError)
    assert issubclass(LogIdMismatchError, VerificationError)
    assert issubclass(LogIdMismatchError, StelaeError)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_raise_malformed(data: bytes) -> None:
    for candidate in (data, TLOG_PROOF_HEADER.encode() + b"\n" + data):
        with contextlib.suppress(MalformedProofError):
            ProofBundle.parse(candidate)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1_000_000), st.integers(0, 7))
def test_any_single_bit_flip_in_the_text_form_is_caught(position: int, bit: int) -> None:
    b = make(size=13, index=6)
    data = bytearray(b.to_tlog_proof())
    data[position % len(data)] ^= 1 << bit
    try:
        tampered = ProofBundle.parse(bytes(data))
    except MalformedProofError:
        return
    if tampered == replace(b, log_id=b""):
        return  # a flip that the parser normalizes away cannot change what is proved
    with pytest.raises(StelaeError):
        verify(tampered, V, ORIGIN)
