"""Checkpoints against tests/vectors/checkpoints.json (docs/compatibility.md, "Test vectors")."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from stelae.tiles.checkpoint import (
    Checkpoint,
    CheckpointMismatchError,
    MalformedCheckpointError,
    SignedCheckpoint,
    open_checkpoint,
    sign_checkpoint,
)
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.note import InvalidSignatureError, UnverifiedNoteError, sign_note
from stelae.tiles.notekeys import (
    ECDSANoteVerifier,
    Ed25519CosignatureSigner,
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    parse_vkey,
    verifier_to_vkey,
)
from tests.support.vectors import load_vectors

VECTORS: dict[str, Any] = load_vectors("checkpoints.json")
SIGNED: list[dict[str, Any]] = VECTORS["signed"]
EMPTY_ROOT = base64.b64decode("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")


def _log_verifier(key: dict[str, str]) -> Ed25519NoteVerifier | ECDSANoteVerifier:
    """Build the log's verifier from its trusted-root SPKI, independently of any vkey."""
    spki = base64.b64decode(key["spki"])
    if key["type"] == "ecdsa":
        return ECDSANoteVerifier(key["name"], spki)
    public = serialization.load_der_public_key(spki)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    return Ed25519NoteVerifier(key["name"], public.public_bytes_raw())


@pytest.mark.parametrize("case", SIGNED, ids=lambda c: c["name"])
def test_real_checkpoints_verify(case: dict[str, Any]) -> None:
    log = _log_verifier(case["log_key"])
    assert f"{log.key_id:08x}" == case["log_key"]["key_id"]
    if "vkey" in case["log_key"]:
        assert verifier_to_vkey(log) == case["log_key"]["vkey"]
        assert parse_vkey(case["log_key"]["vkey"]) == log
    witnesses = [parse_vkey(w["vkey"]) for w in case["witnesses"]]
    data = case["note"].encode()

    signed = open_checkpoint(data, [log], case["origin"], witnesses=witnesses)

    assert signed.checkpoint == Checkpoint(
        case["origin"], case["size"], base64.b64decode(case["root"])
    )
    assert signed.to_bytes() == data
    assert signed.checkpoint.to_text() == signed.note.text
    assert [s.name for s in signed.note.verified] == [log.name] + [w.name for w in witnesses]
    assert [c.timestamp for c in signed.note.cosignatures] == [
        w["timestamp"] for w in case["witnesses"]
    ]
    # Without the witness keys, the cosignatures are unknown and ignored.
    plain = open_checkpoint(data, [log], case["origin"])
    assert [s.name for s in plain.note.verified] == [log.name]
    assert plain.note.cosignatures == ()


def test_rekor_v1_key_name_differs_from_origin() -> None:
    case = SIGNED[3]
    signed = open_checkpoint(
        case["note"].encode(), [_log_verifier(case["log_key"])], case["origin"]
    )
    assert signed.checkpoint.origin == "rekor.sigstage.dev - 8050909264565447525"
    assert signed.note.verified[0].name == "rekor.sigstage.dev"
    assert signed.note.verified[0].key_id == 0xD32F30A3


@pytest.mark.parametrize("case", SIGNED, ids=lambda c: c["name"])
def test_wrong_origin_is_a_mismatch(case: dict[str, Any]) -> None:
    with pytest.raises(CheckpointMismatchError) as info:
        open_checkpoint(case["note"].encode(), [_log_verifier(case["log_key"])], "other.log")
    assert info.value.expected == "other.log"
    assert info.value.actual == case["origin"]


