"""Making valid entries with nothing else installed: keys, signatures, and request builders for
every wire shape (what ``stelae keygen``, ``sign`` and ``upload`` use). Test certificates are in
``tests/support/certificates.py``.

Signatures here are exactly what the kinds verify: hashedrekord signs the artifact's digest as a
prehash (Ed25519 keys as Ed25519ph over SHA-512); DSSE and x509 ``rekord`` sign the whole message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from stelae.kinds import ed25519ph, keys
from stelae.kinds.dsse import pae
from stelae.kinds.fields import b64encode

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa")

_CURVES: dict[str, ec.EllipticCurve] = {
    "ecdsa-p256": ec.SECP256R1(),
    "ecdsa-p384": ec.SECP384R1(),
    "ecdsa-p521": ec.SECP521R1(),
}
_HASHERS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_HASH_OBJECTS: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def generate_key(kind: KeyType = "ecdsa-p256", *, rsa_bits: int = 3072) -> PrivateKey:
    """A new private key: ECDSA P-256/P-384/P-521, Ed25519, or RSA (2048/3072/4096 bits)."""
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        if rsa_bits not in (2048, 3072, 4096):
            raise ValueError("RSA keys must be 2048, 3072 or 4096 bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    raise ValueError(f"unknown key type {kind!r}; use one of {', '.join(KEY_TYPES)}")


def private_key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted when a password is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_pem(key: PrivateKey | keys.PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a private or public key."""
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key_pem(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A PEM private key of a supported type (PKCS#8, or the traditional EC/RSA forms)."""
    key = serialization.load_pem_private_key(data, password)
    if not isinstance(key, PrivateKey):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    keys.check_key(key.public_key(), "private key")
    return key


def hash_for(key: PrivateKey | keys.PublicKey) -> str:
    """The digest a hashedrekord signature by this key uses (sha256/sha384/sha512)."""
    public = key.public_key() if isinstance(key, PrivateKey) else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"secp256r1": "sha256", "secp384r1": "sha384"}.get(public.curve.name, "sha512")
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "sha512"
    return "sha256"


def key_details_for(key: PrivateKey | keys.PublicKey, *, pss: bool = False) -> str:
    """Rekor v2 keyDetails for a hashedrekord signature by this key."""
    public = key.public_key() if isinstance(key, PrivateKey) else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {
            "secp256r1": "PKIX_ECDSA_P256_SHA_256",
            "secp384r1": "PKIX_ECDSA_P384_SHA_384",
            "secp521r1": "PKIX_ECDSA_P521_SHA_512",
        }[public.curve.name]
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "PKIX_ED25519_PH"
    kind = "PSS" if pss else "PKCS1V15"
    return f"PKIX_RSA_{kind}_{public.key_size}_SHA256"


def digest(key: PrivateKey | keys.PublicKey, data: bytes) -> tuple[str, bytes]:
    """(hash name, digest of ``data``) as a hashedrekord entry for this key records it."""
    name = hash_for(key)
    return name, _HASHERS[name](data).digest()


def sign_digest(key: PrivateKey, digest_bytes: bytes, *, pss: bool = False) -> bytes:
    """A signature over ``digest_bytes`` as a prehash (what hashedrekord verifies)."""
    name = hash_for(key)
    prehashed = utils.Prehashed(_HASH_OBJECTS[name]())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest_bytes, ec.ECDSA(prehashed))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest_bytes, _rsa_padding(pss, name), prehashed)
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return ed25519ph.sign(seed, digest_bytes)


def sign_artifact(key: PrivateKey, data: bytes, *, pss: bool = False) -> bytes:
    """The signature hashedrekord expects for the artifact ``data``."""
    return sign_digest(key, digest(key, data)[1], pss=pss)


