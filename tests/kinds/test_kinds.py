"""stelae.kinds: every kind x algorithm accepted with valid signatures, by key and by certificate;
canonical bodies round-trip through from_body; the real Rekor vectors
(tests/vectors/kinds/rekor_bodies.json)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Literal

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae import kinds
from stelae.client import signing
from stelae.client.signing import PrivateKey
from stelae.kinds import dsse
from tests.support import certificates
from tests.support.vectors import load_vectors

VECTORS = load_vectors("kinds/rekor_bodies.json")

# (key type, rsa bits, pss)
ALGORITHMS = [
    ("ecdsa-p256", 0, False),
    ("ecdsa-p384", 0, False),
    ("ecdsa-p521", 0, False),
    ("ed25519", 0, False),
    ("rsa", 2048, False),
    ("rsa", 2048, True),
    ("rsa", 3072, False),
    ("rsa", 3072, True),
    ("rsa", 4096, False),
    ("rsa", 4096, True),
]
ALG_IDS = [f"{k}{b or ''}{'-pss' if p else ''}" for k, b, p in ALGORITHMS]
_KEYS: dict[tuple[str, int], PrivateKey] = {}


def key_for(kind: str, bits: int) -> PrivateKey:
    """One key per type for the whole session (RSA 4096 generation is slow)."""
    if (kind, bits) not in _KEYS:
        _KEYS[(kind, bits)] = signing.generate_key(kind, rsa_bits=bits or 3072)  # type: ignore[arg-type]
    return _KEYS[(kind, bits)]


def verifier_for(key: PrivateKey, use_cert: bool) -> bytes:
    if use_cert:
        cert = certificates.self_signed_certificate(
            key, "Signer@Example.COM", uri="https://ci.example/wf"
        )
        return signing.certificate_pem(cert)
    return signing.public_key_pem(key)


def check_round_trip(entry: kinds.Entry) -> None:
    assert rfc8785.dumps(json.loads(entry.body)) == entry.body
    again = kinds.from_body(entry.body)
    assert again == entry
    assert entry.uuid == hashlib.sha256(b"\x00" + entry.body).hexdigest()


def expect_identities(entry: kinds.Entry, use_cert: bool) -> None:
    if use_cert:
        assert entry.identities == ("signer@example.com", "https://ci.example/wf")
    else:
        assert entry.identities == ()


ARTIFACT = b"stelae test artifact\n"


@pytest.mark.parametrize("use_cert", [False, True], ids=["key", "cert"])
@pytest.mark.parametrize(("kind", "bits", "pss"), ALGORITHMS, ids=ALG_IDS)
def test_hashedrekord_v001(kind: str, bits: int, pss: bool, use_cert: bool) -> None:
    key = key_for(kind, bits)
    sig = signing.sign_artifact(key, ARTIFACT, pss=pss)
    request = signing.build_v1_hashedrekord(sig, verifier_for(key, use_cert), artifact=ARTIFACT)
    entry = kinds.from_v1_proposed(request)
    alg, digest = signing.digest(key, ARTIFACT)
    assert (entry.kind, entry.api_version) == ("hashedrekord", "0.0.1")
    assert entry.artifact_digests == (f"{alg}:{digest.hex()}",)
    assert entry.key_fingerprints == (
        hashlib.sha256(
            key.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        ).hexdigest(),
    )
    expect_identities(entry, use_cert)
    check_round_trip(entry)


@pytest.mark.parametrize("use_cert", [False, True], ids=["key", "cert"])
@pytest.mark.parametrize(("kind", "bits", "pss"), ALGORITHMS, ids=ALG_IDS)
def test_hashedrekord_v002(kind: str, bits: int, pss: bool, use_cert: bool) -> None:
    key = key_for(kind, bits)
    alg, digest = signing.digest(key, ARTIFACT)
    sig = signing.sign_digest(key, digest, pss=pss)
    details = signing.key_details_for(key, pss=pss)
    request = signing.build_v2_hashedrekord(
        sig, verifier_for(key, use_cert), digest, key_details=details
    )
    entry = kinds.from_v2_request(request)
    body = json.loads(entry.body)
    spec = body["spec"]["hashedRekordV002"]
    assert (
        spec["data"]["algorithm"]
        == {"sha256": "SHA2_256", "sha384": "SHA2_384", "sha512": "SHA2_512"}[alg]
    )
    assert spec["signature"]["verifier"]["keyDetails"] == details
    assert ("x509Certificate" in spec["signature"]["verifier"]) == use_cert
    assert entry.artifact_digests == (f"{alg}:{digest.hex()}",)
    expect_identities(entry, use_cert)
    check_round_trip(entry)


def test_v2_request_accepts_snake_case_and_enum_numbers() -> None:
    key = key_for("ecdsa-p256", 0)
    _, digest = signing.digest(key, ARTIFACT)
    sig = signing.sign_digest(key, digest)
    camel = signing.build_v2_hashedrekord(sig, key, digest)
    inner = camel["hashedRekordRequestV002"]
    snake = {
        "hashed_rekord_request_v002": {
            "digest": base64.urlsafe_b64encode(digest).decode().rstrip("="),
            "signature": {
                "content": inner["signature"]["content"],
                "verifier": {
                    "public_key": {
                        "raw_bytes": inner["signature"]["verifier"]["publicKey"]["rawBytes"]
                    },
                    "key_details": 5,
                },
            },
        }
    }
    assert kinds.from_v2_request(snake).body == kinds.from_v2_request(camel).body


@pytest.mark.parametrize("use_cert", [False, True], ids=["key", "cert"])
@pytest.mark.parametrize(("kind", "bits", "pss"), ALGORITHMS, ids=ALG_IDS)
@pytest.mark.parametrize("version", ["0.0.1", "0.0.2"])
def test_dsse(
    version: Literal["0.0.1", "0.0.2"], kind: str, bits: int, pss: bool, use_cert: bool
) -> None:
    key = key_for(kind, bits)
    payload = b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}'
    envelope = signing.dsse_envelope(payload, "application/vnd.in-toto+json", [key], pss=pss)
    details = None
    if kind == "rsa":
        details = [f"PKIX_RSA_{'PSS' if pss else 'PKCS1V15'}_{bits}_SHA256"]
    request = signing.build_dsse(
        envelope,
        [verifier_for(key, use_cert)],
        version=version,
        key_details=details,
    )
    entry = (
        kinds.from_v2_request(request) if version == "0.0.2" else kinds.from_v1_proposed(request)
    )
    assert (entry.kind, entry.api_version) == ("dsse", version)
    assert f"sha256:{hashlib.sha256(payload).hexdigest()}" in entry.artifact_digests
    expect_identities(entry, use_cert)
    assert b"in-toto.io" not in entry.body  # the payload is never stored
    check_round_trip(entry)


@pytest.mark.parametrize("version", ["0.0.1", "0.0.2"])
def test_dsse_multiple_signers_sorted(version: str) -> None:
    signers = [key_for("ecdsa-p256", 0), key_for("ed25519", 0), key_for("ecdsa-p384", 0)]
    envelope = signing.dsse_envelope(b"payload", "text/plain", signers)
    request = signing.build_dsse(envelope, list(reversed(signers)), version=version)  # type: ignore[arg-type]
    entry = (
        kinds.from_v2_request(request) if version == "0.0.2" else kinds.from_v1_proposed(request)
    )
    assert len(entry.key_fingerprints) == 3
    body = json.loads(entry.body)
    if version == "0.0.1":
        stored = [s["signature"] for s in body["spec"]["signatures"]]
        assert stored == sorted(stored)
    else:
        raw = [base64.b64decode(s["content"]) for s in body["spec"]["dsseV002"]["signatures"]]
        assert raw == sorted(raw)
    check_round_trip(entry)


@pytest.mark.parametrize("use_cert", [False, True], ids=["key", "cert"])
@pytest.mark.parametrize(("kind", "bits", "pss"), ALGORITHMS, ids=ALG_IDS)
def test_rekord_x509(kind: str, bits: int, pss: bool, use_cert: bool) -> None:
    key = key_for(kind, bits)
    sig = signing.sign_message(key, ARTIFACT, pss=pss)
    entry = kinds.from_v1_proposed(signing.build_rekord(ARTIFACT, sig, verifier_for(key, use_cert)))
    assert entry.artifact_digests == (f"sha256:{hashlib.sha256(ARTIFACT).hexdigest()}",)
    assert base64.b64encode(ARTIFACT) not in entry.body  # only the hash is stored
    expect_identities(entry, use_cert)
    check_round_trip(entry)


# --- real Rekor data -------------------------------------------------------------------------


def _body(name: str) -> bytes:
    return base64.b64decode(VECTORS[name]["body_b64"])


def test_c1_old_spec_key_reads_and_verifies() -> None:
    body = _body("c1")
    entry = kinds.from_body(body)
    assert entry.uuid == VECTORS["c1"]["leaf_hash"]
    assert (entry.kind, entry.api_version) == ("hashedrekord", "0.0.2")
    # Resubmitting the same material today yields the current key name, otherwise identical bytes.
    spec = json.loads(body)["spec"]["hashedRekordV0_0_2"]
    fresh = kinds.from_v2_request(
        {
            "hashedRekordRequestV002": {
                "digest": spec["data"]["digest"],
                "signature": spec["signature"],
            }
        }
    )
    assert fresh.body == body.replace(b"hashedRekordV0_0_2", b"hashedRekordV002")
    assert fresh.key_fingerprints == entry.key_fingerprints


def test_c2_certificate_entry_rebuilds_byte_for_byte() -> None:
    body = _body("c2")
    assert len(body) == VECTORS["c2"]["length"]
    entry = kinds.from_body(body)
    assert entry.uuid == VECTORS["c2"]["leaf_hash"]
    digest = base64.b64decode(VECTORS["c2"]["artifact_sha256_b64"])
    assert entry.artifact_digests == (f"sha256:{digest.hex()}",)
    assert entry.identities  # the Fulcio certificate's SAN
    spec = json.loads(body)["spec"]["hashedRekordV002"]
    request = {
        "hashedRekordRequestV002": {
            "digest": spec["data"]["digest"],
            "signature": spec["signature"],
        }
    }
    assert kinds.from_v2_request(request).body == body


def test_c5_v1_body_rebuilds_byte_for_byte() -> None:
    body = _body("c5")
    assert len(body) == VECTORS["c5"]["length"]
    entry = kinds.from_body(body)
    assert entry.uuid == VECTORS["c5"]["leaf_hash"]
    assert entry.identities == (VECTORS["c5"]["email"],)
    assert entry.artifact_digests == (
        "sha256:5e6ae9de58c1177bea615b4fcbfb2fd688e8c4b51c2e56b6a38e817833ec24a2",
    )
    obj = json.loads(body)
    assert (
        kinds.from_v1_proposed(
            {"kind": obj["kind"], "apiVersion": "0.0.1", "spec": obj["spec"]}
        ).body
        == body
    )


def _real_dsse() -> tuple[bytes, dict[str, Any], bytes]:
    vec = VECTORS["dsse_v002"]
    body = base64.b64decode(vec["body_b64"])
    payload = base64.b64decode(vec["payload_b64"])
    sig = json.loads(body)["spec"]["dsseV002"]["signatures"][0]
    return body, sig, payload


def test_dsse_v002_real_entry_rebuilds_byte_for_byte() -> None:
    body, sig, payload = _real_dsse()
    vec = VECTORS["dsse_v002"]
    entry = kinds.from_body(body)
    assert entry.uuid == vec["leaf_hash"]
    assert entry.identities == (vec["email"],)
    request = {
        "dsseRequestV002": {
            "envelope": {
                "payload": vec["payload_b64"],
                "payloadType": vec["payload_type"],
                "signatures": [{"sig": vec["sig_b64"], "keyid": ""}],
            },
            "verifiers": [sig["verifier"]],
        }
    }
    assert kinds.from_v2_request(request).body == body
    assert entry.artifact_digests == (f"sha256:{hashlib.sha256(payload).hexdigest()}",)


def test_c3_dsse_as_hashedrekord_rule() -> None:
    """C3's construction (digest = SHA-256(PAE), signature = the envelope's) verifies as a
    hashedrekord with real sigstage material. (C3's own body is not among the vectors.)"""
    _, sig, payload = _real_dsse()
    digest = hashlib.sha256(dsse.pae(VECTORS["dsse_v002"]["payload_type"], payload)).digest()
    entry = kinds.from_v2_request(
        {"hashedRekordRequestV002": {"digest": base64.b64encode(digest).decode(), "signature": sig}}
    )
    assert entry.artifact_digests == (f"sha256:{digest.hex()}",)
    assert len(base64.b64decode(VECTORS["c3"]["digest_b64"])) == 32


def test_pae_matches_dsse_spec() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_load_json_strictness() -> None:
    assert kinds.load_json(b'{"a": 1}') == {"a": 1}
    with pytest.raises(kinds.InvalidEntryError, match="duplicate"):
        kinds.load_json(b'{"a": 1, "a": 2}')
    with pytest.raises(kinds.InvalidEntryError, match="at most"):
        kinds.load_json(b"[" + b" " * 100 + b"]", limit=10)


def test_fingerprint_public_key_matches_entries() -> None:
    from stelae.kinds import minisign, sshsig

    key = key_for("ed25519", 0)
    pem = signing.public_key_pem(key)
    cert = verifier_for(key, True)
    entry = kinds.from_v1_proposed(
        signing.build_v1_hashedrekord(signing.sign_artifact(key, ARTIFACT), cert, artifact=ARTIFACT)
    )
    assert kinds.fingerprint_public_key(pem) == entry.key_fingerprints[0]
    assert kinds.fingerprint_public_key(cert) == entry.key_fingerprints[0]
    ssh = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert kinds.fingerprint_public_key(ssh) == entry.key_fingerprints[0]
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    mini = minisign.public_key_text(b"12345678", key.public_key())
    assert kinds.fingerprint_public_key(mini) == entry.key_fingerprints[0]
    assert sshsig.NAMESPACE == "file"


def test_ed25519ph_rfc8032_vector() -> None:
    """RFC 8032 §7.3 (Ed25519ph, message "abc"): our pure-Python prehash signer and verifier."""
    from stelae.kinds import ed25519ph

    seed = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    public = bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
    expected = bytes.fromhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    digest = hashlib.sha512(b"abc").digest()
    assert ed25519ph.sign(seed, digest) == expected
    assert ed25519ph.verify(public, expected, digest)
    assert not ed25519ph.verify(public, expected, hashlib.sha512(b"abd").digest())
    # S must be reduced: adding the group order L to S must be rejected (no malleability).
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(expected[32:], "little") + order
    assert not ed25519ph.verify(public, expected[:32] + s.to_bytes(32, "little"), digest)


def test_ed25519ph_refuses_what_is_not_an_ed25519ph_signature() -> None:
    """Malformed inputs are False, never an exception: a key that is not a curve point, wrong
    lengths, a pure Ed25519 signature of the same bytes (RFC 8032's dom2 prefix separates them)."""
    from stelae.kinds import ed25519ph

    seed = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    public = bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
    digest = hashlib.sha512(b"abc").digest()
    good = ed25519ph.sign(seed, digest)
    off_curve = (2).to_bytes(32, "little")  # y = 2 has no x on edwards25519
    assert not ed25519ph.verify(off_curve, good, digest)
    assert not ed25519ph.verify(public, good[:32] + off_curve, digest)
    assert not ed25519ph.verify(off_curve[:31], good, digest)
    assert not ed25519ph.verify(public, good[:63], digest)
    assert not ed25519ph.verify(public, good, digest[:32])
    pure = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(digest)
    assert not ed25519ph.verify(public, pure, digest)
    with pytest.raises(ValueError, match="64-byte SHA-512"):
        ed25519ph.sign(seed, digest[:32])
