"""Self-signed code-signing certificates for tests: what a Fulcio certificate looks like to the
kinds (an email or URI SAN, the code-signing extended key usage), without a CA."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from stelae.client.signing import PrivateKey


def self_signed_certificate(
    key: PrivateKey,
    email: str,
    *,
    uri: str | None = None,
    now: datetime.datetime | None = None,
    days: int = 1,
) -> x509.Certificate:
    """A self-signed code-signing test certificate with an email (and optional URI) SAN."""
    now = now or datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.RFC822Name(email)]
    if uri:
        names.append(x509.UniformResourceIdentifier(uri))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stelae test signer")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)
