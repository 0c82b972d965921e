"""A real Sigstore client accepts what our Rekor v2 write API answers (docs/compatibility.md).

sigstore-python (PyPI ``sigstore``, the reference Python client, with its own protobuf models in
``sigstore-models``) is the independent judge here: nothing below re-implements a check. A log is
served over HTTP on 127.0.0.1 and entries are uploaded through ``POST /api/v2/log/entries``;
the verbatim 201 bodies then go through sigstore-python's code:

- **schema**: ``sigstore_models.rekor.v1.TransparencyLogEntry.from_json`` (strict pydantic, unknown
  fields forbidden, int64 must be JSON strings, bytes base64) parses each body, and
  ``sigstore.models.TransparencyLogEntry`` accepts it (it insists on a proof with a checkpoint).
- **the log checks**, exactly the step Sigstore's ``Verifier`` runs for a log entry,
  ``TransparencyLogEntry._verify(trusted_root.rekor_keyring(VERIFY))``, which is
  ``sigstore._internal.merkle.verify_merkle_inclusion`` (the leaf hash of ``canonicalizedBody``
  chained with ``inclusionProof.hashes`` by ``inclusionProof.logIndex``/``treeSize`` must give
  ``inclusionProof.rootHash``) and
  ``sigstore._internal.rekor.checkpoint.verify_checkpoint`` (the note parses, carries a
  signature whose 4-byte hint is ``logId.keyId[:4]``, that signature verifies under a log key
  of the TrustedRoot, and the note's root is ``rootHash``). The TrustedRoot is the JSON a
  Sigstore deployment would publish for this log, read by ``TrustedRoot.from_file``.
- **the whole client path**: the public ``sigstore.verify.Verifier.verify_artifact`` on a
  ``Bundle.from_json`` v0.3 bundle whose ``tlogEntries`` is our 201 body verbatim. Sigstore
  insists on a Fulcio-style chain, an embedded SCT and (Rekor v2 has no SET) an RFC 3161
  timestamp, so the test stands up throwaway ones: a CA, a CT log key that signs the
  precertificate SCT, and a TSA whose reply ``openssl ts -reply`` makes. None of them is what
  is tested; they only let the verifier reach the log entry and the body consistency check
  (step 8: the hashedrekord v0.0.2 body rebuilt from the bundle's certificate, signature and the
  artifact's digest must equal ``canonicalizedBody``).
- **negative controls**: the same calls reject a tampered ``rootHash``, proof hash, checkpoint
  signature, ``logId``, body, index or size, and a TrustedRoot with another log key, so passing
  means something.

The Rekor v1 path is tested through sigstore-python's own v1 client (``RekorClient``: upload,
reads by UUID and index, ``_from_v1_response``, inclusion + checkpoint + SET, and the whole
``Verifier``), and the Rekor v2 path also with ``RekorV2Client``'s DSSE upload (a hashedrekord
over the envelope's PAE), each under a TrustedRoot carrying either log ID.

Verdict on our shape (sigstore 4.5.1): accepted as is. Worth knowing: sigstore-python keys its
log keyring by SHA-256 of the SPKI, never by the TrustedRoot's ``logId``; a Rekor v2 ``logId``
(the note key hash) therefore misses the index and every log key is tried. What binds the entry's
``logId`` is the checkpoint: only the signature line whose key hint equals ``logId.keyId[:4]``
is tried.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stelae.client import signing
from stelae.tiles.proofbundle import ProofBundle
from tests.support.api import LiveLog, served

# In CI sigstore comes with the test extras and this module must run; elsewhere it may be absent.
if os.environ.get("CI"):
    import sigstore
else:
    sigstore = pytest.importorskip("sigstore")

from rfc3161_client import TimestampRequestBuilder  # sigstore's own dependency
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore._internal.rekor.checkpoint import verify_checkpoint
from sigstore._internal.trust import KeyringPurpose
from sigstore.errors import VerificationError
from sigstore.models import Bundle, TransparencyLogEntry, TrustedRoot
from sigstore.verify import Verifier, policy
from sigstore_models.rekor.v1 import TransparencyLogEntry as TLEMessage

V2 = "/api/v2/log/entries"
ENTRIES = 7  # tree sizes 1..7: empty, inner-only, border-only and mixed audit paths alike
EMAIL = "signer@stelae.test"
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: Any) -> bytes:
    return key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- a throwaway Sigstore PKI: Fulcio-style CA, CT log, TSA ------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stelae-test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _root_ca(cn: str, key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_builder(
    subject: x509.Name,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    *,
    eku: x509.ObjectIdentifier,
    eku_critical: bool,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=eku_critical)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


def _der_octet_string(data: bytes) -> bytes:
    n = len(data)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return b"\x04" + length + data


def _embedded_sct_certificate(
    builder: x509.CertificateBuilder,
    ca_key: ec.EllipticCurvePrivateKey,
    ct_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """Sign ``builder`` with an RFC 6962 precertificate SCT from ``ct_key`` embedded, as Fulcio
    does: the SCT signs (issuer key hash, TBSCertificate without the SCT list extension)."""
    tbs = builder.sign(ca_key, hashes.SHA256()).tbs_certificate_bytes
    ms = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
    issuer_key_hash = hashlib.sha256(_spki(ca_key.public_key())).digest()
    signed = (
        struct.pack("!BBQH", 0, 0, ms, 1)  # v1, certificate_timestamp, time, precert_entry
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + b"\x00\x00"  # no extensions
    )
    sig = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    log_id = hashlib.sha256(_spki(ct_key.public_key())).digest()
    sct = struct.pack("!B32sQH", 0, log_id, ms, 0) + struct.pack("!BBH", 4, 3, len(sig)) + sig
    sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
    cert = builder.add_extension(
        x509.UnrecognizedExtension(SCT_LIST_OID, _der_octet_string(sct_list)), critical=False
    ).sign(ca_key, hashes.SHA256())
    assert cert.tbs_precertificate_bytes == tbs  # what sigstore will rebuild and check
    return cert


@dataclass
class Pki:
    ca: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    ct_key: ec.EllipticCurvePrivateKey
    tsa_root: x509.Certificate
    tsa: x509.Certificate
    tsa_key: ec.EllipticCurvePrivateKey
    start: datetime.datetime

    @classmethod
    def make(cls) -> Pki:
        now = datetime.datetime.now(datetime.UTC)
        ca_key, ct_key, tsa_root_key, tsa_key = (
            ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
        )
        ca = _root_ca("stelae-test fulcio", ca_key, now)
        tsa_root = _root_ca("stelae-test tsa root", tsa_root_key, now)
        tsa = _leaf_builder(
            _name("stelae-test tsa"),
            tsa_root,
            tsa_root_key,
            tsa_key,
            now,
            eku=ExtendedKeyUsageOID.TIME_STAMPING,
            eku_critical=True,
        ).sign(tsa_root_key, hashes.SHA256())
        return cls(ca, ca_key, ct_key, tsa_root, tsa, tsa_key, now - datetime.timedelta(hours=1))

    def signing_certificate(self, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        """A Fulcio-shaped leaf: empty subject, critical email SAN, code signing, one SCT."""
        builder = _leaf_builder(
            x509.Name([]),
            self.ca,
            self.ca_key,
            key,
            datetime.datetime.now(datetime.UTC),
            eku=ExtendedKeyUsageOID.CODE_SIGNING,
            eku_critical=False,
        ).add_extension(x509.SubjectAlternativeName([x509.RFC822Name(EMAIL)]), critical=True)
        return _embedded_sct_certificate(builder, self.ca_key, self.ct_key)

    def timestamp(self, signature: bytes, workdir: Path) -> bytes:
        """An RFC 3161 TimeStampResp over ``signature``, made by ``openssl ts -reply``."""
        openssl = shutil.which("openssl")
        assert openssl, "the openssl command is needed to act as the test TSA"
        workdir.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        (workdir / "tsa.pem").write_bytes(self.tsa.public_bytes(pem))
        (workdir / "tsa.key").write_bytes(
            self.tsa_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (workdir / "serial").write_text("01\n")
        (workdir / "ts.cnf").write_text(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\n"
            f"serial = {workdir / 'serial'}\nsigner_cert = {workdir / 'tsa.pem'}\n"
            f"signer_key = {workdir / 'tsa.key'}\nsigner_digest = sha256\n"
            "default_policy = 1.3.6.1.4.1.57264.2\naccuracy = secs:1\n"
            "digests = sha256, sha384, sha512\ness_cert_id_alg = sha256\n"
        )
        query = TimestampRequestBuilder().data(signature).cert_request(cert_request=True).build()
        (workdir / "req.tsq").write_bytes(query.as_bytes())
        subprocess.run(
            [
                openssl,
                "ts",
                "-reply",
                "-config",
                str(workdir / "ts.cnf"),
                "-queryfile",
                str(workdir / "req.tsq"),
                "-out",
                str(workdir / "resp.tsr"),
            ],
            check=True,
            capture_output=True,
        )
        return (workdir / "resp.tsr").read_bytes()

    def authority(self, chain: list[x509.Certificate], cn: str) -> dict[str, Any]:
        return {
            "subject": {"organization": "stelae-test", "commonName": cn},
            "certChain": {
                "certificates": [
                    {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in chain
                ]
            },
            "validFor": {"start": self.start.isoformat()},
        }


def trusted_root(log: LiveLog, pki: Pki, *, log_key: bytes | None = None) -> dict[str, Any]:
    """The TrustedRoot a Sigstore deployment would publish for this log (docs/compatibility.md)."""
    raw = log_key if log_key is not None else log.identity.public_key
    start = pki.start.isoformat()
    ct_spki = _spki(pki.ct_key.public_key())
    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [
            {
                "baseUrl": log.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(ed25519.Ed25519PublicKey.from_public_bytes(raw))),
                    "keyDetails": "PKIX_ED25519",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": _b64(log.identity.v2_key_id)},
            }
        ],
        "certificateAuthorities": [pki.authority([pki.ca], "stelae-test fulcio")],
        "ctlogs": [
            {
                "baseUrl": "https://ct.stelae.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(ct_spki),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": _b64(hashlib.sha256(ct_spki).digest())},
            }
        ],
        "timestampAuthorities": [pki.authority([pki.tsa, pki.tsa_root], "stelae-test tsa")],
    }


def load_root(obj: dict[str, Any], path: Path) -> TrustedRoot:
    path.write_text(json.dumps(obj))
    return TrustedRoot.from_file(str(path))  # the public loader reads a file


# -- the log and its entries ----------------------------------------------------------------------


@dataclass
class Upload:
    artifact: bytes
    signature: bytes
    certificate: x509.Certificate | None
    reply: dict[str, Any]  # the 201 body, parsed
    raw: bytes  # the 201 body, verbatim


@dataclass
class World:
    log: LiveLog
    pki: Pki
    root: TrustedRoot
    uploads: list[Upload]
    tmp: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sigstore")
    pki = Pki.make()
    with served(tmp / "log") as log:
        uploads = []
        for i in range(ENTRIES):
            key = ec.generate_private_key(ec.SECP256R1())
            # Mostly Fulcio-style certificates (what verify_artifact needs), some bare keys.
            cert = pki.signing_certificate(key) if i % 3 != 1 else None
            artifact = f"stelae sigstore-compat artifact {i} {os.urandom(8).hex()}".encode()
            digest = hashlib.sha256(artifact).digest()
            sig = signing.sign_digest(key, digest)
            request = signing.build_v2_hashedrekord(sig, cert if cert is not None else key, digest)
            reply = log.post(V2, request)
            assert reply.status == 201, reply.body
            uploads.append(Upload(artifact, sig, cert, reply.json, reply.body))
        root = load_root(trusted_root(log, pki), tmp / "trusted_root.json")
        yield World(log, pki, root, uploads, tmp)


def keyring(root: TrustedRoot) -> Any:
    return root.rekor_keyring(KeyringPurpose.VERIFY)


def sigstore_entry(obj: dict[str, Any] | bytes) -> TransparencyLogEntry:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return TransparencyLogEntry(TLEMessage.from_json(raw))


def bundle_json(up: Upload, tle: dict[str, Any], tsr: bytes) -> str:
    assert up.certificate is not None
    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {
                    "rawBytes": _b64(up.certificate.public_bytes(serialization.Encoding.DER))
                },
                "tlogEntries": [tle],
                "timestampVerificationData": {
                    "rfc3161Timestamps": [{"signedTimestamp": _b64(tsr)}]
                },
            },
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": _b64(hashlib.sha256(up.artifact).digest()),
                },
                "signature": _b64(up.signature),
            },
        }
    )


# -- schema ---------------------------------------------------------------------------------------


def test_sigstore_models_parse_our_201_bodies_field_for_field(world: World) -> None:
    for up in world.uploads:
        inner = TLEMessage.from_json(up.raw)  # strict: unknown fields and int64 numbers fail
        e = up.reply
        proof = e["inclusionProof"]
        assert inner.log_index == int(e["logIndex"]) == inner.inclusion_proof.log_index
        assert inner.log_id.key_id == world.log.identity.v2_key_id
        assert (inner.kind_version.kind, inner.kind_version.version) == ("hashedrekord", "0.0.2")
        assert inner.integrated_time == 0 and inner.inclusion_promise is None
        assert inner.inclusion_proof.tree_size == int(proof["treeSize"])
        assert inner.inclusion_proof.root_hash == base64.b64decode(proof["rootHash"])
        assert len(inner.inclusion_proof.root_hash) == 32
        assert inner.inclusion_proof.hashes == [base64.b64decode(h) for h in proof["hashes"]]
        assert inner.inclusion_proof.checkpoint is not None
        assert inner.inclusion_proof.checkpoint.envelope == proof["checkpoint"]["envelope"]
        assert inner.canonicalized_body == base64.b64decode(e["canonicalizedBody"])
        # sigstore's re-serialisation is ours less the defaults protojson may omit.
        ours = {k: v for k, v in e.items() if k not in ("integratedTime", "inclusionPromise")}
        theirs = json.loads(inner.to_json())
        theirs.pop("integratedTime", None)
        assert theirs == ours
        TransparencyLogEntry(inner)  # the client's own invariants (proof with checkpoint)


def test_sigstore_rejects_a_json_number_where_int64_must_be_a_string(world: World) -> None:
    """The control for the test above: the models really are strict about protojson int64."""
    e = copy.deepcopy(world.uploads[0].reply)
    e["logIndex"] = int(e["logIndex"])
    with pytest.raises(ValueError, match="uint64 as string"):
        TLEMessage.from_json(json.dumps(e))


# -- the log checks -------------------------------------------------------------------------------


def test_sigstore_verifies_inclusion_and_checkpoint_of_every_entry(world: World) -> None:
    ring = keyring(world.root)
    sizes = set()
    for up in world.uploads:
        entry = sigstore_entry(up.raw)
        verify_merkle_inclusion(entry)
        verify_checkpoint(ring, entry)
        entry._verify(ring)  # what Verifier runs: both of the above (no SET in v2)
        sizes.add(entry._inner.inclusion_proof.tree_size)
    assert len(sizes) > 1  # proofs against several tree sizes, not just one


def test_the_tle_in_our_proof_file_verifies_with_sigstore(world: World) -> None:
    ring = keyring(world.root)
    for up in world.uploads[-2:]:
        pb = ProofBundle.from_tle(up.reply)
        sigstore_entry(pb.to_tle())._verify(ring)
        sigstore_entry(json.loads(pb.to_json())["transparencyLogEntry"])._verify(ring)


def _swap_b64(value: str, at: int | None = None) -> str:
    """Flip one bit of a base64 value's bytes (in the middle unless ``at`` says where)."""
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2 if at is None else at] ^= 0x01
    return _b64(bytes(raw))


