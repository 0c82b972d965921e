"""Signed notes, vkeys, signers and key IDs against tests/vectors/notes.json.

The vectors' sources are listed in docs/compatibility.md ("Test vectors").
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.keystrings import note_key_id
from stelae.tiles.note import (
    MAX_SIGNATURES,
    InvalidSignatureError,
    InvalidVerifierKeyError,
    MalformedNoteError,
    Note,
    NoteSignature,
    NoteSigner,
    UnverifiedNoteError,
    open_note,
    sign_note,
)
from stelae.tiles.notekeys import (
    ECDSANoteVerifier,
    Ed25519CosignatureSigner,
    Ed25519CosignatureVerifier,
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    ecdsa_log_id,
    parse_vkey,
    rekor_v2_log_id,
    verifier_to_vkey,
)
from tests.support.vectors import load_vectors

VECTORS: dict[str, Any] = load_vectors("notes.json")
CHECKPOINT_VECTORS: dict[str, Any] = load_vectors("checkpoints.json")
SIGNING = VECTORS["signing"]
PETER_VKEY: str = SIGNING["vkey"]
ENOCH_VKEY: str = VECTORS["good_vkeys"][1]
PETER_TEXT: str = SIGNING["text"]


def _bytes_of(case: dict[str, str]) -> bytes:
    return bytes.fromhex(case["hex"]) if "hex" in case else case["text"].encode()


def _all_good_vkeys() -> list[str]:
    vkeys = list(VECTORS["good_vkeys"])
    for cp in CHECKPOINT_VECTORS["signed"]:
        if "vkey" in cp["log_key"]:
            vkeys.append(cp["log_key"]["vkey"])
        vkeys.extend(w["vkey"] for w in cp["witnesses"])
    return vkeys


@dataclass(frozen=True)
class MustNotVerify:
    """A verifier that fails the test if open_note ever asks it to check a signature."""

    name: str
    key_id: int

    def verify(self, message: bytes, signature: bytes) -> None:
        pytest.fail(f"verifier {self.name}+{self.key_id:08x} should have been ignored")


@dataclass(frozen=True)
class RejectingVerifier:
    """Raises a plain VerificationError, as a third-party verifier might."""

    name: str
    key_id: int

    def verify(self, message: bytes, signature: bytes) -> None:
        raise VerificationError("hardware token said no")


# --- happy paths from the vectors ---------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["verify"], ids=lambda c: c["name"])
def test_vector_notes_verify(case: dict[str, Any]) -> None:
    data = case["note"].encode()
    opened = open_note(data, [parse_vkey(v) for v in case["vkeys"]])
    assert opened.text == case["text"]
    assert [s.name for s in opened.verified] == case["verified"]
    assert opened.cosignatures == ()
    assert opened.note.to_bytes() == data
    assert Note.parse(data).to_bytes() == data


def test_go_signer_reproduces_peter_neumann_note() -> None:
    signer = Ed25519NoteSigner.from_skey(SIGNING["skey"])
    assert signer.name == "PeterNeumann"
    assert f"{signer.key_id:08x}" == SIGNING["key_id"]
    assert signer.vkey == PETER_VKEY
    assert signer.skey == SIGNING["skey"]
    assert signer.verifier == parse_vkey(PETER_VKEY)
    # Ed25519 is deterministic, so re-signing reproduces Go's bytes exactly.
    assert sign_note(PETER_TEXT, [signer]).to_bytes() == SIGNING["note"].encode()


def test_sign_note_puts_existing_signatures_first_and_replaces_same_key() -> None:
    peter = Ed25519NoteSigner.from_skey(SIGNING["skey"])
    enoch_line = VECTORS["verify"][1]["note"].split("\n\n")[1]
    enoch_only = Note.parse(f"{PETER_TEXT}\n{enoch_line}".encode())
    both = sign_note(PETER_TEXT, [peter], existing=enoch_only)
    assert [s.name for s in both.signatures] == ["EnochRoot", "PeterNeumann"]

    # A stale PeterNeumann signature (corrupted) is replaced, not kept next to the new one.
    stale = Note.parse(VECTORS["invalid_signature"]["note"].encode())
    merged = sign_note(PETER_TEXT, [peter], existing=sign_note(PETER_TEXT, [], existing=stale))
    assert merged.to_bytes() == SIGNING["note"].encode()

    with pytest.raises(ValueError, match="different text"):
        sign_note("other\n", [peter], existing=enoch_only)


# --- verification failures ----------------------------------------------------------------------


def test_corrupted_signature_from_known_key_is_rejected() -> None:
    case = VECTORS["invalid_signature"]
    with pytest.raises(InvalidSignatureError) as info:
        open_note(case["note"].encode(), [parse_vkey(v) for v in case["vkeys"]])
    assert str(info.value).startswith(case["error"])
    assert info.value.name == "PeterNeumann"
    assert info.value.key_id == 0xC74F20A3


def test_one_bad_known_signature_rejects_note_with_a_good_one() -> None:
    bad_line = VECTORS["invalid_signature"]["note"].split("\n\n")[1]
    enoch_line = VECTORS["verify"][1]["note"].split("\n\n")[1]
    data = f"{PETER_TEXT}\n{enoch_line}{bad_line}".encode()
    with pytest.raises(InvalidSignatureError, match="PeterNeumann"):
        open_note(data, [parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)])
    # ...but if that key is unknown, the bad line is ignored.
    assert open_note(data, [parse_vkey(ENOCH_VKEY)]).verified[0].name == "EnochRoot"


def test_note_without_known_signature_is_unverified() -> None:
    data = SIGNING["note"].encode()
    with pytest.raises(UnverifiedNoteError) as info:
        open_note(data, [parse_vkey(ENOCH_VKEY)])
    assert info.value.note == Note.parse(data)
    assert "PeterNeumann+c74f20a3" in str(info.value)
    with pytest.raises(UnverifiedNoteError):
        open_note(data, [])


@pytest.mark.parametrize(
    ("name", "key_id"),
    [("PeterNeumann", 0xC74F20A4), ("PeterNeumannX", 0xC74F20A3), ("EnochRoot", 0xC74F20A3)],
)
def test_verifier_matching_only_name_or_only_id_is_not_consulted(name: str, key_id: int) -> None:
    with pytest.raises(UnverifiedNoteError):
        open_note(SIGNING["note"].encode(), [MustNotVerify(name, key_id)])


def test_foreign_verification_error_is_reported_as_invalid_signature() -> None:
    verifier = RejectingVerifier("PeterNeumann", 0xC74F20A3)
    with pytest.raises(InvalidSignatureError, match="hardware token said no") as info:
        open_note(SIGNING["note"].encode(), [verifier])
    assert info.value.reason == "hardware token said no"


def test_conflicting_verifiers_for_one_key_are_a_configuration_error() -> None:
    peter = parse_vkey(PETER_VKEY)
    assert open_note(SIGNING["note"].encode(), [peter, parse_vkey(PETER_VKEY)]).verified
    with pytest.raises(ValueError, match="two verifiers"):
        open_note(SIGNING["note"].encode(), [peter, MustNotVerify(peter.name, peter.key_id)])


# --- malformed notes ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["malformed"], ids=lambda c: c["why"])
def test_malformed_notes_are_rejected(case: dict[str, str]) -> None:
    data = _bytes_of(case)
    with pytest.raises(MalformedNoteError):
        Note.parse(data)
    with pytest.raises(MalformedNoteError):
        open_note(data, [parse_vkey(PETER_VKEY)])


def test_signature_count_limit_counts_duplicates_like_go() -> None:
    sig_line = SIGNING["note"].split("\n\n")[1]
    at_limit = Note.parse(f"{PETER_TEXT}\n{sig_line * MAX_SIGNATURES}".encode())
    assert at_limit.signatures == Note.parse(SIGNING["note"].encode()).signatures  # deduplicated
    with pytest.raises(MalformedNoteError, match="more than 100"):
        Note.parse(f"{PETER_TEXT}\n{sig_line * (MAX_SIGNATURES + 1)}".encode())


def test_sixteen_distinct_signatures_are_accepted_and_kept_in_order() -> None:
    signers = [Ed25519NoteSigner(f"k{i}", bytes([i]) * 32) for i in range(16)]
    note = sign_note("sixteen\n", signers)
    opened = open_note(note.to_bytes(), [s.verifier for s in reversed(signers)])
    assert [s.name for s in opened.verified] == [f"k{i}" for i in range(16)]


def test_text_split_is_at_last_blank_line() -> None:
    signer = Ed25519NoteSigner("k", bytes(32))
    for text in ["a\n\nb\n", "a\n\n\n", "\n", "\n\n\n", "x\n\n— not a sig\n"]:
        data = sign_note(text, [signer]).to_bytes()
        assert open_note(data, [signer.verifier]).text == text


@pytest.mark.parametrize(
    ("text", "signatures"),
    [
        ("", (NoteSignature("k", 1, b"s"),)),
        ("no newline", (NoteSignature("k", 1, b"s"),)),
        ("bell\a\n", (NoteSignature("k", 1, b"s"),)),
        ("surrogate \ud800\n", (NoteSignature("k", 1, b"s"),)),
        ("ok\n", ()),
        ("ok\n", (NoteSignature("k", 1, b"s"), NoteSignature("k", 1, b"s"))),
        ("ok\n", tuple(NoteSignature("k", i, b"s") for i in range(101))),
    ],
)
def test_note_constructor_validates(text: str, signatures: tuple[NoteSignature, ...]) -> None:
    with pytest.raises(MalformedNoteError):
        Note(text, signatures)


@pytest.mark.parametrize(
    ("name", "key_id", "signature"),
    [
        ("", 1, b"s"),
        ("a b", 1, b"s"),
        ("a+b", 1, b"s"),
        ("a\u2028b", 1, b"s"),
        ("k", -1, b"s"),
        ("k", 2**32, b"s"),
        ("k", 1, b""),
    ],
)
def test_note_signature_constructor_validates(name: str, key_id: int, signature: bytes) -> None:
    with pytest.raises(MalformedNoteError):
        NoteSignature(name, key_id, signature)


# --- vkeys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("vkey", _all_good_vkeys())
def test_good_vkeys_round_trip(vkey: str) -> None:
    verifier = parse_vkey(vkey)
    assert verifier_to_vkey(verifier) == vkey
    assert f"{verifier.key_id:08x}" == vkey.split("+")[1]


@pytest.mark.parametrize("case", VECTORS["bad_vkeys"], ids=lambda c: c["why"])
def test_bad_vkeys_are_rejected(case: dict[str, str]) -> None:
    with pytest.raises(InvalidVerifierKeyError):
        parse_vkey(case["vkey"])


def test_every_proper_substring_of_a_vkey_is_rejected() -> None:
    accepted = [
        PETER_VKEY[i:j]
        for i in range(len(PETER_VKEY) + 1)
        for j in range(i, len(PETER_VKEY) + 1)
        if (i, j) != (0, len(PETER_VKEY)) and _accepts(PETER_VKEY[i:j])
    ]
    assert accepted == []


# Every printable ASCII character, plus characters that look alike or decode oddly.
_REPLACEMENTS = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\x00", "é", "—", "\u00a0", "\uff21"]


@pytest.mark.parametrize("vkey", _all_good_vkeys())
def test_every_single_character_change_to_a_vkey_is_rejected(vkey: str) -> None:
    # Type 0x02 key IDs do not hash the name (docs/compatibility.md), so only there may it change.
    is_ecdsa = base64.b64decode(vkey.split("+", 2)[2])[0] == 0x02
    first_bound = vkey.index("+") if is_ecdsa else 0
    accepted = []
    for i, original in enumerate(vkey):
        if i < first_bound:
            continue
        bumped = chr(ord(original) + 1)  # Go's test: b[i]++
        for ch in {*_REPLACEMENTS, bumped} - {original}:
            mutated = vkey[:i] + ch + vkey[i + 1 :]
            if _accepts(mutated):
                accepted.append(mutated)
    assert accepted == []


def test_ecdsa_vkey_name_is_not_bound_by_its_key_id() -> None:
    vkey = CHECKPOINT_VECTORS["signed"][3]["log_key"]["vkey"]
    renamed = parse_vkey("other.name" + vkey[vkey.index("+") :])
    assert renamed.name == "other.name"
    assert renamed.key_id == parse_vkey(vkey).key_id


def _accepts(vkey: str) -> bool:
    try:
        parse_vkey(vkey)
    except InvalidVerifierKeyError:
        return False
    return True


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+EnochRoot+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        PETER_VKEY,
    ],
)
def test_bad_private_keys_are_rejected(skey: str) -> None:
    with pytest.raises(InvalidVerifierKeyError):
        Ed25519NoteSigner.from_skey(skey)
    with pytest.raises(InvalidVerifierKeyError):
        Ed25519CosignatureSigner.from_skey(skey)


def test_generate_uses_injected_randomness() -> None:
    signer = Ed25519NoteSigner.generate("example.com/log", randbytes=lambda n: b"\x07" * n)
    assert signer.seed == b"\x07" * 32
    assert Ed25519NoteSigner.from_skey(signer.skey) == signer
    assert parse_vkey(signer.vkey) == signer.verifier
    assert Ed25519NoteSigner.generate("a").seed != Ed25519NoteSigner.generate("a").seed


def test_format_only_notes_parse_and_round_trip() -> None:
    for case in VECTORS["format_only"]:
        data = case["note"].encode()
        note = Note.parse(data)
        assert note.text == case["text"]
        assert note.to_bytes() == data
        for sig, (name, key_id) in zip(note.signatures, case["signers"], strict=True):
            assert sig.name == name
            if key_id is not None:
                assert f"{sig.key_id:08x}" == key_id
        if "cosignature" in case:
            want = case["cosignature"]
            sig = next(s for s in note.signatures if s.name == want["name"])
            assert 4 + len(sig.signature) == want["signature_bytes"]
            assert int.from_bytes(sig.signature[:8], "big") == want["timestamp"]


# --- key IDs (B3, C4) ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CHECKPOINT_VECTORS["log_ids"], ids=lambda c: c["name"])
def test_rekor_key_ids(case: dict[str, Any]) -> None:
    want_log_id = (
        bytes.fromhex(case["log_id_hex"])
        if "log_id_hex" in case
        else base64.b64decode(case["log_id"])
    )
    want_key_id = case["key_id"] if "key_id" in case else int(case["key_id_hex"], 16)
    if case["type"] == "ed25519":
        if "public_hex" in case:
            raw = bytes.fromhex(case["public_hex"])
            private = serialization.load_der_private_key(
                base64.b64decode(case["pkcs8_pem_body"]), None
            )
            assert isinstance(private, ed25519.Ed25519PrivateKey)
            assert private.private_bytes_raw().hex() == case["seed_hex"]
            assert private.public_key().public_bytes_raw() == raw
        else:
            public = serialization.load_der_public_key(base64.b64decode(case["spki"]))
            assert isinstance(public, ed25519.Ed25519PublicKey)
            raw = public.public_bytes_raw()
        assert rekor_v2_log_id(case["origin"], raw) == want_log_id
        assert note_key_id(case["origin"], 0x01, raw) == want_key_id
        verifier: Ed25519NoteVerifier | ECDSANoteVerifier = Ed25519NoteVerifier(case["origin"], raw)
    else:
        spki = base64.b64decode(case["spki"])
        if "sec1_pem_body" in case:
            private_ec = serialization.load_der_private_key(
                base64.b64decode(case["sec1_pem_body"]), None
            )
            assert isinstance(private_ec, ec.EllipticCurvePrivateKey)
            assert (
                private_ec.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                == spki
            )
        assert ecdsa_log_id(spki) == want_log_id
        verifier = ECDSANoteVerifier(case["origin"], spki)
    assert verifier.key_id == want_key_id == int.from_bytes(want_log_id[:4], "big")
    if "vkey" in case:
        assert verifier_to_vkey(verifier) == case["vkey"]


def test_ecdsa_key_id_ignores_the_name() -> None:
    spki = base64.b64decode(CHECKPOINT_VECTORS["log_ids"][1]["spki"])
    assert ECDSANoteVerifier("a", spki).key_id == ECDSANoteVerifier("b", spki).key_id


def test_rekor_v2_log_id_needs_a_raw_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        rekor_v2_log_id("o", bytes(44))


# --- ECDSA (type 0x02) --------------------------------------------------------------------------


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_ecdsa_notes_verify_on_each_allowed_curve(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verifier = ECDSANoteVerifier("witness.example", spki)
    assert parse_vkey(verifier_to_vkey(verifier)) == verifier
    text = "ecdsa\n"
    # Independently of stelae: a DER signature over SHA-256(text), for every curve.
    der = key.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
    note = Note(text, (NoteSignature(verifier.name, verifier.key_id, der),))
    assert open_note(note.to_bytes(), [verifier]).verified == note.signatures
    tampered = Note("ecdsb\n", note.signatures)
    with pytest.raises(InvalidSignatureError, match="ECDSA"):
        open_note(tampered.to_bytes(), [verifier])
    garbage = Note(text, (NoteSignature(verifier.name, verifier.key_id, b"\x30\x00junk"),))
    with pytest.raises(InvalidSignatureError):
        open_note(garbage.to_bytes(), [verifier])


def test_ecdsa_verifier_rejects_other_keys_and_encodings() -> None:
    secp256k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    der_k1 = secp256k1.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_spki = base64.b64decode(CHECKPOINT_VECTORS["log_ids"][2]["spki"])
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    compressed_point = p256.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    compressed_spki = (
        bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200") + compressed_point
    )
    assert serialization.load_der_public_key(compressed_spki) == p256  # parseable, yet refused
    for spki in [der_k1, ed_spki, compressed_spki, b"", b"\x30\x00"]:
        with pytest.raises(InvalidVerifierKeyError):
            ECDSANoteVerifier("k", spki)


# --- cosignatures (type 0x04) -------------------------------------------------------------------


def test_cosignature_signs_the_timestamped_message() -> None:
    cosigner = Ed25519CosignatureSigner(
        "witness.example/w", bytes(range(32)), lambda: 1_700_000_000
    )
    text = "example.com/log\n3\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    sig = cosigner.sign(text)
    assert len(base64.b64encode(sig.key_id.to_bytes(4, "big") + sig.signature)) == 104
    assert sig.signature[:8] == (1_700_000_000).to_bytes(8, "big")
    assert cosigner.vkey.split("+")[2].startswith("B")
    # Check the signed message independently of the verifier code.
    public = ed25519.Ed25519PublicKey.from_public_bytes(cosigner.public_key_bytes)
    public.verify(sig.signature[8:], b"cosignature/v1\ntime 1700000000\n" + text.encode())
    key_hash = hashlib.sha256(b"witness.example/w\n\x04" + cosigner.public_key_bytes).digest()
    assert sig.key_id == int.from_bytes(key_hash[:4], "big")

    opened = open_note(sign_note(text, [cosigner]).to_bytes(), [parse_vkey(cosigner.vkey)])
    assert opened.cosignature_time("witness.example/w") == 1_700_000_000
    assert opened.cosignature_time("someone.else") is None
    assert [c.signature for c in opened.cosignatures] == [sig]


def test_cosignature_with_altered_timestamp_is_invalid() -> None:
    cosigner = Ed25519CosignatureSigner("w", bytes(32), lambda: 1000)
    sig = cosigner.sign("t\n")
    moved = NoteSignature("w", sig.key_id, (1001).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(InvalidSignatureError, match="w\\+"):
        open_note(Note("t\n", (moved,)).to_bytes(), [cosigner.verifier])
    short = NoteSignature("w", sig.key_id, sig.signature[:-1])
    with pytest.raises(InvalidSignatureError, match="not 72"):
        open_note(Note("t\n", (short,)).to_bytes(), [cosigner.verifier])


def test_cosignature_timestamp_above_int63_is_rejected_even_if_signed() -> None:
    seed = bytes(32)
    verifier = Ed25519CosignatureVerifier("w", Ed25519CosignatureSigner("w", seed).public_key_bytes)
    ts = 2**63
    raw = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(
        b"cosignature/v1\ntime " + str(ts).encode() + b"\nt\n"
    )
    note = Note("t\n", (NoteSignature("w", verifier.key_id, ts.to_bytes(8, "big") + raw),))
    with pytest.raises(InvalidSignatureError, match="2\\^63"):
        open_note(note.to_bytes(), [verifier])


@pytest.mark.parametrize("timestamp", [0, -1, 2**63])
def test_cosigner_refuses_out_of_range_clock(timestamp: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Ed25519CosignatureSigner("w", bytes(32), lambda: timestamp).sign("t\n")


def test_cosigner_and_signer_with_same_seed_have_distinct_key_ids() -> None:
    seed = bytes(range(32))
    plain = Ed25519NoteSigner("w", seed)
    cosigner = Ed25519CosignatureSigner.from_skey(plain.skey, clock=lambda: 5)
    assert cosigner.skey == plain.skey
    assert cosigner.key_id != plain.key_id
    assert cosigner.public_key_bytes == plain.public_key_bytes
    # A plain Ed25519 signature is never mistaken for a cosignature, and vice versa.
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note("t\n", [plain]).to_bytes(), [cosigner.verifier])
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note("t\n", [cosigner]).to_bytes(), [plain.verifier])


def test_signers_reject_invalid_texts() -> None:
    signers: list[NoteSigner] = [
        Ed25519NoteSigner("k", bytes(32)),
        Ed25519CosignatureSigner("k", bytes(32)),
    ]
    for signer in signers:
        for text in ["", "no newline", "tab\t\n"]:
            with pytest.raises(MalformedNoteError):
                signer.sign(text)


def test_typed_errors_share_the_stelae_bases() -> None:
    assert issubclass(MalformedNoteError, FormatError)
    assert issubclass(InvalidVerifierKeyError, FormatError)
    assert issubclass(InvalidSignatureError, VerificationError)
    assert issubclass(UnverifiedNoteError, VerificationError)


# --- properties ---------------------------------------------------------------------------------

_text_chars = st.characters(
    codec="utf-8", exclude_categories=["Cs"], exclude_characters=[chr(c) for c in range(0x20)]
)
_note_texts = st.lists(st.text(_text_chars, max_size=20), min_size=1, max_size=5).map(
    lambda lines: "".join(line + "\n" for line in lines)
)
_names = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=["Cs", "Zs", "Zl", "Zp"],
        exclude_characters=["+", "\x85", *(chr(c) for c in range(0x20))],
    ),
    min_size=1,
    max_size=12,
)
_signatures = st.builds(
    NoteSignature,
    name=_names,
    key_id=st.integers(0, 2**32 - 1),
    signature=st.binary(min_size=1, max_size=80),
)


@given(text=_note_texts, signatures=st.lists(_signatures, min_size=1, max_size=20, unique=True))
def test_property_note_round_trip(text: str, signatures: list[NoteSignature]) -> None:
    note = Note(text, tuple(signatures))
    assert Note.parse(note.to_bytes()) == note
    assert Note.parse(note.to_bytes()).to_bytes() == note.to_bytes()


@given(text=_note_texts, name=_names, seed=st.binary(min_size=32, max_size=32))
def test_property_signed_notes_open(text: str, name: str, seed: bytes) -> None:
    signer = Ed25519NoteSigner(name, seed)
    opened = open_note(sign_note(text, [signer]).to_bytes(), [parse_vkey(signer.vkey)])
    assert opened.text == text
    assert opened.verified[0].key_id == signer.key_id
