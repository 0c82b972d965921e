"""OpenSSH signatures (SSHSIG, openssh PROTOCOL.sshsig) over a whole file, for ``rekord``.

A signature is ``MAGIC "SSHSIG" || uint32 1 || string publickey || string namespace ||
string reserved || string hash_algorithm || string signature``, armored between
``-----BEGIN/END SSH SIGNATURE-----``. What is signed is ``"SSHSIG" || string namespace ||
string reserved || string hash_algorithm || string H(message)``. Rekor requires namespace "file".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from stelae.kinds import keys
from stelae.kinds.errors import InvalidEntryError, SignatureError

NAMESPACE = "file"
_MAGIC = b"SSHSIG"
_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
_END = b"-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_EC_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_CURVE_NAME = {"secp256r1": "nistp256", "secp384r1": "nistp384", "secp521r1": "nistp521"}


def load_public_key(data: bytes, field: str) -> keys.Verifier:
    """An OpenSSH public key line (``ssh-ed25519 AAAA… comment``)."""
    try:
        key = serialization.load_ssh_public_key(data.strip())
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidEntryError(field, f"is not an OpenSSH public key: {keys.reason(err)}") from err
    return keys.Verifier(keys.check_key(key, field))


def canonical_public_key(verifier: keys.Verifier) -> bytes:
    """``<type> <base64>\\n`` with no comment (Go's ssh.MarshalAuthorizedKey)."""
    return (
        verifier.key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b"\n"
    )


class _Reader:
    def __init__(self, data: bytes, field: str) -> None:
        self.data, self.pos, self.field = data, 0, field

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise InvalidEntryError(self.field, "SSH signature is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.u32())

    def end(self) -> None:
        if self.pos != len(self.data):
            raise InvalidEntryError(self.field, "SSH signature has trailing bytes")


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _dearmor(armored: bytes, field: str) -> bytes:
    text = armored.strip()
    if not (text.startswith(_BEGIN) and text.endswith(_END)):
        raise InvalidEntryError(
            field, "is not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)"
        )
    inner = b"".join(text[len(_BEGIN) : -len(_END)].split())
    try:
        return base64.b64decode(inner, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidEntryError(field, f"SSH signature armor is not base64: {err}") from err


def verify(verifier: keys.Verifier, armored: bytes, message: bytes, field: str) -> None:
    """Verify an armored SSHSIG over ``message`` made by ``verifier``'s key in namespace "file"."""
    r = _Reader(_dearmor(armored, field), field)
    if r.take(6) != _MAGIC or r.u32() != 1:
        raise InvalidEntryError(field, "is not an SSHSIG version 1 signature")
    public_blob, namespace, reserved, hash_alg, sig_blob = (r.string() for _ in range(5))
    r.end()
    if namespace != NAMESPACE.encode():
        raise InvalidEntryError(field, f"SSH signature namespace is {namespace!r}, not 'file'")
    hash_name = hash_alg.decode("ascii", "replace")
    if hash_name not in _HASHES:
        raise InvalidEntryError(field, f"unsupported SSH signature hash {hash_name!r}")
    own = canonical_public_key(verifier).split()[1]
    if base64.b64encode(public_blob) != own:
        raise SignatureError(field, "SSH signature was made by a different key than publicKey")
    signed = (
        _MAGIC
        + _string(namespace)
        + _string(reserved)
        + _string(hash_alg)
        + _string(_HASHES[hash_name](message).digest())
    )
    s = _Reader(sig_blob, field)
    sig_type, raw = s.string().decode("ascii", "replace"), s.string()
    s.end()
    if not _check(verifier, sig_type, raw, signed):
        raise SignatureError(field, "SSH signature does not verify over the artifact")


def _check(verifier: keys.Verifier, sig_type: str, raw: bytes, signed: bytes) -> bool:
    key = verifier.key
    try:
        if isinstance(key, ed25519.Ed25519PublicKey) and sig_type == "ssh-ed25519":
            key.verify(raw, signed)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if sig_type != f"ecdsa-sha2-{_CURVE_NAME[key.curve.name]}":
                return False
            rs = _Reader(raw, "")
            r_int = int.from_bytes(rs.string(), "big")
            s_int = int.from_bytes(rs.string(), "big")
            der = utils.encode_dss_signature(r_int, s_int)
            key.verify(der, signed, ec.ECDSA(_EC_HASH[key.curve.name]()))
        elif isinstance(key, rsa.RSAPublicKey) and sig_type in ("rsa-sha2-256", "rsa-sha2-512"):
            algorithm = hashes.SHA256() if sig_type == "rsa-sha2-256" else hashes.SHA512()
            key.verify(raw, signed, padding.PKCS1v15(), algorithm)
        else:
            return False
    except (InvalidSignature, InvalidEntryError):
        return False
    return True


def sign(
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey,
    message: bytes,
    namespace: str = NAMESPACE,
) -> bytes:
    """An armored SSHSIG (SHA-512, like ``ssh-keygen -Y sign``) over ``message``."""
    public = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public_blob = base64.b64decode(public.split()[1])
    ns, hash_alg = namespace.encode(), b"sha512"
    signed = (
        _MAGIC
        + _string(ns)
        + _string(b"")
        + _string(hash_alg)
        + _string(hashlib.sha512(message).digest())
    )
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        sig_type, raw = b"ssh-ed25519", private_key.sign(signed)
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        curve = private_key.curve.name
        der = private_key.sign(signed, ec.ECDSA(_EC_HASH[curve]()))
        r_int, s_int = utils.decode_dss_signature(der)
        raw = _string(_mpint(r_int)) + _string(_mpint(s_int))
        sig_type = f"ecdsa-sha2-{_CURVE_NAME[curve]}".encode()
    else:
        sig_type, raw = (
            b"rsa-sha2-512",
            private_key.sign(signed, padding.PKCS1v15(), hashes.SHA512()),
        )
    blob = (
        _MAGIC
        + struct.pack(">I", 1)
        + _string(public_blob)
        + _string(ns)
        + _string(b"")
        + _string(hash_alg)
        + _string(_string(sig_type) + _string(raw))
    )
    b64 = base64.b64encode(blob)
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return _BEGIN + b"\n" + b"\n".join(lines) + b"\n" + _END + b"\n"


def _mpint(n: int) -> bytes:
    out = n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")
    return b"\x00" + out if out[0] & 0x80 else out