def _tamper_checkpoint_signature(e: dict[str, Any]) -> None:
    """Flip a bit in every signature line (the C2SP one and Rekor v1's key-hint one)."""
    envelope = e["inclusionProof"]["checkpoint"]["envelope"]
    text, lines = envelope.split("\n\n")
    tampered = []
    for line in lines.splitlines():
        dash, name, sig = line.split(" ")
        tampered.append(f"{dash} {name} {_swap_b64(sig)}\n")
    e["inclusionProof"]["checkpoint"]["envelope"] = f"{text}\n\n{''.join(tampered)}"


def _tamper_checkpoint_root(e: dict[str, Any]) -> None:
    envelope = e["inclusionProof"]["checkpoint"]["envelope"]
    origin, size, root, rest = envelope.split("\n", 3)
    e["inclusionProof"]["checkpoint"]["envelope"] = "\n".join([origin, size, _swap_b64(root), rest])


def _tamper_root_hash(e: dict[str, Any]) -> None:
    e["inclusionProof"]["rootHash"] = _swap_b64(e["inclusionProof"]["rootHash"])


def _tamper_proof_hash(e: dict[str, Any]) -> None:
    hashes = e["inclusionProof"]["hashes"]
    hashes[0] = _swap_b64(hashes[0])


def _tamper_log_id(e: dict[str, Any]) -> None:
    e["logId"]["keyId"] = _swap_b64(e["logId"]["keyId"], at=0)  # the note key hint


