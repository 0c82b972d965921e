"""Ed25519ph (RFC 8032 §5.1, prehash variant, empty context), by PyCryptodome.

Sigstore signs hashedrekord entries with Ed25519 keys as Ed25519ph over the SHA-512 digest
(keyDetails ``PKIX_ED25519_PH``), and Rekor verifies them that way. ``cryptography`` implements only
pure Ed25519, so the prehash variant comes from PyCryptodome's ``Crypto.Signature.eddsa``
(https://www.pycryptodome.org/src/signature/eddsa): its curve arithmetic is in C and its signing
does not branch on secrets, where the pure-Python arithmetic this module used to hold took ~4 ms a
verification and signed in variable time.

Verification follows RFC 8032 §5.1.7 as written: S must be reduced (S < L, so a signature is not
malleable) and the group equation is checked with the cofactor, [8][S]B = [8]R + [8][k]A.
"""

from __future__ import annotations

from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

_DIGEST_SIZE = 64


class _Prehashed(SHA512.SHA512Hash):
    """A SHA-512 "hash object" holding a digest computed elsewhere.

    PyCryptodome picks Ed25519ph when given a SHA-512 hash object and reads only its
    ``digest()``; the callers here hold the 64-byte digest (from the request), not the message.
    """

    def __init__(self, digest: bytes) -> None:
        super().__init__(None, None)
        self._prehash = digest

    def digest(self) -> bytes:
        return self._prehash


def verify(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` is an Ed25519ph signature over the SHA-512 ``digest``.

    Returns a bool because it is a primitive; callers turn False into a typed error.
    """
    if len(public_key) != 32 or len(signature) != 64 or len(digest) != _DIGEST_SIZE:
        return False
    try:
        key = eddsa.import_public_key(public_key)
        eddsa.new(key, "rfc8032", context=b"").verify(_Prehashed(digest), signature)
    except ValueError:  # not a point on the curve, S not reduced, or not authentic
        return False
    return True


def sign(seed: bytes, digest: bytes) -> bytes:
    """Ed25519ph signature with the 32-byte private ``seed`` over the SHA-512 ``digest``."""
    if len(seed) != 32 or len(digest) != _DIGEST_SIZE:
        raise ValueError("Ed25519ph needs a 32-byte seed and a 64-byte SHA-512 digest")
    key: ECC.EccKey = eddsa.import_private_key(seed)
    signature: bytes = eddsa.new(key, "rfc8032", context=b"").sign(_Prehashed(digest))
    return signature