@pytest.mark.parametrize("case", SIGNED, ids=lambda c: c["name"])
def test_altered_checkpoint_body_fails_the_log_signature(case: dict[str, Any]) -> None:
    lines = case["note"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    with pytest.raises(InvalidSignatureError) as info:
        open_checkpoint("\n".join(lines).encode(), [_log_verifier(case["log_key"])], case["origin"])
    assert info.value.name == case["log_key"]["name"]


def test_witness_cosignatures_alone_do_not_make_a_checkpoint_trusted() -> None:
    case = SIGNED[2]
    witnesses = [parse_vkey(w["vkey"]) for w in case["witnesses"]]
    other_log = Ed25519NoteSigner(case["origin"], bytes(32)).verifier
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(case["note"].encode(), [other_log], case["origin"], witnesses=witnesses)
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(case["note"].encode(), [], case["origin"], witnesses=witnesses)


def test_bad_witness_cosignature_rejects_the_checkpoint() -> None:
    case = SIGNED[2]
    lines = case["note"].split("\n")
    witness_line = lines[5]  # "— witness.stagemole.eu <b64>"
    name, b64 = witness_line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    lines[5] = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    data = "\n".join(lines).encode()
    witnesses = [parse_vkey(w["vkey"]) for w in case["witnesses"]]
    with pytest.raises(InvalidSignatureError, match=r"witness\.stagemole\.eu"):
        open_checkpoint(data, [_log_verifier(case["log_key"])], case["origin"], witnesses=witnesses)


def test_signed_note_that_is_not_a_checkpoint() -> None:
    signer = Ed25519NoteSigner("example.com/log", bytes(32))
    for text in ["example.com/log\n01\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "x\n"]:
        data = sign_note(text, [signer]).to_bytes()
        with pytest.raises(MalformedCheckpointError):
            open_checkpoint(data, [signer.verifier], "example.com/log")


# --- format -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["format_only"], ids=lambda c: c["name"])
def test_checkpoint_texts_parse_and_round_trip(case: dict[str, Any]) -> None:
    checkpoint = Checkpoint.parse(case["text"])
    assert checkpoint == Checkpoint(
        case["origin"], case["size"], base64.b64decode(case["root"]), tuple(case["extensions"])
    )
    assert checkpoint.to_text() == case["text"]


@pytest.mark.parametrize("case", VECTORS["malformed"], ids=lambda c: c["why"])
def test_malformed_checkpoints_are_rejected(case: dict[str, str]) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint.parse(case["text"])


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, EMPTY_ROOT, ()),
        ("a\nb", 1, EMPTY_ROOT, ()),
        ("o", -1, EMPTY_ROOT, ()),
        ("o", 2**63, EMPTY_ROOT, ()),
        ("o", 1, EMPTY_ROOT[:31], ()),
        ("o", 1, EMPTY_ROOT, ("",)),
        ("o", 1, EMPTY_ROOT, ("x\ny",)),
        ("o\ud800", 1, EMPTY_ROOT, ()),
    ],
)
def test_checkpoint_constructor_validates(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint(origin, size, root, extensions)


def test_error_types() -> None:
    assert issubclass(MalformedCheckpointError, FormatError)
    assert issubclass(CheckpointMismatchError, VerificationError)


# --- signing ------------------------------------------------------------------------------------


def test_sign_then_open_and_cosign() -> None:
    log = Ed25519NoteSigner("example.com/log", bytes(range(32)))
    witness = Ed25519CosignatureSigner("witness.example/w", bytes(32), lambda: 1_779_000_000)
    checkpoint = Checkpoint("example.com/log", 7, bytes(range(32)), ("ext",))

    data = sign_checkpoint(checkpoint, log)
    assert data.startswith(checkpoint.to_text().encode() + b"\n\xe2\x80\x94 example.com/log ")
    signed = open_checkpoint(data, [log.verifier], "example.com/log")
    assert signed == SignedCheckpoint(checkpoint, signed.note)
    assert signed.checkpoint == checkpoint

    # A witness appends its cosignature after the log's signature.
    cosigned = sign_checkpoint(checkpoint, witness, existing=signed.note.note)
    assert cosigned.startswith(data)
    opened = open_checkpoint(
        cosigned, [log.verifier], "example.com/log", witnesses=[witness.verifier]
    )
    assert opened.note.cosignature_time("witness.example/w") == 1_779_000_000


# --- properties ---------------------------------------------------------------------------------

_line = st.text(
    st.characters(
        codec="utf-8", exclude_categories=["Cs"], exclude_characters=[chr(c) for c in range(32)]
    ),
    min_size=1,
    max_size=30,
)
_checkpoints = st.builds(
    Checkpoint,
    origin=_line,
    size=st.integers(0, 2**63 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line, max_size=3).map(tuple),
)


@given(_checkpoints)
def test_property_checkpoint_round_trip(checkpoint: Checkpoint) -> None:
    assert Checkpoint.parse(checkpoint.to_text()) == checkpoint


@given(_checkpoints, st.binary(min_size=32, max_size=32))
def test_property_signed_checkpoint_round_trip(checkpoint: Checkpoint, seed: bytes) -> None:
    signer = Ed25519NoteSigner("log", seed)
    data = sign_checkpoint(checkpoint, signer)
    signed = open_checkpoint(data, [signer.verifier], checkpoint.origin)
    assert signed.checkpoint == checkpoint
    assert signed.to_bytes() == data