def _tamper_body(e: dict[str, Any]) -> None:
    body = base64.b64decode(e["canonicalizedBody"])
    e["canonicalizedBody"] = _b64(body.replace(b"SHA2_256", b"SHA2_384"))


def _tamper_log_index(e: dict[str, Any]) -> None:
    e["inclusionProof"]["logIndex"] = str(int(e["inclusionProof"]["logIndex"]) - 1)


def _tamper_tree_size(e: dict[str, Any]) -> None:
    e["inclusionProof"]["treeSize"] = str(int(e["inclusionProof"]["treeSize"]) + 1)


TAMPERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "rootHash": _tamper_root_hash,
    "proof-hash": _tamper_proof_hash,
    "checkpoint-signature": _tamper_checkpoint_signature,
    "checkpoint-root": _tamper_checkpoint_root,
    "logId": _tamper_log_id,
    "body": _tamper_body,
    "logIndex": _tamper_log_index,
    "treeSize": _tamper_tree_size,
}

# What sigstore-python says for each: the check that caught it.
TAMPER_ERRORS = {
    "rootHash": "inclusion proof contains invalid root hash",
    "proof-hash": "inclusion proof contains invalid root hash",
    "checkpoint-signature": "checkpoint: invalid signature",
    "checkpoint-root": "checkpoint: invalid signature",
    "logId": "checkpoint: Signature not found for log ID",
    "body": "inclusion proof contains invalid root hash",
    "logIndex": "inclusion proof contains invalid root hash",
    "treeSize": "inclusion proof has wrong size",
}