def sign_message(key: PrivateKey, message: bytes, *, pss: bool = False) -> bytes:
    """A signature over a whole message (DSSE PAE, x509 ``rekord``): pure Ed25519, ECDSA with
    the curve's hash, RSA with SHA-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(_HASH_OBJECTS[hash_for(key)]()))
    return key.sign(message, _rsa_padding(pss, "sha256"), hashes.SHA256())


def _rsa_padding(pss: bool, name: str) -> padding.AsymmetricPadding:
    if pss:
        return padding.PSS(
            mgf=padding.MGF1(_HASH_OBJECTS[name]()), salt_length=padding.PSS.DIGEST_LENGTH
        )
    return padding.PKCS1v15()


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _verifier_pem(verifier: bytes | x509.Certificate | PrivateKey | keys.PublicKey) -> bytes:
    if isinstance(verifier, bytes):
        return verifier
    if isinstance(verifier, x509.Certificate):
        return certificate_pem(verifier)
    return public_key_pem(verifier)


def _v2_verifier(
    verifier: bytes | x509.Certificate | PrivateKey | keys.PublicKey, key_details: str | None
) -> dict[str, Any]:
    parsed = keys.load_pem(_verifier_pem(verifier), "verifier")
    form = "x509Certificate" if parsed.certificate is not None else "publicKey"
    return {
        form: {"rawBytes": b64encode(parsed.raw_der())},
        "keyDetails": key_details or key_details_for(parsed.key),
    }


def build_v1_hashedrekord(
    signature: bytes,
    verifier: bytes | x509.Certificate | PrivateKey | keys.PublicKey,
    *,
    artifact: bytes | None = None,
    digest_bytes: bytes | None = None,
    algorithm: str | None = None,
) -> dict[str, Any]:
    """A Rekor v1 ``hashedrekord`` v0.0.1 proposed entry (give ``artifact`` or its digest)."""
    if digest_bytes is None:
        if artifact is None:
            raise ValueError("give the artifact or its digest")
        algorithm = algorithm or hash_for(keys.load_pem(_verifier_pem(verifier), "verifier").key)
        digest_bytes = _HASHERS[algorithm](artifact).digest()
    algorithm = algorithm or {32: "sha256", 48: "sha384", 64: "sha512"}[len(digest_bytes)]
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": algorithm, "value": digest_bytes.hex()}},
            "signature": {
                "content": b64encode(signature),
                "publicKey": {"content": b64encode(_verifier_pem(verifier))},
            },
        },
    }


def build_v2_hashedrekord(
    signature: bytes,
    verifier: bytes | x509.Certificate | PrivateKey | keys.PublicKey,
    digest_bytes: bytes,
    *,
    key_details: str | None = None,
) -> dict[str, Any]:
    """A Rekor v2 ``CreateEntryRequest`` with ``hashedRekordRequestV002``."""
    return {
        "hashedRekordRequestV002": {
            "digest": b64encode(digest_bytes),
            "signature": {
                "content": b64encode(signature),
                "verifier": _v2_verifier(verifier, key_details),
            },
        }
    }


def dsse_envelope(
    payload: bytes, payload_type: str, signers: list[PrivateKey], *, pss: bool = False
) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` signed by each of ``signers``."""
    message = pae(payload_type, payload)
    return {
        "payload": b64encode(payload),
        "payloadType": payload_type,
        "signatures": [
            {"keyid": "", "sig": b64encode(sign_message(k, message, pss=pss))} for k in signers
        ],
    }


def build_dsse(
    envelope: dict[str, Any],
    verifiers: list[bytes | x509.Certificate | PrivateKey | keys.PublicKey],
    *,
    version: Literal["0.0.1", "0.0.2"] = "0.0.1",
    key_details: list[str] | None = None,
) -> dict[str, Any]:
    """A ``dsse`` request: Rekor v1 proposed entry (0.0.1) or v2 ``dsseRequestV002`` (0.0.2).

    For 0.0.2 the keyDetails default to pure Ed25519 / ECDSA with the curve's hash / RSA PKCS#1.
    """
    if version == "0.0.1":
        return {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "proposedContent": {
                    "envelope": json.dumps(envelope),
                    "verifiers": [b64encode(_verifier_pem(v)) for v in verifiers],
                }
            },
        }
    forms = []
    for i, v in enumerate(verifiers):
        details = key_details[i] if key_details else None
        form = _v2_verifier(v, details)
        if details is None and form["keyDetails"] == "PKIX_ED25519_PH":
            form["keyDetails"] = "PKIX_ED25519"
        forms.append(form)
    return {"dsseRequestV002": {"envelope": envelope, "verifiers": forms}}


def build_rekord(
    artifact: bytes,
    signature: bytes,
    public_key: bytes | x509.Certificate | PrivateKey | keys.PublicKey,
    *,
    signature_format: Literal["x509", "ssh", "minisign", "pgp"] = "x509",
) -> dict[str, Any]:
    """A Rekor v1 ``rekord`` v0.0.1 proposed entry carrying the artifact."""
    key = _verifier_pem(public_key) if signature_format == "x509" else public_key
    assert isinstance(key, bytes), "ssh/minisign/pgp public keys are passed as bytes"
    return {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {
            "data": {"content": b64encode(artifact)},
            "signature": {
                "format": signature_format,
                "content": b64encode(signature),
                "publicKey": {"content": b64encode(key)},
            },
        },
    }
