"""A table of invalid entries: each must raise InvalidEntryError (or SignatureError) whose
``field`` names the offending JSON path and whose message says what is wrong."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from stelae import kinds
from stelae.client import signing
from tests.support import certificates

ARTIFACT = b"artifact"
P256 = signing.generate_key("ecdsa-p256")
P384 = signing.generate_key("ecdsa-p384")
ED = signing.generate_key("ed25519")
OTHERS = [signing.generate_key("ecdsa-p256") for _ in range(11)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def v1_hr() -> dict[str, Any]:
    return signing.build_v1_hashedrekord(
        signing.sign_artifact(P256, ARTIFACT), P256, artifact=ARTIFACT
    )


def v2_hr() -> dict[str, Any]:
    _, digest = signing.digest(P256, ARTIFACT)
    return signing.build_v2_hashedrekord(signing.sign_digest(P256, digest), P256, digest)


def dsse_env(signers: list[signing.PrivateKey] | None = None) -> dict[str, Any]:
    return signing.dsse_envelope(b"{}", "application/json", signers or [P256])


def v1_dsse(**kw: Any) -> dict[str, Any]:
    return signing.build_dsse(kw.get("env") or dsse_env(), kw.get("verifiers") or [P256])


def v2_dsse(**kw: Any) -> dict[str, Any]:
    return signing.build_dsse(
        kw.get("env") or dsse_env(), kw.get("verifiers") or [P256], version="0.0.2"
    )


def rekord() -> dict[str, Any]:
    return signing.build_rekord(ARTIFACT, signing.sign_message(P256, ARTIFACT), P256)


def put(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with value=DELETE, remove) a dotted path in a copy of obj."""
    obj = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return obj


DELETE = object()
H2 = "hashedRekordRequestV002"
V2SIG = f"{H2}.signature"
V2VER = f"{V2SIG}.verifier"


def pem_b64(key: Any) -> str:
    return b64(signing.public_key_pem(key))