def _middle(world: World) -> Upload:
    """An entry whose proof has hashes and whose index is above zero."""
    up = world.uploads[ENTRIES // 2]
    assert up.reply["inclusionProof"]["hashes"] and int(up.reply["logIndex"]) > 0
    return up


@pytest.mark.parametrize("what", sorted(TAMPERS))
def test_sigstore_rejects_a_tampered_entry(world: World, what: str) -> None:
    e = copy.deepcopy(_middle(world).reply)
    TAMPERS[what](e)
    assert e != _middle(world).reply
    with pytest.raises(VerificationError, match=TAMPER_ERRORS[what]):
        sigstore_entry(e)._verify(keyring(world.root))


def test_sigstore_rejects_our_entry_under_another_log_key(world: World) -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    root = load_root(trusted_root(world.log, world.pki, log_key=other), world.tmp / "other.json")
    entry = sigstore_entry(_middle(world).raw)
    verify_merkle_inclusion(entry)  # the proof itself is fine ...
    with pytest.raises(VerificationError, match="checkpoint"):
        entry._verify(keyring(root))  # ... but no trusted key signed the checkpoint


# -- the whole client path ------------------------------------------------------------------------


def _certified(world: World) -> list[Upload]:
    ups = [u for u in world.uploads if u.certificate is not None]
    assert len(ups) >= 3
    return ups


def test_sigstore_verify_artifact_accepts_a_bundle_around_our_entry(world: World) -> None:
    verifier = Verifier(trusted_root=world.root)
    for n, up in enumerate(_certified(world)):
        tsr = world.pki.timestamp(up.signature, world.tmp / f"tsa-{n}")
        bundle = Bundle.from_json(bundle_json(up, up.reply, tsr))
        verifier.verify_artifact(up.artifact, bundle, policy.Identity(identity=EMAIL))


@pytest.mark.parametrize("what", ["rootHash", "proof-hash", "checkpoint-signature", "body"])
def test_sigstore_verify_artifact_rejects_a_tampered_entry(world: World, what: str) -> None:
    up = _certified(world)[-1]
    tsr = world.pki.timestamp(up.signature, world.tmp / f"tsa-bad-{what}")
    e = copy.deepcopy(up.reply)
    if what == "proof-hash" and not e["inclusionProof"]["hashes"]:
        pytest.fail("the last certified entry should have a non-empty proof")
    TAMPERS[what](e)
    bundle = Bundle.from_json(bundle_json(up, e, tsr))
    with pytest.raises(VerificationError, match=f"invalid log entry: {TAMPER_ERRORS[what]}"):
        Verifier(trusted_root=world.root).verify_artifact(up.artifact, bundle, policy.UnsafeNoOp())


def test_sigstore_verify_artifact_checks_our_body_against_the_bundle(world: World) -> None:
    """Step 8 really reads our ``canonicalizedBody``: a valid, included entry for another
    signature is refused. So the accepted bundles above passed because sigstore's own rebuild
    of the hashedrekord v0.0.2 body (from certificate, signature, digest) equals ours."""
    one, other, *_ = _certified(world)
    tsr = world.pki.timestamp(one.signature, world.tmp / "tsa-swap")
    bundle = Bundle.from_json(bundle_json(one, other.reply, tsr))
    with pytest.raises(VerificationError, match="inconsistent with other materials"):
        Verifier(trusted_root=world.root).verify_artifact(one.artifact, bundle, policy.UnsafeNoOp())


# -- Rekor v1 through sigstore's own v1 client ----------------------------------------------------
#
# sigstore-python's v1 path (RekorClient.create_entry -> TransparencyLogEntry._from_v1_response)
# takes the answer's ``logID`` (hex SHA-256 of the log key's SPKI, as Rekor v1 has it) and looks
# for a checkpoint signature under its first 4 bytes; it then checks the SET with the same key.
# stelae signs every checkpoint twice with the one key (the C2SP line and that v1 key-hint line),
# so the entry verifies under one TrustedRoot entry whichever logId that entry carries.


def _v1_hint(log: LiveLog) -> bytes:
    return bytes.fromhex(log.identity.v1_log_id)[:4]


@pytest.fixture(scope="module", params=["rekor-v2-key-id", "spki-sha256"])
def any_root(world: World, request: pytest.FixtureRequest) -> TrustedRoot:
    """The TrustedRoot with either ``logId`` a deployment might publish for the log."""
    obj = trusted_root(world.log, world.pki)
    if request.param == "spki-sha256":
        obj["tlogs"][0]["logId"]["keyId"] = _b64(bytes.fromhex(world.log.identity.v1_log_id))
    return load_root(obj, world.tmp / f"root-{request.param}.json")


def _v1_client(world: World) -> Any:
    from sigstore._internal.rekor.client import RekorClient

    return RekorClient(world.log.url)


def _certified_key(world: World) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, world.pki.signing_certificate(key)


def _statement(artifact: bytes) -> Any:
    from sigstore import dsse

    digest = dsse.DigestSet(root={"sha256": hashlib.sha256(artifact).hexdigest()})
    subject = dsse.Subject(name="artifact", digest=digest)
    return (
        dsse.StatementBuilder()
        .subjects([subject])
        .predicate_type("https://stelae.test/predicate/v1")
        .predicate({"built": True})
        .build()
    )


def test_sigstore_v1_client_uploads_and_verifies_a_hashedrekord(
    world: World, any_root: TrustedRoot
) -> None:
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    client = _v1_client(world)
    key, cert = _certified_key(world)
    artifact = b"stelae v1 client artifact " + os.urandom(8)
    digest = hashlib.sha256(artifact).digest()
    sig = signing.sign_digest(key, digest)
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest)
    entry = client.create_entry(client._build_hashed_rekord_request(hashed, sig, cert))

    inner = entry._inner
    assert inner.log_id.key_id == bytes.fromhex(world.log.identity.v1_log_id)
    assert (inner.kind_version.kind, inner.kind_version.version) == ("hashedrekord", "0.0.1")
    assert inner.integrated_time > 0 and inner.inclusion_promise is not None
    # The answer's checkpoint holds the v1 key-hint line sigstore looks for, besides the C2SP one.
    envelope = inner.inclusion_proof.checkpoint.envelope
    hints = [
        base64.b64decode(line.split(" ")[-1])[:4]
        for line in envelope.split("\n\n")[1].split("\n")
        if line
    ]
    assert hints == [world.log.identity.v2_key_id[:4], _v1_hint(world.log)]
    entry._verify(keyring(any_root))  # inclusion proof, checkpoint and SET

    # The same entry read back through sigstore's v1 reads, by UUID and by index.
    uuid = hashlib.sha256(b"\x00" + inner.canonicalized_body).hexdigest()
    by_uuid = client.log.entries.get(uuid=uuid)
    by_uuid._verify(keyring(any_root))
    assert by_uuid._inner.log_index == inner.log_index
    if inner.log_index > 0:  # sigstore's get() treats index 0 as "not given"
        client.log.entries.get(log_index=inner.log_index)._verify(keyring(any_root))

    # And the whole client path: a bundle around the v1 entry (its SET is the trusted time).
    message = MessageSignatureParts(digest, sig)
    bundle = Bundle._from_parts(cert, message.to_sigstore(), entry)
    Verifier(trusted_root=any_root).verify_artifact(
        artifact, bundle, policy.Identity(identity=EMAIL)
    )


