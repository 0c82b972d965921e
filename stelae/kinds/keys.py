"""Verifiers (a public key or an X.509 certificate), their fingerprints and identities, and
signature checks over a prehashed digest or a whole message.

Accepted keys: ECDSA P-256/P-384/P-521, Ed25519, RSA 2048/3072/4096. A certificate must carry a
SubjectAlternativeName with at least one email or URI: that is the identity the log indexes.
Certificates are not chain-validated here (a log records; verifiers decide whom to trust).

Signature schemes follow Sigstore's ``PublicKeyDetails`` (protobuf-specs common.proto). Rekor v1
entries carry no keyDetails, so :func:`schemes_for` lists what a bare key may mean there.

Parsed verifiers are kept by their encoded bytes in small LRU caches (:func:`load_pem`,
:func:`load_der_public_key`, :func:`load_der_certificate`): signers repeat keys (one per CI system,
say), and parsing plus fingerprinting costs ~25 µs of a ~130 µs write. That is safe because a
verifier is immutable and a pure function of those bytes: nothing here depends on time (there is no
chain validation) or on the request. Only successes are kept, so an error always names the field
it was asked about.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import ExtensionOID

from stelae.kinds import ed25519ph
from stelae.kinds.errors import InvalidEntryError, SignatureError

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

#: Hash names as Rekor v1 spells them, with digest sizes.
HASH_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
#: Rekor v2 ``HashAlgorithm`` names.
V2_HASH_NAMES = {"sha256": "SHA2_256", "sha384": "SHA2_384", "sha512": "SHA2_512"}
_CURVES = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}
_RSA_SIZES = (2048, 3072, 4096)
#: Verifiers kept per cache. The bound is on memory, since the cache keeps each key's bytes: a
#: request may carry a 12 KB DER key or a 48 KB certificate or PEM, so the DER key cache holds at
#: most ~3 MB and each of the other two ~6 MB.
_KEY_CACHE = 256
_CERTIFICATE_CACHE = 128


@dataclass(frozen=True)
class Scheme:
    """One signature scheme: the key it needs and how the signature is computed."""

    key_details: str
    family: str  # "ecdsa" | "ed25519" | "ed25519ph" | "rsa-pkcs1v15" | "rsa-pss"
    hash_name: str  # digest used (the prehash); for "ed25519" the hash of the message is unused
    curve: str | None = None
    rsa_bits: int | None = None


#: keyDetails values a Rekor v2 request may name (Sigstore protobuf-specs ``PublicKeyDetails``).
KEY_DETAILS: dict[str, Scheme] = {
    s.key_details: s
    for s in (
        Scheme("PKIX_ECDSA_P256_SHA_256", "ecdsa", "sha256", curve="secp256r1"),
        Scheme("PKIX_ECDSA_P384_SHA_384", "ecdsa", "sha384", curve="secp384r1"),
        Scheme("PKIX_ECDSA_P521_SHA_512", "ecdsa", "sha512", curve="secp521r1"),
        Scheme("PKIX_ED25519", "ed25519", "sha512"),
        Scheme("PKIX_ED25519_PH", "ed25519ph", "sha512"),
        *(
            Scheme(f"PKIX_RSA_PKCS1V15_{bits}_SHA256", "rsa-pkcs1v15", "sha256", rsa_bits=bits)
            for bits in _RSA_SIZES
        ),
        *(
            Scheme(f"PKIX_RSA_PSS_{bits}_SHA256", "rsa-pss", "sha256", rsa_bits=bits)
            for bits in _RSA_SIZES
        ),
    )
}

#: protojson accepts enum numbers too (protobuf-specs PublicKeyDetails).
KEY_DETAILS_NUMBERS = {
    5: "PKIX_ECDSA_P256_SHA_256",
    12: "PKIX_ECDSA_P384_SHA_384",
    13: "PKIX_ECDSA_P521_SHA_512",
    7: "PKIX_ED25519",
    8: "PKIX_ED25519_PH",
    9: "PKIX_RSA_PKCS1V15_2048_SHA256",
    10: "PKIX_RSA_PKCS1V15_3072_SHA256",
    11: "PKIX_RSA_PKCS1V15_4096_SHA256",
    16: "PKIX_RSA_PSS_2048_SHA256",
    17: "PKIX_RSA_PSS_3072_SHA256",
    18: "PKIX_RSA_PSS_4096_SHA256",
}


@dataclass(frozen=True)
class Verifier:
    """A parsed public key, possibly from a certificate.

    Immutable, and shared between requests by the loaders' caches; the derived values below are
    computed once (cached_property writes the instance ``__dict__``, which frozen allows).
    """

    key: PublicKey
    certificate: x509.Certificate | None = None

    @functools.cached_property
    def spki_der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (the key-search index key)."""
        return hashlib.sha256(self.spki_der).hexdigest()

    @functools.cached_property
    def identities(self) -> tuple[str, ...]:
        """SAN emails (lowercased) and URIs of the certificate; empty for a bare key."""
        if self.certificate is None:
            return ()
        return san_identities(self.certificate)

    def canonical_pem(self) -> bytes:
        """PEM of the certificate, or of the SPKI: what Rekor v1 bodies store (Go pem.Encode)."""
        if self.certificate is not None:
            return self.certificate.public_bytes(serialization.Encoding.PEM)
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def raw_der(self) -> bytes:
        """DER of the certificate, or of the SPKI (Rekor v2 ``rawBytes``)."""
        if self.certificate is not None:
            return self.certificate.public_bytes(serialization.Encoding.DER)
        return self.spki_der

    def describe(self) -> str:
        key = self.key
        if isinstance(key, ec.EllipticCurvePublicKey):
            return f"ECDSA {key.curve.name}"
        if isinstance(key, rsa.RSAPublicKey):
            return f"RSA-{key.key_size}"
        return "Ed25519"