def cert_without_san() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no san")])
    import datetime

    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(P256.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(P256, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def big_san_cert(key: signing.PrivateKey) -> x509.Certificate:
    """A certificate of ~6 KB: ten of them make a body over 65,535 bytes."""
    cert = certificates.self_signed_certificate(key, "big@example.com")
    names = [x509.RFC822Name("big@example.com")] + [
        x509.UniformResourceIdentifier(f"https://example.com/{i:04d}/" + "x" * 40)
        for i in range(90)
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return builder.sign(key, hashes.SHA256())


def oversize_dsse() -> dict[str, Any]:
    signers = OTHERS[:10]
    return signing.build_dsse(dsse_env(signers), [big_san_cert(k) for k in signers])


V1 = kinds.from_v1_proposed
V2 = kinds.from_v2_request


def BODY(obj: object) -> kinds.Entry:
    assert isinstance(obj, bytes)
    return kinds.from_body(obj)


def _v1_body() -> bytes:
    return kinds.from_v1_proposed(v1_hr()).body


Case = tuple[str, Callable[[object], kinds.Entry], Callable[[], object], type[Exception], str, str]

CASES: list[Case] = [
    # --- Rekor v1 proposed entry, envelope and kind dispatch
    ("v1-not-object", V1, lambda: [1], kinds.InvalidEntryError, "", "JSON object"),
    (
        "v1-missing-kind",
        V1,
        lambda: put(v1_hr(), "kind", DELETE),
        kinds.InvalidEntryError,
        "kind",
        "required",
    ),
    (
        "v1-unknown-kind",
        V1,
        lambda: put(v1_hr(), "kind", "helm"),
        kinds.InvalidEntryError,
        "kind",
        "unsupported kind",
    ),
    (
        "v1-unknown-version",
        V1,
        lambda: put(v1_hr(), "apiVersion", "0.0.9"),
        kinds.InvalidEntryError,
        "apiVersion",
        "unsupported",
    ),
    (
        "v1-v2-version",
        V1,
        lambda: put(v1_hr(), "apiVersion", "0.0.2"),
        kinds.InvalidEntryError,
        "apiVersion",
        "/api/v2",
    ),
    (
        "v1-extra-top-field",
        V1,
        lambda: put(v1_hr(), "extra", 1),
        kinds.InvalidEntryError,
        "extra",
        "unknown field",
    ),
    (
        "v1-spec-not-object",
        V1,
        lambda: put(v1_hr(), "spec", "x"),
        kinds.InvalidEntryError,
        "spec",
        "must be a JSON object",
    ),
    # --- hashedrekord v0.0.1
    (
        "hr1-extra-spec-field",
        V1,
        lambda: put(v1_hr(), "spec.foo", 1),
        kinds.InvalidEntryError,
        "spec.foo",
        "unknown field",
    ),
    (
        "hr1-missing-signature",
        V1,
        lambda: put(v1_hr(), "spec.signature", DELETE),
        kinds.InvalidEntryError,
        "spec.signature",
        "required",
    ),
    (
        "hr1-content-wrong-type",
        V1,
        lambda: put(v1_hr(), "spec.signature.content", 5),
        kinds.InvalidEntryError,
        "spec.signature.content",
        "must be a string",
    ),
    (
        "hr1-content-bad-base64",
        V1,
        lambda: put(v1_hr(), "spec.signature.content", "@@@@"),
        kinds.InvalidEntryError,
        "spec.signature.content",
        "base64",
    ),
    (
        "hr1-content-empty",
        V1,
        lambda: put(v1_hr(), "spec.signature.content", ""),
        kinds.InvalidEntryError,
        "spec.signature.content",
        "empty",
    ),
    (
        "hr1-algorithm-md5",
        V1,
        lambda: put(v1_hr(), "spec.data.hash.algorithm", "md5"),
        kinds.InvalidEntryError,
        "spec.data.hash.algorithm",
        "one of",
    ),
    (
        "hr1-digest-length",
        V1,
        lambda: put(v1_hr(), "spec.data.hash.value", "ab" * 48),
        kinds.InvalidEntryError,
        "spec.data.hash.value",
        "48 bytes",
    ),
    (
        "hr1-digest-not-hex",
        V1,
        lambda: put(v1_hr(), "spec.data.hash.value", "zz" * 32),
        kinds.InvalidEntryError,
        "spec.data.hash.value",
        "must be hex",
    ),
    (
        "hr1-digest-odd-hex",
        V1,
        lambda: put(v1_hr(), "spec.data.hash.value", "a" * 63),
        kinds.InvalidEntryError,
        "spec.data.hash.value",
        "hex",
    ),
    (
        "hr1-wrong-signature",
        V1,
        lambda: put(v1_hr(), "spec.signature.content", b64(signing.sign_artifact(P256, b"other"))),
        kinds.SignatureError,
        "spec.signature.content",
        "does not verify",
    ),
    (
        "hr1-wrong-key",
        V1,
        lambda: put(v1_hr(), "spec.signature.publicKey.content", pem_b64(OTHERS[0])),
        kinds.SignatureError,
        "spec.signature.content",
        "does not verify",
    ),
    (
        "hr1-not-pem",
        V1,
        lambda: put(v1_hr(), "spec.signature.publicKey.content", b64(b"hello")),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "PEM",
    ),
    (
        "hr1-corrupt-pem",
        V1,
        lambda: put(
            v1_hr(),
            "spec.signature.publicKey.content",
            b64(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        ),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "not a valid PEM",
    ),
    (
        "hr1-private-key-pem",
        V1,
        lambda: put(
            v1_hr(), "spec.signature.publicKey.content", b64(signing.private_key_pem(P256))
        ),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "PUBLIC KEY",
    ),
    (
        "hr1-cert-without-san",
        V1,
        lambda: put(v1_hr(), "spec.signature.publicKey.content", b64(cert_without_san())),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "subjectAltName",
    ),
    (
        "hr1-rsa-1024",
        V1,
        lambda: put(
            v1_hr(),
            "spec.signature.publicKey.content",
            pem_b64(rsa.generate_private_key(65537, 1024)),
        ),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "RSA key size 1024",
    ),
    (
        "hr1-secp256k1",
        V1,
        lambda: put(
            v1_hr(),
            "spec.signature.publicKey.content",
            pem_b64(ec.generate_private_key(ec.SECP256K1())),
        ),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "secp256k1",
    ),
    (
        "hr1-ed25519-sha256",
        V1,
        lambda: signing.build_v1_hashedrekord(
            b"\x00" * 64, ED, artifact=ARTIFACT, algorithm="sha256"
        ),
        kinds.InvalidEntryError,
        "spec.data.hash.algorithm",
        "Ed25519ph",
    ),
    # --- hashedrekord v0.0.2
    ("v2-empty-request", V2, lambda: {}, kinds.InvalidEntryError, "", "exactly one"),
    (
        "v2-two-kinds",
        V2,
        lambda: {**v2_hr(), **v2_dsse()},
        kinds.InvalidEntryError,
        "",
        "exactly one",
    ),
    (
        "v2-unknown-top-field",
        V2,
        lambda: put(v2_hr(), "foo", {}),
        kinds.InvalidEntryError,
        "foo",
        "unknown field",
    ),
    (
        "v2-unknown-nested-field",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.foo", 1),
        kinds.InvalidEntryError,
        f"{V2VER}.foo",
        "unknown field",
    ),
    (
        "v2-camel-and-snake",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.key_details", "PKIX_ECDSA_P256_SHA_256"),
        kinds.InvalidEntryError,
        f"{V2VER}.keyDetails",
        "given twice",
    ),
    (
        "v2-missing-key-details",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.keyDetails", DELETE),
        kinds.InvalidEntryError,
        f"{V2VER}.keyDetails",
        "required",
    ),
    (
        "v2-unknown-key-details",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.keyDetails", "PKIX_FOO"),
        kinds.InvalidEntryError,
        f"{V2VER}.keyDetails",
        "unsupported keyDetails",
    ),
    (
        "v2-deprecated-key-details-number",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.keyDetails", 19),
        kinds.InvalidEntryError,
        f"{V2VER}.keyDetails",
        "unsupported keyDetails number 19",
    ),
    (
        "v2-pure-ed25519",
        V2,
        lambda: signing.build_v2_hashedrekord(
            b"\x00" * 64, ED, b"\x00" * 64, key_details="PKIX_ED25519"
        ),
        kinds.InvalidEntryError,
        f"{V2VER}.keyDetails",
        "PKIX_ED25519_PH",
    ),
    (
        "v2-key-details-mismatch",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.keyDetails", "PKIX_ECDSA_P384_SHA_384"),
        kinds.InvalidEntryError,
        f"{V2VER}.keyDetails",
        "does not match",
    ),
    (
        "v2-digest-length",
        V2,
        lambda: put(v2_hr(), f"{H2}.digest", b64(b"\x01" * 48)),
        kinds.InvalidEntryError,
        f"{H2}.digest",
        "32-byte",
    ),
    (
        "v2-digest-bad-base64",
        V2,
        lambda: put(v2_hr(), f"{H2}.digest", "!!!!"),
        kinds.InvalidEntryError,
        f"{H2}.digest",
        "base64",
    ),
    (
        "v2-key-and-cert",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.x509Certificate", {"rawBytes": "AAAA"}),
        kinds.InvalidEntryError,
        V2VER,
        "exactly one of publicKey or x509Certificate",
    ),
    (
        "v2-neither-key-nor-cert",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.publicKey", DELETE),
        kinds.InvalidEntryError,
        V2VER,
        "exactly one",
    ),
    (
        "v2-raw-bytes-not-der",
        V2,
        lambda: put(v2_hr(), f"{V2VER}.publicKey.rawBytes", b64(b"nope")),
        kinds.InvalidEntryError,
        f"{V2VER}.publicKey.rawBytes",
        "DER",
    ),
    (
        "v2-cert-not-der",
        V2,
        lambda: put(
            put(v2_hr(), f"{V2VER}.publicKey", DELETE),
            f"{V2VER}.x509Certificate",
            {"rawBytes": b64(b"nope")},
        ),
        kinds.InvalidEntryError,
        f"{V2VER}.x509Certificate.rawBytes",
        "X.509",
    ),
    (
        "v2-wrong-signature",
        V2,
        lambda: put(v2_hr(), f"{V2SIG}.content", b64(signing.sign_artifact(P256, b"other"))),
        kinds.SignatureError,
        f"{V2SIG}.content",
        "does not verify",
    ),
    (
        "v2-signature-wrong-type",
        V2,
        lambda: put(v2_hr(), f"{V2SIG}.content", ["x"]),
        kinds.InvalidEntryError,
        f"{V2SIG}.content",
        "must be a string",
    ),
    # --- dsse
    (
        "dsse1-envelope-not-json",
        V1,
        lambda: put(v1_dsse(), "spec.proposedContent.envelope", "{nope"),
        kinds.InvalidEntryError,
        "spec.proposedContent.envelope",
        "not a DSSE envelope",
    ),
    (
        "dsse1-missing-payload-type",
        V1,
        lambda: put(
            v1_dsse(),
            "spec.proposedContent.envelope",
            json.dumps({k: v for k, v in dsse_env().items() if k != "payloadType"}),
        ),
        kinds.InvalidEntryError,
        "spec.proposedContent.envelope.payloadType",
        "required",
    ),
    (
        "dsse1-server-fields",
        V1,
        lambda: put(v1_dsse(), "spec.payloadHash", {"algorithm": "sha256", "value": "00" * 32}),
        kinds.InvalidEntryError,
        "spec.payloadHash",
        "must be null",  # the log computes it; sigstore-python's v1 client sends null
    ),
    (
        "dsse1-too-many-verifiers",
        V1,
        lambda: v1_dsse(verifiers=OTHERS),
        kinds.InvalidEntryError,
        "spec.proposedContent.verifiers",
        "too many items: 11",
    ),
    (
        "dsse1-unverified-signature",
        V1,
        lambda: v1_dsse(verifiers=[OTHERS[0]]),
        kinds.SignatureError,
        "spec.proposedContent.envelope.signatures[0].sig",
        "any of the given verifiers",
    ),
    (
        "dsse1-unused-verifier",
        V1,
        lambda: v1_dsse(verifiers=[P256, OTHERS[0]]),
        kinds.SignatureError,
        "spec.proposedContent.verifiers[1]",
        "verifies none",
    ),
    (
        "dsse2-too-many-signatures",
        V2,
        lambda: v2_dsse(env=dsse_env(OTHERS), verifiers=OTHERS[:10]),
        kinds.InvalidEntryError,
        "dsseRequestV002.envelope.signatures",
        "too many items: 11",
    ),
    (
        "dsse2-duplicate-signature",
        V2,
        lambda: v2_dsse(env=put(dsse_env(), "signatures", dsse_env()["signatures"] * 2)),
        kinds.InvalidEntryError,
        "dsseRequestV002.envelope.signatures[1].sig",
        "duplicate",
    ),
    (
        "dsse2-no-verifiers",
        V2,
        lambda: put(v2_dsse(), "dsseRequestV002.verifiers", []),
        kinds.InvalidEntryError,
        "dsseRequestV002.verifiers",
        "at least 1",
    ),
    (
        "dsse2-tampered-payload",
        V2,
        lambda: put(v2_dsse(), "dsseRequestV002.envelope.payload", b64(b"[]")),
        kinds.SignatureError,
        "dsseRequestV002.envelope.signatures[0].sig",
        "PAE",
    ),
    ("dsse-oversize-body", V1, oversize_dsse, kinds.InvalidEntryError, "", "at most 65535"),
    # --- rekord
    (
        "rekord-unknown-format",
        V1,
        lambda: put(rekord(), "spec.signature.format", "cosign"),
        kinds.InvalidEntryError,
        "spec.signature.format",
        "one of",
    ),
    (
        "rekord-hash-only",
        V1,
        lambda: put(rekord(), "spec.data", {"hash": {"algorithm": "sha256", "value": "00" * 32}}),
        kinds.InvalidEntryError,
        "spec.data.content",
        "required",
    ),
    (
        "rekord-hash-mismatch",
        V1,
        lambda: put(rekord(), "spec.data.hash", {"algorithm": "sha256", "value": "00" * 32}),
        kinds.InvalidEntryError,
        "spec.data.hash.value",
        "does not match",
    ),
    (
        "rekord-url",
        V1,
        lambda: put(rekord(), "spec.data.url", "https://example.com/a"),
        kinds.InvalidEntryError,
        "spec.data.url",
        "unknown field",
    ),
    (
        "rekord-oversize-artifact",
        V1,
        lambda: put(rekord(), "spec.data.content", "A" * (23 * 1024 * 1024)),
        kinds.InvalidEntryError,
        "spec.data.content",
        "too long",
    ),
    (
        "rekord-wrong-signature",
        V1,
        lambda: put(rekord(), "spec.data.content", b64(b"other")),
        kinds.SignatureError,
        "spec.signature.content",
        "does not verify",
    ),
    (
        "rekord-ssh-not-armored",
        V1,
        lambda: put(
            put(rekord(), "spec.signature.format", "ssh"),
            "spec.signature.publicKey.content",
            b64(
                P256.public_key().public_bytes(
                    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
                )
            ),
        ),
        kinds.InvalidEntryError,
        "spec.signature.content",
        "armored SSH signature",
    ),
    (
        "rekord-ssh-bad-key",
        V1,
        lambda: put(rekord(), "spec.signature.format", "ssh"),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "OpenSSH public key",
    ),
    (
        "rekord-minisign-bad-key",
        V1,
        lambda: put(rekord(), "spec.signature.format", "minisign"),
        kinds.InvalidEntryError,
        "spec.signature.publicKey.content",
        "minisign",
    ),
    # --- stored bodies
    ("body-not-json", BODY, lambda: b"{nope", kinds.InvalidEntryError, "", "not valid JSON"),
    (
        "body-not-canonical",
        BODY,
        lambda: json.dumps(json.loads(_v1_body()), indent=1).encode(),
        kinds.InvalidEntryError,
        "",
        "RFC 8785",
    ),
    (
        "body-duplicate-key",
        BODY,
        lambda: b'{"kind":"a","kind":"b"}',
        kinds.InvalidEntryError,
        "kind",
        "duplicate",
    ),
    (
        "body-oversize",
        BODY,
        lambda: b'{"a":"' + b"x" * 65_536 + b'"}',
        kinds.InvalidEntryError,
        "",
        "at most 65535",
    ),
    (
        "body-missing-kind",
        BODY,
        lambda: b'{"apiVersion":"0.0.1"}',
        kinds.InvalidEntryError,
        "kind",
        "required",
    ),
    (
        "body-unknown-kind",
        BODY,
        lambda: b'{"apiVersion":"0.0.1","kind":"alpine","spec":{}}',
        kinds.InvalidEntryError,
        "kind",
        "unsupported kind",
    ),
    (
        "body-uppercase-hex",
        BODY,
        lambda: _v1_body().replace(
            signing.digest(P256, ARTIFACT)[1].hex().encode(),
            signing.digest(P256, ARTIFACT)[1].hex().upper().encode(),
        ),
        kinds.InvalidEntryError,
        "spec.data.hash.value",
        "lowercase hex",
    ),
    (
        "body-proposed-rekord-shape",
        BODY,
        lambda: json.dumps(rekord(), sort_keys=True, separators=(",", ":")).encode(),
        kinds.InvalidEntryError,
        "spec.data.content",
        "unknown field",
    ),
    (
        "body-tampered-signature",
        BODY,
        lambda: _v1_body().replace(b'"content":"M', b'"content":"N', 1),
        kinds.SignatureError,
        "spec.signature.content",
        "does not verify",
    ),
]


@pytest.mark.parametrize(
    ("entry_point", "make", "error", "field", "message"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_invalid(
    entry_point: Callable[[object], kinds.Entry],
    make: Callable[[], object],
    error: type[Exception],
    field: str,
    message: str,
) -> None:
    with pytest.raises(error) as info:
        entry_point(make())
    err = info.value
    assert isinstance(err, kinds.InvalidEntryError)
    assert err.field == field, str(err)
    assert message in err.problem, str(err)
    assert not field or f"{field}:" not in err.problem, f"field named twice: {err}"
    assert str(err) == (f"{field}: {err.problem}" if field else err.problem)


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_signature_error_is_also_a_verification_error() -> None:
    from stelae.tiles.errors import FormatError, VerificationError

    assert issubclass(kinds.SignatureError, VerificationError)
    assert issubclass(kinds.InvalidEntryError, FormatError)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            b'{"apiVersion":"0.0.1","kind":"hashedrekord","n":123456789012345678901234567890}',
            "safe integer",
        ),
        (b'{"apiVersion":"0.0.1","kind":"hashedrekord","s":"\\ud800"}', "non-UTF-8"),
        (b'{"apiVersion":"0.0.1","kind":"hashedrekord","f":1e400}', "not representable"),
    ],
)
def test_a_stored_body_no_log_could_have_canonicalized_is_refused(
    body: bytes, problem: str
) -> None:
    """Bodies read back from storage are input too: a number outside I-JSON's range or a lone
    surrogate is an InvalidEntryError naming the problem, not rfc8785's exception escaping."""
    with pytest.raises(kinds.InvalidEntryError, match=problem):
        kinds.from_body(body)
