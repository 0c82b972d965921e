"""``rekord`` v0.0.1: a detached signature over an artifact's bytes (Rekor v1).

``spec.signature.format`` says how to read the signature and key:

- ``x509``: a raw signature with a PEM public key or certificate (ECDSA over SHA-256 or the
  curve's hash, RSA PKCS#1 v1.5/PSS over SHA-256, pure Ed25519);
- ``ssh``: an armored SSHSIG in namespace "file" with an OpenSSH public key;
- ``minisign``: a minisign signature file with a minisign public key (legacy and prehashed);
- ``pgp``: an armored or binary detached signature with an OpenPGP public key.

The request must carry the artifact (``spec.data.content``) because the signature is over its
bytes; an optional ``spec.data.hash`` must match it. The stored body keeps only the SHA-256 hash, so
:func:`from_v1_body` cannot re-verify the signature. Remote ``data.url`` is not supported: the write
path never fetches anything.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stelae.kinds import keys, minisign, pgp, sshsig
from stelae.kinds.canonical import canonicalize
from stelae.kinds.errors import InvalidEntryError, SignatureError
from stelae.kinds.fields import b64decode, b64encode, hexdecode
from stelae.kinds.model import Entry
from stelae.kinds.schema import Schema, b64_string, closed_object, entry_body, sha256_hash

KIND = "rekord"
FORMATS = ("minisign", "pgp", "ssh", "x509")
#: Largest artifact a rekord request may carry (checked on the base64 text, before decoding).
MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
_MAX_ARTIFACT_B64 = 4 * ((MAX_ARTIFACT_BYTES + 2) // 3)
_MAX_SIG = 65_536
_MAX_KEY = 65_536

_HASH = sha256_hash()


def _signature_schema() -> dict[str, Any]:
    return closed_object(
        {
            "format": {"enum": list(FORMATS)},
            "content": b64_string(_MAX_SIG),
            "publicKey": closed_object({"content": b64_string(_MAX_KEY)}),
        }
    )


V1_SPEC_SCHEMA: dict[str, Any] = closed_object(
    {
        "signature": _signature_schema(),
        "data": closed_object(
            {
                "content": {
                    "type": "string",
                    "maxLength": _MAX_ARTIFACT_B64,
                    "pattern": r"^[A-Za-z0-9+/]*={0,2}$",
                },
                "hash": _HASH,
            },
            required=["content"],
        ),
    }
)

V1_BODY_SCHEMA: dict[str, Any] = entry_body(
    KIND,
    "0.0.1",
    closed_object({"signature": _signature_schema(), "data": closed_object({"hash": _HASH})}),
)

_v1_spec = Schema(V1_SPEC_SCHEMA, root="spec")
_v1_body = Schema(V1_BODY_SCHEMA)

_KEY_FIELD = "spec.signature.publicKey.content"
_SIG_FIELD = "spec.signature.content"


class _Key:
    """A parsed key of any rekord format: its canonical stored form and index keys."""

    def __init__(self, fmt: str, raw: bytes) -> None:
        self.fmt = fmt
        self.minisign_id = b""
        self.verifier: keys.Verifier | None = None
        self.openpgp: pgp.OpenPGPKey | None = None
        if fmt == "x509":
            self.verifier = keys.load_pem(raw, _KEY_FIELD)
            self.canonical = self.verifier.canonical_pem()
        elif fmt == "ssh":
            self.verifier = sshsig.load_public_key(raw, _KEY_FIELD)
            self.canonical = sshsig.canonical_public_key(self.verifier)
        elif fmt == "minisign":
            self.minisign_id, self.verifier = minisign.parse_public_key(raw, _KEY_FIELD)
            key = self.verifier.key
            assert isinstance(key, Ed25519PublicKey)
            self.canonical = minisign.public_key_text(self.minisign_id, key)
        else:
            self.openpgp = pgp.load_public_key(raw, _KEY_FIELD)
            self.canonical = self.openpgp.armored()

    @property
    def fingerprint(self) -> str:
        if self.openpgp is not None:
            return self.openpgp.fingerprint
        assert self.verifier is not None
        return self.verifier.fingerprint

    @property
    def identities(self) -> tuple[str, ...]:
        if self.openpgp is not None:
            return self.openpgp.identities
        assert self.verifier is not None
        return self.verifier.identities

    def verify(self, signature: bytes, artifact: bytes) -> None:
        if self.openpgp is not None:
            pgp.verify(self.openpgp, signature, artifact, _SIG_FIELD)
            return
        assert self.verifier is not None
        if self.fmt == "ssh":
            sshsig.verify(self.verifier, signature, artifact, _SIG_FIELD)
        elif self.fmt == "minisign":
            minisign.verify(self.minisign_id, self.verifier, signature, artifact, _SIG_FIELD)
        elif not keys.verifies_message(
            self.verifier, keys.message_schemes(self.verifier), signature, artifact
        ):
            raise SignatureError(
                _SIG_FIELD,
                f"signature does not verify over the artifact with the "
                f"{self.verifier.describe()} key",
            )


def _entry(body: bytes, sha256_hex: str, key: _Key) -> Entry:
    return Entry(
        kind=KIND,
        api_version="0.0.1",
        body=body,
        artifact_digests=(f"sha256:{sha256_hex}",),
        key_fingerprints=(key.fingerprint,),
        identities=key.identities,
    )


def from_v1_spec(spec: object) -> Entry:
    """Rekor v1 proposed ``rekord`` v0.0.1 ``spec`` -> Entry (signature verified over the data)."""
    _v1_spec.validate(spec)
    assert isinstance(spec, dict)
    artifact = b64decode(spec["data"]["content"], "spec.data.content")
    sha256_hex = hashlib.sha256(artifact).hexdigest()
    if "hash" in spec["data"]:
        claimed = hexdecode(spec["data"]["hash"]["value"], "spec.data.hash.value", length=32)
        if claimed.hex() != sha256_hex:
            raise InvalidEntryError(
                "spec.data.hash.value", f"does not match the content's SHA-256 ({sha256_hex})"
            )
    fmt = spec["signature"]["format"]
    signature = b64decode(spec["signature"]["content"], _SIG_FIELD)
    key = _Key(fmt, b64decode(spec["signature"]["publicKey"]["content"], _KEY_FIELD))
    key.verify(signature, artifact)
    body = canonicalize(
        {
            "apiVersion": "0.0.1",
            "kind": KIND,
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": sha256_hex}},
                "signature": {
                    "content": b64encode(signature),
                    "format": fmt,
                    "publicKey": {"content": b64encode(key.canonical)},
                },
            },
        }
    )
    return _entry(body, sha256_hex, key)


def from_v1_body(obj: dict[str, Any], body: bytes) -> Entry:
    """A stored body -> Entry. Only the hash is stored, so the signature is not re-verified."""
    _v1_body.validate(obj)
    spec = obj["spec"]
    b64decode(spec["signature"]["content"], _SIG_FIELD)
    key = _Key(
        spec["signature"]["format"],
        b64decode(spec["signature"]["publicKey"]["content"], _KEY_FIELD),
    )
    return _entry(body, spec["data"]["hash"]["value"], key)


def detect_format(data: bytes) -> str:
    """Guess a public key's rekord format from its text (for ``stelae search --public-key``)."""
    text = data.lstrip()
    if text.startswith((b"-----BEGIN PUBLIC KEY", b"-----BEGIN CERTIFICATE")):
        return "x509"
    if text.startswith((b"ssh-", b"ecdsa-sha2-")):
        return "ssh"
    if text.startswith((b"untrusted comment:", b"RW")):
        return "minisign"
    return "pgp"


def key_fingerprint(
    data: bytes, signature_format: str | None = None
) -> tuple[str, tuple[str, ...]]:
    """(index fingerprint, identities) of a public key file, as entries made with it record."""
    fmt = signature_format or detect_format(data)
    if fmt not in FORMATS:
        raise InvalidEntryError("format", f"unknown key format {fmt!r}")
    key = _Key(fmt, data)
    return key.fingerprint, key.identities