def san_identities(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return ()
    assert isinstance(san, x509.SubjectAlternativeName)
    emails = [e.lower() for e in san.get_values_for_type(x509.RFC822Name)]
    uris = list(san.get_values_for_type(x509.UniformResourceIdentifier))
    return tuple(dict.fromkeys([*emails, *uris]))


def check_key(key: object, field: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise InvalidEntryError(field, f"unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in _RSA_SIZES:
            raise InvalidEntryError(
                field, f"unsupported RSA key size {key.key_size} (use 2048, 3072 or 4096)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise InvalidEntryError(field, f"unsupported public key type {type(key).__name__}")


def _from_certificate(cert: x509.Certificate, field: str) -> Verifier:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidEntryError(
            field, f"certificate public key is unusable: {reason(err)}"
        ) from err
    verifier = Verifier(check_key(key, field), cert)
    if not verifier.identities:
        raise InvalidEntryError(
            field, "certificate has no subjectAltName email or URI identity to index"
        )
    return verifier


def _named(load: Callable[[bytes], Verifier], data: bytes, field: str) -> Verifier:
    """``load(data)``, whose errors have an empty field, with ``field`` put in them."""
    try:
        return load(data)
    except InvalidEntryError as err:
        raise InvalidEntryError(field, err.problem, hint=err.hint) from err


def load_pem(data: bytes, field: str) -> Verifier:
    """A PEM ``PUBLIC KEY`` or ``CERTIFICATE`` (Rekor v1 ``publicKey.content``)."""
    return _named(_load_pem, data, field)


@functools.lru_cache(maxsize=_CERTIFICATE_CACHE)
def _load_pem(data: bytes) -> Verifier:
    text = data.lstrip()
    if text.startswith(b"-----BEGIN CERTIFICATE-----"):
        try:
            cert = x509.load_pem_x509_certificate(text)
        except ValueError as err:
            raise InvalidEntryError("", f"is not a valid PEM certificate: {reason(err)}") from err
        return _from_certificate(cert, "")
    if text.startswith(b"-----BEGIN PUBLIC KEY-----"):
        try:
            key = serialization.load_pem_public_key(text)
        except (ValueError, UnsupportedAlgorithm) as err:
            raise InvalidEntryError("", f"is not a valid PEM public key: {reason(err)}") from err
        return Verifier(check_key(key, ""))
    raise InvalidEntryError(
        "", "must be a PEM 'PUBLIC KEY' or 'CERTIFICATE' (base64 of the PEM text)"
    )


def reason(err: Exception) -> str:
    """The first sentence of a library's error message, for a one-line problem."""
    text = str(err).strip() or type(err).__name__
    return text.split(". ")[0].split("\n")[0][:120]


def load_der_public_key(data: bytes, field: str) -> Verifier:
    """DER SubjectPublicKeyInfo (Rekor v2 ``publicKey.rawBytes``)."""
    return _named(_load_der_public_key, data, field)


@functools.lru_cache(maxsize=_KEY_CACHE)
def _load_der_public_key(data: bytes) -> Verifier:
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidEntryError("", f"is not a DER SubjectPublicKeyInfo: {reason(err)}") from err
    return Verifier(check_key(key, ""))


def load_der_certificate(data: bytes, field: str) -> Verifier:
    """DER X.509 certificate (Rekor v2 ``x509Certificate.rawBytes``)."""
    return _named(_load_der_certificate, data, field)


@functools.lru_cache(maxsize=_CERTIFICATE_CACHE)
def _load_der_certificate(data: bytes) -> Verifier:
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError as err:
        raise InvalidEntryError("", f"is not a DER X.509 certificate: {reason(err)}") from err
    return _from_certificate(cert, "")


def check_scheme(verifier: Verifier, scheme: Scheme, field: str) -> None:
    """Refuse a key that does not match its keyDetails (curve, size, algorithm)."""
    key = verifier.key
    ok = False
    if scheme.family == "ecdsa":
        ok = isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == scheme.curve
    elif scheme.family in ("ed25519", "ed25519ph"):
        ok = isinstance(key, ed25519.Ed25519PublicKey)
    else:
        ok = isinstance(key, rsa.RSAPublicKey) and key.key_size == scheme.rsa_bits
    if not ok:
        raise InvalidEntryError(
            field, f"keyDetails {scheme.key_details} does not match the {verifier.describe()} key"
        )


def schemes_for(verifier: Verifier, hash_name: str, *, prehash: bool) -> list[Scheme]:
    """Schemes a key without keyDetails (Rekor v1) may use with the given hash.

    Ed25519 over a digest is Ed25519ph and needs SHA-512; over a message it is pure Ed25519. RSA may
    be PKCS#1 v1.5 or PSS: both are tried.
    """
    key = verifier.key
    if isinstance(key, ec.EllipticCurvePublicKey):
        return [Scheme("", "ecdsa", hash_name, curve=key.curve.name)]
    if isinstance(key, rsa.RSAPublicKey):
        return [
            Scheme("", "rsa-pkcs1v15", hash_name, rsa_bits=key.key_size),
            Scheme("", "rsa-pss", hash_name, rsa_bits=key.key_size),
        ]
    return [Scheme("", "ed25519ph" if prehash else "ed25519", "sha512")]


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
# Built once rather than per signature (~2 µs each); cryptography's algorithm objects are
# immutable values.
_PREHASHED = {name: utils.Prehashed(algorithm) for name, algorithm in _HASHES.items()}
_ECDSA = {
    (name, prehashed): ec.ECDSA(_PREHASHED[name] if prehashed else algorithm)
    for name, algorithm in _HASHES.items()
    for prehashed in (False, True)
}


def _verify_one(
    key: PublicKey, scheme: Scheme, signature: bytes, *, digest: bytes | None, message: bytes | None
) -> bool:
    """One attempt; exactly one of ``digest`` (a prehash) and ``message`` is given."""
    algorithm = _HASHES[scheme.hash_name]
    data: bytes
    chosen: hashes.HashAlgorithm | utils.Prehashed
    if digest is not None:
        data, chosen = digest, _PREHASHED[scheme.hash_name]
    else:
        assert message is not None
        data, chosen = message, algorithm
    try:
        if scheme.family == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, _ECDSA[scheme.hash_name, digest is not None])
        elif scheme.family == "rsa-pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), chosen)
        elif scheme.family == "rsa-pss" and isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            key.verify(signature, data, pss, chosen)
        elif scheme.family == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            if message is None:
                return False  # pure Ed25519 cannot verify a bare digest
            key.verify(signature, message)
        elif scheme.family == "ed25519ph" and isinstance(key, ed25519.Ed25519PublicKey):
            prehash = digest if digest is not None else hashlib.sha512(data).digest()
            return ed25519ph.verify(key.public_bytes_raw(), signature, prehash)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def verify_digest(
    verifier: Verifier, schemes: list[Scheme], signature: bytes, digest: bytes, field: str
) -> None:
    """Verify ``signature`` over ``digest`` as a prehash; SignatureError if no scheme fits."""
    for scheme in schemes:
        if len(digest) == HASH_SIZES[scheme.hash_name] and _verify_one(
            verifier.key, scheme, signature, digest=digest, message=None
        ):
            return
    raise SignatureError(
        field, f"signature does not verify over the digest with the {verifier.describe()} key"
    )


def verifies_message(
    verifier: Verifier, schemes: list[Scheme], signature: bytes, message: bytes
) -> bool:
    """Whether ``signature`` over ``message`` verifies with any scheme (callers raise)."""
    return any(
        _verify_one(verifier.key, s, signature, digest=None, message=message) for s in schemes
    )


def message_schemes(verifier: Verifier) -> list[Scheme]:
    """Schemes for a signature over a whole message by a key without keyDetails.

    ECDSA keys use their curve's hash or SHA-256 (what Rekor v1 checks DSSE with); RSA uses
    SHA-256 with PKCS#1 v1.5 or PSS; Ed25519 is pure Ed25519.
    """
    key = verifier.key
    if isinstance(key, ec.EllipticCurvePublicKey):
        names = dict.fromkeys([_CURVES[key.curve.name], "sha256"])
        return [Scheme("", "ecdsa", n, curve=key.curve.name) for n in names]
    return schemes_for(verifier, "sha256", prehash=False)