@dataclass
class MessageSignatureParts:
    digest: bytes
    signature: bytes

    def to_sigstore(self) -> Any:
        from sigstore_models.common.v1 import HashAlgorithm, HashOutput, MessageSignature

        return MessageSignature(
            # The models hold base64 text in bytes (their validator decodes what it is given).
            message_digest=HashOutput(
                algorithm=HashAlgorithm.SHA2_256, digest=base64.b64encode(self.digest)
            ),
            signature=base64.b64encode(self.signature),
        )


def test_sigstore_v1_client_uploads_and_verifies_a_dsse_envelope(
    world: World, any_root: TrustedRoot
) -> None:
    from sigstore import dsse

    client = _v1_client(world)
    key, cert = _certified_key(world)
    artifact = b"stelae v1 dsse artifact " + os.urandom(8)
    envelope = dsse._sign(key, _statement(artifact))
    entry = client.create_entry(client._build_dsse_request(envelope, cert))
    assert (entry._inner.kind_version.kind, entry._inner.kind_version.version) == ("dsse", "0.0.1")
    entry._verify(keyring(any_root))
    bundle = Bundle._from_parts(cert, envelope, entry)
    Verifier(trusted_root=any_root).verify_dsse(bundle, policy.Identity(identity=EMAIL))


def test_sigstore_v1_checkpoint_check_needs_the_v1_key_hint_line(world: World) -> None:
    """The control: with only the C2SP line left, sigstore's v1 check finds no signature."""
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    client = _v1_client(world)
    key, cert = _certified_key(world)
    digest = hashlib.sha256(os.urandom(16)).digest()
    sig = signing.sign_digest(key, digest)
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest)
    entry = client.create_entry(client._build_hashed_rekord_request(hashed, sig, cert))
    envelope = entry._inner.inclusion_proof.checkpoint.envelope
    text, lines = envelope.split("\n\n")
    c2sp_only = [
        ln
        for ln in lines.split("\n")
        if ln and base64.b64decode(ln.split(" ")[-1])[:4] != _v1_hint(world.log)
    ]
    assert len(c2sp_only) == 1
    entry._inner.inclusion_proof.checkpoint.envelope = f"{text}\n\n{c2sp_only[0]}\n"
    with pytest.raises(VerificationError, match="Signature not found for log ID"):
        verify_checkpoint(keyring(world.root), entry)


# -- Rekor v2: DSSE logged as a hashedrekord over the PAE ----------------------------------------


def test_sigstore_v2_client_logs_dsse_as_hashedrekord_over_the_pae(
    world: World, any_root: TrustedRoot
) -> None:
    """What current sigstore-python sends for a DSSE envelope to a Rekor v2 log
    (``RekorV2Client._build_dsse_request``: a hashedrekord v0.0.2 whose digest is SHA-256 of the
    envelope's PAE), accepted, and the bundle verified by ``Verifier.verify_dsse``."""
    from sigstore import dsse
    from sigstore._internal.rekor.client_v2 import RekorV2Client

    client = RekorV2Client(world.log.url)
    key, cert = _certified_key(world)
    envelope = dsse._sign(key, _statement(b"stelae v2 dsse artifact " + os.urandom(8)))
    request = client._build_dsse_request(envelope, cert)
    assert set(request) == {"hashedRekordRequestV002"}
    entry = client.create_entry(request)
    assert (entry._inner.kind_version.kind, entry._inner.kind_version.version) == (
        "hashedrekord",
        "0.0.2",
    )
    entry._verify(keyring(any_root))
    tsr = world.pki.timestamp(envelope.signature, world.tmp / f"tsa-dsse-{os.urandom(4).hex()}")
    from rfc3161_client import decode_timestamp_response

    bundle = Bundle._from_parts(cert, envelope, entry, [decode_timestamp_response(tsr)])
    Verifier(trusted_root=any_root).verify_dsse(bundle, policy.Identity(identity=EMAIL))
